// SPDX-License-Identifier: BSD-3-Clause
// The I/O thread of an endpoint (IpmbEndpointPrivate's I/O-thread part, see ipmbendpoint_p.h):
// election, the connection to the controller and its failover, and the loop that serves the
// connection with the outbox (writing) and the inbox (reading).
#include "ipmbendpoint_p.h"
#include "ipmblogging_p.h"
#include "ipmbmemoryregion_p.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qdatetime.h>
#include <QtCore/qrandom.h>

using namespace IpmbPlatform;
using IpmbProtocol::FrameType;

void IpmbEndpointPrivate::setIoState(IpmbEndpoint::State state)
{
    QMutexLocker locker(&m_mutex);
    if (m_ioState == state)
        return;
    m_ioState = state;
    m_ioStateChanges.append(state);
    m_ioStateChanged.wakeAll();
    postSyncLocked();
}

// Keeps what the endpoint's thread needs to know of the bus's members, in the order it was read.
// False if that would pass IpmbLimits::MaxPeerNotes or MaxPeerNoteBytes (a controller that
// sends more than the endpoint's thread takes).
bool IpmbEndpointPrivate::notePeers(const IpmbPeerTable::Note &note)
{
    PeerNote peerNote {note, m_inbox.queuedCount()};
    QMutexLocker locker(&m_mutex);
    // A lost controller is always noted (one per failover): the list's rules depend on it.
    if (note.kind != IpmbPeerTable::Note::ControllerLost
        && (qsizetype(m_ioPeerNotes.size()) >= IpmbLimits::MaxPeerNotes
            || m_ioPeerNoteBytes + note.bytes > IpmbLimits::MaxPeerNoteBytes))
        return false;
    m_ioPeerNoteBytes += note.bytes;
    m_ioPeerNotes.push_back(std::move(peerNote));
    m_ioStateChanged.wakeAll();  // waitForPeer()
    postSyncLocked();
    return true;
}

// Introductions and answers wait for the I/O thread (each may hold a socket): a controller that
// sends more than two per possible channel before that thread gets to them is broken.
bool IpmbEndpointPrivate::mayQueueChannelEvent(QString *why)
{
    QMutexLocker locker(&m_mutex);
    if (qsizetype(m_ioChannelEvents.size()) < 2 * IpmbLimits::MaxChannels)
        return true;
    *why = QStringLiteral("%1 introductions wait for the I/O thread already").arg(m_ioChannelEvents.size());
    return false;
}

void IpmbEndpointPrivate::failIo(const IpmbErrorInfo &error)
{
    qCDebug(lcIpmbEndpoint) << "I/O failed:" << publicError(error.code) << error.message;
    QMutexLocker locker(&m_mutex);
    m_ioError = error;
    postSyncLocked();
}

// Sleeps up to msecs, returning early (true) when stop() wakes the thread.
bool IpmbEndpointPrivate::waitOnWaker(int msecs)
{
    PollEntry entry {m_waker.socket(), true, false, false, false};
    IpmbPlatform::poll(&entry, 1, msecs);
    return m_stopping;
}

void IpmbEndpointPrivate::ioMain()
{
    QDeadlineTimer deadline(m_ioJoinTimeout);
    while (!m_stopping) {
        IpmbErrorInfo error;
        const Socket socket = electAndConnect(deadline, &error);
        if (socket == InvalidSocket) {
            if (!m_stopping)
                failIo(error);
            break;
        }
        {
            QMutexLocker locker(&m_mutex);
            m_connection = std::make_unique<IpmbConnection>(socket);
            m_connection->setReusesLargeBuffers(true);  // decodeMessage() copies payloads out
            // The Hello first; then what was sent meanwhile, pipelined behind it. After a
            // failover it claims this endpoint's id and join time (doc/protocol.md, "Presence").
            IpmbProtocol::Hello hello = IpmbProtocol::Hello::first(m_ioToken, m_ioLabel);
            hello.features = (m_watchPeers ? IpmbProtocol::WatchPeers : 0)
                    | (m_controller ? IpmbProtocol::HostsController : 0)
                    | (m_routing ? IpmbProtocol::RoutesItself : 0)
                    | (m_monitor ? IpmbProtocol::IsMonitor : 0);
            hello.claimedId = m_ioEndpointId;
            hello.joinedAt = m_ioJoinedAt;
            IpmbProtocol::appendHello(m_connection->tail(), hello);
        }
        m_outbox.attach(m_connection.get());
        m_inbox.attach(m_connection.get());
        m_welcomed = false;
        const Outcome outcome = serveConnection(deadline);
        m_inbox.detach();
        if (outcome == Outcome::Stopped) {
            abandonOpeningChannels();  // what waited for them goes through the controller
            drainOutput(1000);
        }
        m_outbox.detach();
        {
            QMutexLocker locker(&m_mutex);
            m_connection.reset();
        }
        if (outcome != Outcome::Lost)
            break;
        qCDebug(lcIpmbEndpoint, "lost the bus controller; electing a new one");
        if (m_welcomed) {
            // Those on channels still get their replies: the channels go on.
            m_requests.failThroughController(IpmbErrorInfo(IpmbErrorCode::Disconnected,
                    IpmbEndpoint::tr("request: the bus controller was lost before the reply came")));
            notePeers({IpmbPeerTable::Note::ControllerLost, {}, 0});
            m_routes.controllerLost();  // channels go on; the new list confirms their peers
            setIoState(IpmbEndpoint::ReconnectingState);
        }
        deadline.setRemainingTime(m_ioJoinTimeout);
    }
    m_controller.reset();
    closeAllChannels(m_stopping ? 1000 : 0);
    m_routes.clear();
    m_routing = false;
    m_busMonitored = false;
    m_selfId = 0;
    m_outbox.close();
    m_inbox.close();
    m_requests.failAll(IpmbErrorInfo(IpmbErrorCode::Disconnected,
                                     IpmbEndpoint::tr("request: the endpoint left the bus before the reply came")));
    m_ioJoinedAt = 0;
    QMutexLocker locker(&m_mutex);
    m_ioIsController = false;
    m_ioEndpointId = 0;
    m_ioState = IpmbEndpoint::UnjoinedState;
    m_ioStateChanges.append(IpmbEndpoint::UnjoinedState);
    m_ioStateChanged.wakeAll();
    postSyncLocked();
}

Socket IpmbEndpointPrivate::electAndConnect(const QDeadlineTimer &deadline, IpmbErrorInfo *error)
{
    QByteArray address;
    if (!busAddress(m_ioIdentifier, &address, error))
        return InvalidSocket;  // the bus directory is not safe to use: retrying changes nothing
    // A controller of another user should be impossible (only this user can create the socket);
    // if one answers anyway, it is not talked to, and the election goes on until the deadline.
    IpmbErrorInfo foreign;
    // An endpoint that hosts no controller finds nobody there after a moment: no election is
    // going on (one takes milliseconds), so nobody is on the bus. After a failover it waits as
    // long as any endpoint does for a new controller.
    QDeadlineTimer nobody(m_ioJoinedAt == 0 ? IpmbLimits::NobodyThereMsecs : m_ioJoinTimeout);
    while (!m_stopping) {
        Socket socket = InvalidSocket;
        switch (connectTo(address, &socket, error)) {
        case ConnectStatus::Connected: {
            Credentials controller;
            if (!peerCredentials(socket, &controller)) {
                closeSocket(socket);
                foreign = IpmbErrorInfo(IpmbErrorCode::Permission,
                                        IpmbEndpoint::tr("Cannot read the credentials of the bus controller"));
                break;
            }
            // Checked before a byte (the token!) goes out.
            if (controller.uid != currentUserId()) {
                closeSocket(socket);
                const bool first = !foreign.isError();  // tried again every few ms: warn once
                foreign = IpmbErrorInfo(IpmbErrorCode::Permission,
                                        IpmbEndpoint::tr("The bus '%1' is held by a process of another user "
                                                         "(uid %2, pid %3)")
                                                .arg(m_ioIdentifier).arg(controller.uid).arg(controller.pid));
                if (first)
                    qCWarning(lcIpmbEndpoint, "%s", qPrintable(foreign.message));
                break;
            }
            return socket;
        }
        case ConnectStatus::Failed:
            return InvalidSocket;
        case ConnectStatus::NoListener: {
            if (m_joinsOnly && nobody.hasExpired()) {
                *error = IpmbErrorInfo(IpmbErrorCode::NoRoute,
                                       IpmbEndpoint::tr("Nobody is on the bus '%1'").arg(m_ioIdentifier));
                return InvalidSocket;
            }
            if (m_controller || m_joinsOnly)
                break;
            Listener listener;
            switch (listenOn(address, &listener, error)) {
            case ListenStatus::Listening:
                qCDebug(lcIpmbEndpoint, "this process is now the controller of '%s'", qPrintable(m_ioIdentifier));
                m_controller = std::make_unique<IpmbController>(listener, m_ioToken);
                m_controller->start();
                {
                    QMutexLocker locker(&m_mutex);
                    m_ioIsController = true;
                    postSyncLocked();
                }
                continue; // connect to it like everybody else
            case ListenStatus::AddressInUse:
                break;    // somebody else holds the election lock: they are about to listen
            case ListenStatus::Failed:
                return InvalidSocket;
            }
            break;
        }
        }
        if (deadline.hasExpired())
            break;
        if (waitOnWaker(QRandomGenerator::global()->bounded(1, 5)))
            break;
    }
    *error = foreign.isError() ? foreign
                               : IpmbErrorInfo(IpmbErrorCode::Timeout,
                                               IpmbEndpoint::tr("No bus controller for '%1' answered within %2 ms")
                                                       .arg(m_ioIdentifier).arg(m_ioJoinTimeout));
    return InvalidSocket;
}

static IpmbEndpointPrivate::Outcome outcomeOf(IpmbInbox::ReadOutcome outcome)
{
    return outcome == IpmbInbox::ReadOutcome::Failed ? IpmbEndpointPrivate::Outcome::Failed
                                                     : IpmbEndpointPrivate::Outcome::Lost;
}

IpmbEndpointPrivate::Outcome IpmbEndpointPrivate::serveConnection(const QDeadlineTimer &joinDeadline)
{
    std::vector<PollEntry> entries;
    std::vector<ChannelPtr> channels;
    while (!m_stopping) {
        handleChannelEvents();
        int timeout = m_welcomed ? 1000 : int(qMax<qint64>(joinDeadline.remainingTime(), 0));
        if (const int requests = m_requests.sweep(m_clock.nsecsElapsed()); requests >= 0)
            timeout = qMin(timeout, requests);  // a timeout is due, or cancelled futures to forget
        const IpmbInbox::PollPlan plan = m_inbox.planPoll(timeout);
        for (IpmbConnection *lost : plan.lostChannels) {
            for (const ChannelPtr &channel : channelsToServe()) {
                if (channel->connection.get() == lost)
                    closeChannel(channel, QStringLiteral("it ended"));
            }
        }
        if (plan.outcome)
            return outcomeOf(*plan.outcome);  // found by a receive() thread
        reportChannelDrops();
        channels = channelsToServe();
        entries.clear();
        entries.push_back({m_connection->socket(), plan.read, m_outbox.wantsWrite(), false, false});
        entries.push_back({m_waker.socket(), true, false, false, false});
        for (const ChannelPtr &channel : channels)
            entries.push_back({channel->connection->socket(), plan.read, channel->outbox.wantsWrite(), false, false});
        if (!IpmbPlatform::poll(entries.data(), int(entries.size()), plan.timeoutMsecs)) {
            failIo(IpmbErrorInfo(IpmbErrorCode::Unknown, IpmbEndpoint::tr("poll failed")));
            return Outcome::Failed;
        }
        if (entries[1].readable)
            m_waker.drain();
        // Returns the memory of regions freed elsewhere that this process still maps idly, and
        // what the queues held at their peak.
        if (const qint64 now = m_clock.nsecsElapsed(); now - m_lastMappingSweep >= IpmbLimits::MappingSweepNsecs) {
            m_lastMappingSweep = now;
            IpmbMemoryRegionPrivate::sweepMappings();
            m_payloadRegions.expire(now);
            m_outbox.releaseIdleMemory();
            closeIdleChannels(now);
            if (m_inbox.sweep())
                IpmbPlatform::releaseFreeMemory();
        }
        if (!m_welcomed && joinDeadline.hasExpired()) {
            failIo(IpmbErrorInfo(IpmbErrorCode::Timeout,
                                 IpmbEndpoint::tr("The bus controller did not answer within %1 ms")
                                         .arg(m_ioJoinTimeout)));
            return Outcome::Failed;
        }
        // The channels first: a broken one is closed, and the controller's connection may end
        // the loop.
        for (size_t i = 0; i < channels.size(); ++i) {
            const PollEntry &entry = entries[i + 2];
            const ChannelPtr &channel = channels[i];
            bool ended = false;
            if (entry.writable) {
                const IoResult r = channel->outbox.write();
                ended = r.status == IoStatus::Closed || r.status == IoStatus::Failed;
            }
            if (!ended && entry.readable)
                ended = !m_inbox.readChannel(channel->connection.get());
            if (ended)
                closeChannel(channel, QStringLiteral("it ended"));
        }
        if (entries[0].writable) {
            const IoResult r = m_outbox.write();
            if (r.status == IoStatus::Closed || r.status == IoStatus::Failed)
                return Outcome::Lost;
        }
        if (entries[0].readable) {
            const IpmbInbox::ReadOutcome outcome = m_inbox.read();
            if (outcome != IpmbInbox::ReadOutcome::Ok)
                return outcomeOf(outcome);
        }
    }
    return Outcome::Stopped;
}

void IpmbEndpointPrivate::messagesArrived()
{
    if (m_receiverConnections > 0 && !t_deliversWhatItReads) {
        QMutexLocker locker(&m_mutex);
        postSyncLocked();
    }
}

// Everything but a Message after the Welcome (IpmbInbox decodes those). Returns false to stop
// reading; *outcome then says why.
bool IpmbEndpointPrivate::controlFrame(const IpmbConnection::Frame &frame, IpmbInbox::ReadOutcome *outcome)
{
    using ReadOutcome = IpmbInbox::ReadOutcome;
    const IpmbProtocol::Header &header = frame.header;
    if (header.type == FrameType::Refuse) {
        QString why;
        const std::optional<IpmbProtocol::Refuse> refuse = IpmbProtocol::parseRefuse(frame.body, &why);
        IpmbErrorInfo error = refuse ? IpmbErrorInfo(refuse->error, refuse->reason)
                                     : IpmbErrorInfo(IpmbErrorCode::Protocol,
                                                     IpmbEndpoint::tr("The bus controller refused to talk: %1").arg(why));
        // A Refuse's layout is the same in every version: say which one the controller speaks.
        if (refuse && refuse->controllerVersion != IpmbProtocol::Version && refuse->error != IpmbErrorCode::VersionMismatch)
            error.message += IpmbEndpoint::tr(" (the controller speaks protocol version %1, this endpoint %2)")
                                     .arg(refuse->controllerVersion).arg(IpmbProtocol::Version);
        failIo(error);
        *outcome = ReadOutcome::Failed;
        return false;
    }
    if (header.version != IpmbProtocol::Version) {
        failIo(IpmbErrorInfo(IpmbErrorCode::VersionMismatch,
                             IpmbEndpoint::tr("The bus controller speaks protocol version %1, this endpoint version %2")
                                     .arg(header.version).arg(IpmbProtocol::Version)));
        *outcome = ReadOutcome::Failed;
        return false;
    }
    QString why;
    switch (header.type) {
    case FrameType::Welcome: {
        const std::optional<IpmbProtocol::Welcome> welcome =
                m_welcomed ? std::nullopt : IpmbProtocol::parseWelcome(frame.body, &why);
        if (!welcome)
            break;
        m_welcomed = true;  // the I/O thread reads until the Welcome
        m_inbox.setWelcomed();
        m_busMonitored = welcome->features & IpmbProtocol::BusMonitored;
        if (m_ioJoinedAt == 0)
            m_ioJoinedAt = QDateTime::currentMSecsSinceEpoch();
        {
            QMutexLocker locker(&m_mutex);
            m_ioEndpointId = welcome->endpointId;
        }
        m_selfId = welcome->endpointId;
        m_routes.setSelf(welcome->endpointId, m_ioLabel);
        reintroduce();
        setIoState(IpmbEndpoint::JoinedState);
        return true;
    }
    case FrameType::Monitoring: {
        const std::optional<quint32> monitors = m_welcomed ? IpmbProtocol::parseMonitoring(frame.body, &why) : std::nullopt;
        if (!monitors)
            break;
        m_busMonitored = *monitors > 0;
        return true;
    }
    case FrameType::Dropped: {
        const std::optional<quint64> count = IpmbProtocol::parseDropped(frame.body, &why);
        if (!count)
            break;
        QMutexLocker locker(&m_mutex);
        m_ioDropped += *count;
        postSyncLocked();
        return true;
    }
    case FrameType::Undeliverable: {
        const std::optional<IpmbProtocol::Undeliverable> notice =
                m_welcomed ? IpmbProtocol::parseUndeliverable(frame.body, &why) : std::nullopt;
        if (!notice)
            break;
        const IpmbErrorInfo error(notice->error, notice->error == IpmbErrorCode::PeerLeft
                ? IpmbEndpoint::tr("request: the endpoint that got it left before it replied")
                : notice->error == IpmbErrorCode::NoRoute ? IpmbEndpoint::tr("request: no endpoint matched")
                : notice->error == IpmbErrorCode::QueueFull
                ? IpmbEndpoint::tr("request: the bus controller dropped it (every match was stuck, its ttl buffer "
                                   "was full, or the replier owed too many replies)")
                : QString());
        if (!m_requests.fail(notice->id, error)) {  // else a tracked message's
            QMutexLocker locker(&m_mutex);
            m_ioUndeliverable.emplace_back(notice->id, notice->error);
            postSyncLocked();
        }
        return true;
    }
    case FrameType::Peer: {
        const std::optional<IpmbProtocol::Peer> peer = m_welcomed ? IpmbProtocol::parsePeer(frame.body, &why) : std::nullopt;
        if (!peer)
            break;
        m_routes.apply(*peer);
        if (peer->event == IpmbProtocol::PeerEvent::ListEnd) {
            // After a failover: those the new controller did not list go, but for the peers this
            // endpoint has a channel with (that ends when they do).
            QSet<quint32> withChannels;
            {
                QMutexLocker locker(&m_channelsMutex);
                for (auto it = m_channelsOut.cbegin(); it != m_channelsOut.cend(); ++it)
                    withChannels.insert(it.key());
                for (auto it = m_channelsIn.cbegin(); it != m_channelsIn.cend(); ++it)
                    withChannels.insert(it.key());
            }
            m_routes.forgetUnconfirmed([&](quint32 id) { return withChannels.contains(id); });
        }
        if (!m_watchPeers || notePeers(IpmbPeerTable::noteFrom(*peer, frame.body.size())))
            return true;
        why = QStringLiteral("%1 Peer frames wait for the endpoint's thread already").arg(IpmbLimits::MaxPeerNotes);
        break;
    }
    case FrameType::Introduce: {
        std::optional<IpmbProtocol::Introduced> introduced =
                m_welcomed ? IpmbProtocol::parseIntroduced(frame.body, &why) : std::nullopt;
        if (!introduced || !mayQueueChannelEvent(&why))
            break;
        QMutexLocker locker(&m_mutex);
        m_ioChannelEvents.push_back({std::move(introduced), {}, {}});
        m_waker.wake();  // the I/O thread owns the channels
        return true;
    }
    case FrameType::Channel: {
        const std::optional<IpmbProtocol::Channel> answer =
                m_welcomed ? IpmbProtocol::parseChannel(frame.header, frame.body, &why) : std::nullopt;
        if (!answer || !mayQueueChannelEvent(&why))
            break;
        QMutexLocker locker(&m_mutex);
        m_ioChannelEvents.push_back({std::nullopt, *answer, frame.handles.value(0)});
        m_waker.wake();
        return true;
    }
    default:
        break;  // a Message before the Welcome, or without a sender block
    }
    qCWarning(lcIpmbEndpoint, "dropping the connection to the bus controller: unexpected frame of type %d%s%s",
              int(header.type), why.isEmpty() ? "" : ": ", qPrintable(why));
    *outcome = ReadOutcome::Lost;
    return false;
}

void IpmbEndpointPrivate::drainOutput(int msecs)
{
    const QDeadlineTimer deadline(msecs);
    while (m_outbox.wantsWrite() && !deadline.hasExpired()) {
        const IoResult r = m_outbox.write();
        if (r.status == IoStatus::Closed || r.status == IoStatus::Failed || !m_outbox.wantsWrite())
            break;
        PollEntry entry {m_connection->socket(), false, true, false, false};
        IpmbPlatform::poll(&entry, 1, int(qMax<qint64>(deadline.remainingTime(), 0)));
    }
}
