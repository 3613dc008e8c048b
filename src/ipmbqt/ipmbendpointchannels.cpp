// SPDX-License-Identifier: BSD-3-Clause
// Direct channels on the endpoint's side (doc/protocol.md, "Direct channels"): routing by the
// membership in any sending thread, and, in the I/O thread, the introductions (accepting one,
// taking the answer to one), serving the channels and closing them.
#include "ipmbendpoint_p.h"
#include "ipmbmemoryregion_p.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qscopeguard.h>

using namespace IpmbPlatform;

IpmbEndpointPrivate::Channel::Channel(IpmbEndpointPrivate *endpoint, quint32 peer, bool incoming)
    : peer(peer), incoming(incoming),
      outbox(&endpoint->m_waker, IpmbLimits::ChannelQueueBytes, IpmbLimits::ChannelQueueHandles,
             IpmbEndpoint::tr("the channel to endpoint %1").arg(peer))
{
    outbox.open();
    endpoint->setUpOutbox(outbox);
}

void IpmbEndpointPrivate::setUpOutbox(IpmbOutbox &outbox)
{
    outbox.setWrittenCallback([this](qint64 bytes) {
        QMutexLocker locker(&m_mutex);
        m_ioBytesWritten += bytes;
        postSyncLocked();
    });
    outbox.countWrites(m_bytesWrittenConnections > 0);
}

void IpmbEndpointPrivate::countWrites()
{
    const bool on = m_bytesWrittenConnections > 0;
    m_outbox.countWrites(on);
    QMutexLocker locker(&m_channelsMutex);
    for (const ChannelPtr &channel : std::as_const(m_channelsOut))
        channel->outbox.countWrites(on);
    for (const ChannelPtr &channel : std::as_const(m_channelsIn))
        channel->outbox.countWrites(on);
}

// The first message this endpoint sends asks for the membership; until its list has come, the
// controller routes.
void IpmbEndpointPrivate::requestRoutes()
{
    if (m_routing.load(std::memory_order_relaxed))
        return;
    QMutexLocker locker(&m_channelsMutex);  // serialises the Watch frames with setWatching()'s
    if (m_routing.exchange(true))
        return;
    QByteArray frame;
    IpmbProtocol::appendWatch(frame, IpmbProtocol::RoutesItself | (m_watchPeers ? IpmbProtocol::WatchPeers : 0));
    IpmbErrorInfo error;
    if (!m_outbox.send(frame, {}, &error))
        m_routing = false;  // not joined: the next send asks again
}

// Picks the receivers of a message with `selector`: false if the controller must route it (this
// endpoint does not know the membership yet, or nobody it knows matches: the controller's view
// may be newer, and it keeps a message with a ttl). A unicast gets one receiver, taken in turn
// among those whose queue has room.
bool IpmbEndpointPrivate::routeMessage(const IpmbSelector &selector, std::vector<quint32> *receivers)
{
    if (!m_routes.isReady()) {
        requestRoutes();
        return false;
    }
    m_routes.matches(selector.labelOp(), receivers);
    if (receivers->empty())
        return false;
    if (selector.mode() == IpmbSelector::Multicast || receivers->size() == 1)
        return true;
    const size_t count = receivers->size();
    const size_t start = size_t(m_unicastTurn.fetch_add(1, std::memory_order_relaxed) % count);
    quint32 chosen = (*receivers)[start];
    {
        QMutexLocker locker(&m_channelsMutex);
        for (size_t i = 0; i < count; ++i) {
            const quint32 candidate = (*receivers)[(start + i) % count];
            const ChannelPtr channel = m_channelsOut.value(candidate);
            if (!channel || channel->outbox.hasRoom(false)) {
                chosen = candidate;
                break;
            }
        }
    }
    receivers->assign(1, chosen);
    return true;
}

// A monitor's report of a message written on a channel (doc/protocol.md, "Monitors").
QByteArray IpmbEndpointPrivate::observedOnChannel(const QByteArray &frame, quint32 target)
{
    const std::optional<IpmbProtocol::Header> header = IpmbProtocol::parseHeader(frame.constData(), nullptr);
    Q_ASSERT(header);  // this endpoint wrote it
    const IpmbProtocol::MessageSections sections =
            IpmbProtocol::messageSections(*header, QByteArrayView(frame).sliced(IpmbProtocol::HeaderSize));
    IpmbProtocol::Observation observation = IpmbProtocol::observationOf(*header, sections);
    observation.path = IpmbProtocol::Observation::OnChannel;
    observation.target = target;
    observation.deliveries = 1;
    QByteArray observed;
    IpmbProtocol::appendObserved(observed, observation, {}, sections.selector,
                                 observation.payloadInRegion ? QByteArrayView() : sections.payload);
    return observed;
}

// Behind the messages this endpoint sent through the controller before, so a monitor sees one
// sender's messages in order. A report that finds the controller's queue full is lost.
void IpmbEndpointPrivate::reportToMonitors(QByteArray &observed)
{
    IpmbErrorInfo ignored;
    m_outbox.send(observed, {}, &ignored);
}

// Writes an addressed `frame` (see appendMessage()) for each receiver: on its channel, or through
// the controller (then asking for a channel to it, within the limits). Each copy of a region gets
// its reference here, since no controller multiplies it. The channels' lock is held only to look
// them up: a sender never waits for another thread's system call.
bool IpmbEndpointPrivate::sendRouted(const std::vector<quint32> &receivers, QByteArray &frame,
                                     const QList<IpmbNativeHandle> &handles, const QList<IpmbMemoryRegion> &regions,
                                     const IpmbProtocol::Call &call, IpmbErrorInfo *error)
{
    const quint32 self = m_selfId.load(std::memory_order_relaxed);
    const qint64 now = m_clock.nsecsElapsed();
    enum Way : char { Controller, Introduce, OnChannel, Drop };
    // Kept per thread for their allocations; the channels are let go on return (a thread must not
    // keep a channel, or its endpoint, alive).
    thread_local std::vector<ChannelPtr> channels;
    thread_local std::vector<char> ways;
    const auto release = qScopeGuard([] { channels.clear(); });
    channels.clear();
    ways.clear();
    {
        QMutexLocker locker(&m_channelsMutex);
        for (const quint32 receiver : receivers) {
            ChannelPtr channel = m_channelsOut.value(receiver);
            Way way = OnChannel;
            if (!channel) {
                // The controller's queue: checked here with the channels', so that a multicast is
                // refused whole rather than in part.
                if (!m_outbox.hasRoom(!handles.isEmpty(), error)) {
                    locker.unlock();
                    for (size_t k = 0; k < ways.size(); ++k) {
                        if (ways[k] == Introduce)
                            introduce(receivers[k]);
                    }
                    return false;
                }
                way = Controller;
                if (receiver != self && m_channelsOut.size() < IpmbLimits::MaxChannels
                    && m_channelRetryAt.value(receiver, 0) <= now) {
                    // Opened now, so that what other threads send meanwhile waits in it; this
                    // thread relays its message, then asks for the introduction (the fence).
                    m_channelsOut.insert(receiver, std::make_shared<Channel>(this, receiver, false));
                    m_channelRetryAt.remove(receiver);
                    way = Introduce;
                }
            } else if (IpmbErrorInfo full; !channel->outbox.hasRoom(!handles.isEmpty(), &full)) {
                // Full: the send fails, until the receiver is stuck (it read nothing, or did not
                // answer the introduction, for IpmbLimits::StallTimeoutMsecs); then its copy is
                // dropped, counted, and reported to it once it reads again.
                if (channel->outbox.stalledNsecs() < qint64(IpmbLimits::StallTimeoutMsecs) * IpmbLimits::NsecsPerMsec) {
                    *error = full;
                    locker.unlock();
                    for (size_t k = 0; k < ways.size(); ++k) {
                        if (ways[k] == Introduce)
                            introduce(receivers[k]);  // opened above; nothing was relayed or waits
                    }
                    return false;
                }
                way = Drop;  // counted below, once the message is going to the others
            } else {
                channel->lastUsed = now;
            }
            channels.push_back(std::move(channel));
            ways.push_back(way);
        }
    }
    const bool large = frame.size() > IpmbLimits::ShareFrameBytes;
    QByteArray copy;
    // Once one copy is queued the message counts as sent: a copy that cannot be queued after all
    // (another thread filled its queue meanwhile) is dropped for its receiver, never sent again
    // by a caller that retries the whole message (at most once).
    int queued = 0;
    for (size_t i = 0; i < receivers.size(); ++i) {
        const quint32 receiver = receivers[i];
        const Way way = Way(ways[i]);
        if (way == Drop)
            continue;  // counted at the end, if the message goes
        // A large frame is queued by reference (and taken): each receiver but the last gets a copy.
        QByteArray &out = large && i + 1 < receivers.size() ? (copy = frame) : frame;
        IpmbProtocol::setTarget(out, receiver);
        for (const IpmbMemoryRegion &region : regions)
            IpmbMemoryRegionPrivate::addReferences(region, +1);
        IpmbErrorInfo failed;
        bool sent;
        if (way == OnChannel) {
            if (call.flags & IpmbProtocol::Request)
                m_requests.sentOnChannel(call.id, receiver);
            // Made before the send, which may take a large frame.
            QByteArray observed = m_busMonitored.load(std::memory_order_relaxed)
                    ? observedOnChannel(out, receiver) : QByteArray();
            sent = channels[i]->outbox.send(out, handles, &failed);
            if (sent && !observed.isEmpty())
                reportToMonitors(observed);
            if (!sent && failed.code == IpmbErrorCode::Disconnected) {
                // Closed since the look-up (it was unused, or the peer left): what replaced it,
                // or the controller. The peer has read all the old one carried.
                QMutexLocker locker(&m_channelsMutex);
                const ChannelPtr replacement = m_channelsOut.value(receiver);
                locker.unlock();
                if (!replacement && (call.flags & IpmbProtocol::Request))
                    m_requests.sentOnChannel(call.id, 0);  // the controller's, after all
                sent = (replacement ? replacement->outbox : m_outbox).send(out, handles, &failed);
            }
        } else {
            sent = m_outbox.send(out, handles, &failed);
        }
        if (way == Introduce)
            introduce(receiver);  // also after a failure: the channel was opened for it
        if (sent) {
            ++queued;
            continue;
        }
        for (const IpmbMemoryRegion &region : regions)
            IpmbMemoryRegionPrivate::addReferences(region, -1);
        if (queued == 0) {
            // Nothing went anywhere: the caller may send it again, so the rest must not get it.
            *error = failed;
            for (size_t k = i + 1; k < receivers.size(); ++k) {
                if (ways[k] == Introduce)
                    introduce(receivers[k]);
            }
            return false;
        }
        if (way == OnChannel)
            ways[i] = Drop;
        qCDebug(lcIpmbEndpoint, "dropping a copy for endpoint %u: %s", receiver, qPrintable(failed.message));
    }
    // The message went: the copies dropped for stuck receivers are theirs to hear of (a refused
    // message counts nothing, or a caller's retry would count its drops twice).
    QMutexLocker locker(&m_channelsMutex);
    for (size_t i = 0; i < receivers.size(); ++i) {
        if (ways[i] == Drop)
            ++channels[i]->dropped;
    }
    return true;
}

// Asks the controller to introduce this endpoint to `peer`, whose channel is being opened; if
// that cannot be queued, the channel is given up and what waits in it goes through the controller.
void IpmbEndpointPrivate::introduce(quint32 peer)
{
    QByteArray frame;
    IpmbProtocol::appendIntroduce(frame, peer);
    IpmbErrorInfo error;
    if (m_outbox.send(frame, {}, &error))
        return;
    ChannelPtr channel;
    {
        QMutexLocker locker(&m_channelsMutex);
        channel = m_channelsOut.value(peer);
        if (!channel || channel->open)
            return;
        m_channelsOut.remove(peer);
    }
    channel->outbox.moveQueueTo(m_outbox);
    channel->outbox.close();
    m_requests.movedToController(peer);
}

// The thread that read an Introduce or a Channel frame leaves it to the I/O thread, which owns
// the channels' sockets.
void IpmbEndpointPrivate::handleChannelEvents()
{
    std::vector<ChannelEvent> events;
    {
        QMutexLocker locker(&m_mutex);
        events.swap(m_ioChannelEvents);
    }
    for (ChannelEvent &event : events) {
        if (event.introduced)
            acceptChannel(*event.introduced);
        else
            channelAnswered(event.answer, std::move(event.socket));
    }
}

// B's side: a socket pair, one end kept and read from now on, the other for the introducer.
void IpmbEndpointPrivate::acceptChannel(const IpmbProtocol::Introduced &introduced)
{
    const quint32 peer = introduced.introducer;
    QByteArray answer;
    IpmbErrorInfo error;
    ChannelPtr old;
    ChannelPtr channel;
    Socket theirs = InvalidSocket;
    {
        QMutexLocker locker(&m_channelsMutex);
        Socket mine = InvalidSocket;
        if (m_channelsIn.size() >= IpmbLimits::MaxChannels && !m_channelsIn.contains(peer)) {
            IpmbProtocol::appendChannel(answer, peer, IpmbErrorCode::QueueFull);
        } else if (!socketPair(&mine, &theirs, &error)) {
            m_ioWarnings.warn(lcIpmbEndpoint(), "cannot open a channel for endpoint %u: %s", peer, qPrintable(error.message));
            IpmbProtocol::appendChannel(answer, peer, IpmbErrorCode::Resource);
        } else {
            // An older channel from it is one it no longer writes (it asks only when it has none).
            old = m_channelsIn.take(peer);
            channel = std::make_shared<Channel>(this, peer, true);
            channel->connection = std::make_unique<IpmbConnection>(mine);
            channel->connection->setReusesLargeBuffers(true);
            channel->outbox.attach(channel->connection.get());
            channel->open = true;
            m_channelsIn.insert(peer, channel);
            IpmbProtocol::appendChannel(answer, peer, IpmbErrorCode::None);
        }
    }
    if (old)
        closeChannel(old, {});
    QList<IpmbNativeHandle> handles;
    if (channel) {
        m_inbox.addChannel(channel->connection.get(), peer, true, introduced.sender);
        handles.append(IpmbNativeHandle::adopt(theirs));
    }
    if (!m_outbox.send(answer, handles, &error))
        qCDebug(lcIpmbEndpoint, "cannot answer endpoint %u's introduction: %s", peer, qPrintable(error.message));
}

// A's side: the answer to its Introduce. With a socket from the right process, what waited for the
// peer goes there; without, through the controller, and the peer is not asked again for a while.
void IpmbEndpointPrivate::channelAnswered(const IpmbProtocol::Channel &answer, IpmbNativeHandle socket)
{
    const quint32 peer = answer.peer;
    IpmbRoutes::Member member;
    Credentials credentials;
    QString refused;
    if (answer.status != IpmbErrorCode::None) {
        refused = IpmbErrorInfo(answer.status).message;
    } else if (!isLocalStreamSocket(socket.handle()) || !peerCredentials(Socket(socket.handle()), &credentials)) {
        refused = QStringLiteral("its handle is not a local stream socket");
    } else if (!m_routes.member(peer, &member)) {
        refused = QStringLiteral("the endpoint is not on the bus any more");
    } else if (credentials.uid != currentUserId() || credentials.pid != member.pid) {
        refused = QStringLiteral("the socket is of pid %1, uid %2; the endpoint's process is pid %3")
                          .arg(credentials.pid).arg(credentials.uid).arg(member.pid);
        m_ioWarnings.warn(lcIpmbEndpoint(), "refusing a channel to endpoint %u: %s", peer, qPrintable(refused));
    }
    ChannelPtr channel;
    {
        QMutexLocker locker(&m_channelsMutex);
        channel = m_channelsOut.value(peer);
        if (!channel || channel->open) {
            qCDebug(lcIpmbEndpoint, "ignoring a channel to endpoint %u that this endpoint is not opening", peer);
            return;  // the socket closes with `socket`
        }
        if (!refused.isEmpty()) {
            qCDebug(lcIpmbEndpoint, "no channel to endpoint %u: %s", peer, qPrintable(refused));
            m_channelsOut.remove(peer);
            m_channelRetryAt.insert(peer, m_clock.nsecsElapsed() + qint64(IpmbLimits::ChannelRetryMsecs) * IpmbLimits::NsecsPerMsec);
            // What waited goes through the controller: addressed, behind what went there before.
            channel->outbox.moveQueueTo(m_outbox);
            channel->outbox.close();
            m_requests.movedToController(peer);
            return;
        }
        channel->connection = std::make_unique<IpmbConnection>(Socket(socket.release()));
        channel->connection->setReusesLargeBuffers(true);
        channel->open = true;
        channel->lastUsed = m_clock.nsecsElapsed();
    }
    IpmbProtocol::Sender sender;
    sender.endpointId = peer;
    sender.pid = member.pid;
    sender.uid = credentials.uid;
    sender.label = member.label;
    m_inbox.addChannel(channel->connection.get(), peer, false, sender);
    channel->outbox.attach(channel->connection.get());  // what waited is written from the next poll on
    m_waker.wake();
}

void IpmbEndpointPrivate::closeChannel(const ChannelPtr &channel, const QString &why)
{
    if (!why.isEmpty())
        qCDebug(lcIpmbEndpoint, "closing the channel %s endpoint %u: %s", channel->incoming ? "from" : "to",
                channel->peer, qPrintable(why));
    bool idleClosed = false;
    ChannelPtr next;
    {
        QMutexLocker locker(&m_channelsMutex);
        QHash<quint32, ChannelPtr> &channels = channel->incoming ? m_channelsIn : m_channelsOut;
        if (channels.value(channel->peer) == channel) {
            channels.remove(channel->peer);
            // Closed for want of use: the peer has read everything before the Close. What came
            // for it meanwhile waits for a new channel, as the first messages of any do.
            idleClosed = !channel->incoming && channel->outbox.isHolding();
            if (idleClosed) {
                // A sender that looked the channel up before this finds it closed and looks
                // again (sendRouted()).
                next = std::make_shared<Channel>(this, channel->peer, false);
                channel->outbox.closeMovingHeldTo(next->outbox);
                if (next->outbox.bytesToWrite() > 0)
                    channels.insert(channel->peer, next);
                else
                    next.reset();  // nothing waited: the next message introduces again
            }
        }
    }
    if (next)
        introduce(next->peer);
    if (channel->connection)
        m_inbox.removeChannel(channel->connection.get());
    channel->outbox.close();
    channel->connection.reset();
    // Requests sent while it closed for want of use went to the next channel.
    if (!channel->incoming && !idleClosed)
        m_requests.failOnChannel(channel->peer, IpmbErrorInfo(IpmbErrorCode::PeerLeft,
                IpmbEndpoint::tr("request: the endpoint that got it left before it replied")));
}

// On leave: what the channels queue is written within `drainMsecs` (together), then they close.
void IpmbEndpointPrivate::closeAllChannels(int drainMsecs)
{
    std::vector<ChannelPtr> channels;
    {
        QMutexLocker locker(&m_channelsMutex);
        for (const ChannelPtr &channel : std::as_const(m_channelsOut))
            channels.push_back(channel);
        for (const ChannelPtr &channel : std::as_const(m_channelsIn))
            channels.push_back(channel);
        m_channelRetryAt.clear();
    }
    const QDeadlineTimer deadline(drainMsecs);
    for (const ChannelPtr &channel : channels) {
        while (channel->connection && channel->outbox.wantsWrite() && !deadline.hasExpired()) {
            const IoResult r = channel->outbox.write();
            if (r.status == IoStatus::Closed || r.status == IoStatus::Failed || !channel->outbox.wantsWrite())
                break;
            PollEntry entry {channel->connection->socket(), false, true, false, false};
            IpmbPlatform::poll(&entry, 1, int(qMax<qint64>(deadline.remainingTime(), 0)));
        }
        closeChannel(channel, {});
    }
}

// On leave: the channels still being opened give what waited for them to the controller, which
// the endpoint drains before it closes (addressed, behind what went there before).
void IpmbEndpointPrivate::abandonOpeningChannels()
{
    QMutexLocker locker(&m_channelsMutex);
    for (auto it = m_channelsOut.begin(); it != m_channelsOut.end();) {
        if ((*it)->outbox.isHolding())
            (*it)->outbox.moveHeldTo(m_outbox);  // closing: what waited for the next channel
        if ((*it)->open) {
            ++it;
            continue;
        }
        (*it)->outbox.moveQueueTo(m_outbox);
        (*it)->outbox.close();
        it = m_channelsOut.erase(it);
    }
}

// After a failover: the introductions whose answer may have been lost are asked of the new
// controller (B replaces the channel it made for the lost one).
void IpmbEndpointPrivate::reintroduce()
{
    QMutexLocker locker(&m_channelsMutex);
    for (const ChannelPtr &channel : std::as_const(m_channelsOut)) {
        if (channel->open)
            continue;
        QByteArray introduce;
        IpmbProtocol::appendIntroduce(introduce, channel->peer);
        IpmbErrorInfo ignored;
        m_outbox.send(introduce, {}, &ignored);
    }
}

// A channel nothing was sent on for IpmbLimits::ChannelIdleMsecs, with nothing queued and no
// request waiting for a reply on it, is closed: a Close follows what was written, and what comes
// for the peer from now on is held until the peer has read the Close and closed its end.
void IpmbEndpointPrivate::closeIdleChannels(qint64 nowNsecs)
{
    QMutexLocker locker(&m_channelsMutex);
    for (const ChannelPtr &channel : std::as_const(m_channelsOut)) {
        if (!channel->open || channel->outbox.isHolding()
            || nowNsecs - channel->lastUsed < qint64(IpmbLimits::ChannelIdleMsecs) * IpmbLimits::NsecsPerMsec
            || channel->outbox.bytesToWrite() > 0 || m_requests.hasOnChannel(channel->peer))
            continue;
        QByteArray close;
        IpmbProtocol::appendClose(close);
        IpmbErrorInfo ignored;
        if (channel->outbox.sendAndHold(close, &ignored))
            qCDebug(lcIpmbEndpoint, "closing the channel to endpoint %u: unused for %d ms", channel->peer,
                    IpmbLimits::ChannelIdleMsecs);
    }
}

// Messages dropped for a stuck peer are reported to it on its channel once it reads again.
void IpmbEndpointPrivate::reportChannelDrops()
{
    QMutexLocker locker(&m_channelsMutex);
    for (const ChannelPtr &channel : std::as_const(m_channelsOut)) {
        if (channel->dropped == 0 || !channel->open || channel->outbox.isHolding()
            || channel->outbox.bytesToWrite() >= IpmbLimits::ChannelQueueBytes / 2)
            continue;
        QByteArray frame;
        IpmbProtocol::appendDropped(frame, channel->dropped);
        IpmbErrorInfo ignored;
        if (channel->outbox.send(frame, {}, &ignored))
            channel->dropped = 0;
    }
}

std::vector<IpmbEndpointPrivate::ChannelPtr> IpmbEndpointPrivate::channelsToServe()
{
    std::vector<ChannelPtr> channels;
    QMutexLocker locker(&m_channelsMutex);
    for (const ChannelPtr &channel : std::as_const(m_channelsOut)) {
        if (channel->open)
            channels.push_back(channel);
    }
    for (const ChannelPtr &channel : std::as_const(m_channelsIn))
        channels.push_back(channel);
    return channels;
}

// The read role's thread: a frame on a channel other than a Message.
bool IpmbEndpointPrivate::channelFrame(quint32 peer, const IpmbConnection::Frame &frame, QString *why)
{
    Q_UNUSED(peer);
    switch (frame.header.type) {
    case IpmbProtocol::FrameType::Dropped:
        if (const std::optional<quint64> count = IpmbProtocol::parseDropped(frame.body, why)) {
            QMutexLocker locker(&m_mutex);
            m_ioDropped += *count;
            postSyncLocked();
            return true;
        }
        return false;
    case IpmbProtocol::FrameType::Close:
        return false;  // everything before it is in the inbox: the channel ends here
    default:
        *why = QStringLiteral("unexpected frame of type %1").arg(int(frame.header.type));
        return false;
    }
}
