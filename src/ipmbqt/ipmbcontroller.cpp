// SPDX-License-Identifier: BSD-3-Clause
// The controller's thread: accepting, the Hello, routing, flow control and the ttl buffer. Just
// over 600 lines; they share the peer table and its invariants, which one file keeps in view.
#include "ipmbcontroller_p.h"
#include "ipmblogging_p.h"
#include "ipmbmemoryregion_p.h"
#include "ipmbselectorcodec_p.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qthread.h>

#include <algorithm>
#include <cstring>
#include <limits>

using namespace IpmbPlatform;
using IpmbProtocol::FrameType;

struct IpmbController::Buffered
{
    QByteArray frame;            // as it will be forwarded, sender block included
    QByteArray attachments;      // the kinds of its handles: which regions hold a reference
    QList<IpmbNativeHandle> handles;
    IpmbSelector selector;
    QDeadlineTimer deadline;
    IpmbProtocol::Call call;     // a tracked message's or a request's
    quint32 senderId = 0;
};

IpmbController::IpmbController(const Listener &listener, const QByteArray &token)
    : m_listener(listener), m_token(token), m_uid(currentUserId())
{
}

IpmbController::~IpmbController()
{
    if (m_thread) {
        m_stopping = true;
        m_waker.wake();
        m_thread->wait();
        delete m_thread;
    }
    m_endpoints.clear();
    m_peers.clear();
    closeListener(&m_listener);
}

void IpmbController::start()
{
    m_thread = QThread::create([this] { run(); });
    m_thread->setObjectName(QStringLiteral("IpmbController"));
    m_thread->start();
}

void IpmbController::run()
{
    qCDebug(lcIpmbController, "controller started in pid %lld", currentProcessId());
    m_clock.start();
    // Handles in transit are open descriptors here: do not run out at the default soft limit.
    raiseHandleLimit();
    std::vector<PollEntry> entries;
    while (!m_stopping.load(std::memory_order_relaxed)) {
        entries.clear();
        const bool accepting = m_acceptPausedUntil < 0 || m_clock.elapsed() >= m_acceptPausedUntil;
        entries.push_back({m_listener.socket, accepting, false, false, false});
        entries.push_back({m_waker.socket(), true, false, false, false});
        // A sender whose large frame waits for memory is not read until some is free.
        m_heldFrameBytes = heldFrameBytes();
        const bool memoryFree = m_heldFrameBytes < IpmbLimits::MaxHeldFrameBytes;
        for (const auto &peer : m_peers) {
            const bool read = !peer->parked && (memoryFree || !peer->connection.waitsForMemory());
            entries.push_back({peer->connection.socket(), read,
                               !peer->writeClosed && peer->connection.bytesToWrite() > 0, false, false});
        }
        if (!IpmbPlatform::poll(entries.data(), int(entries.size()), pollTimeout()))
            break;
        if (entries[1].readable)
            m_waker.drain();
        // m_peers only grows below, so the entries still line up with it.
        const size_t polled = entries.size() - 2;
        for (size_t i = 0; i < polled; ++i) {
            Peer &peer = *m_peers[i];
            if (entries[i + 2].readable && !peer.dead)
                serve(peer);
        }
        if (entries[0].readable)
            acceptPeers();
        for (const auto &peer : m_peers) {
            if (!peer->dead && peer->endpointId == 0 && peer->helloDeadline.hasExpired())
                dropPeer(*peer, QStringLiteral("no Hello within %1 ms").arg(IpmbLimits::HelloTimeoutMsecs), true);
        }
        dropUnfinishedFrames();
        expireBuffered();
        flushAll();
        // Senders waiting for room try again now that queues have moved (or receivers became stuck).
        for (size_t i = 0; i < polled; ++i) {
            Peer &peer = *m_peers[i];
            if (peer.parked && !peer.dead) {
                peer.parked = false;
                serve(peer);
            }
        }
        flushAll();
        removeDeadPeers();
    }
    flushAll(); // best effort: hand what is queued to the kernel before closing
    qCDebug(lcIpmbController, "controller stopped");
}

int IpmbController::pollTimeout() const
{
    qint64 timeout = 1000;
    for (const auto &peer : m_peers) {
        if (peer->endpointId == 0)
            timeout = qMin(timeout, peer->helloDeadline.remainingTime());
        if (peer->parked) {
            // Its receiver made room during the last flush, which no poll event will announce:
            // retry at once. Otherwise wake up when that receiver would count as stuck.
            const Peer *to = peer->waitingFor;
            if (!to || to->dead || to->stuck || hasRoom(*to))
                timeout = 0;
            else
                timeout = qMin<qint64>(timeout, to->lastProgress + IpmbLimits::StallTimeoutMsecs - m_clock.elapsed() + 1);
        }
    }
    for (const Buffered &b : m_buffered)
        timeout = qMin(timeout, b.deadline.remainingTime());
    const qint64 now = m_clock.elapsed();
    for (const auto &peer : m_peers) {
        if (const qint64 deadline = frameDeadline(*peer); deadline >= 0)
            timeout = qMin(timeout, deadline - now + 1);
    }
    if (m_acceptPausedUntil >= 0)
        timeout = qMin(timeout, m_acceptPausedUntil - now);
    return int(qMax<qint64>(timeout, 0));
}

void IpmbController::acceptPeers()
{
    m_acceptPausedUntil = -1;
    for (;;) {
        IpmbErrorInfo error;
        const Socket socket = acceptFrom(m_listener.socket, &error);
        if (socket == InvalidSocket) {
            if (!error.isError())
                return;
            // Out of descriptors: the connection waits in the backlog (its endpoint retries until
            // its join timeout). Rest instead of spinning on a listener that stays readable.
            m_warnings.warn(lcIpmbController(), "cannot accept a connection: %s", qPrintable(error.message));
            m_acceptPausedUntil = m_clock.elapsed() + IpmbLimits::AcceptPauseMsecs;
            return;
        }
        auto peer = std::make_unique<Peer>(socket);
        peer->helloDeadline.setRemainingTime(IpmbLimits::HelloTimeoutMsecs);
        // Before its Hello, a connection may send nothing larger than a Hello.
        peer->connection.setMaxBodyLength(IpmbLimits::MaxControlBody);
        if (!peerCredentials(socket, &peer->credentials)) {
            m_warnings.warn(lcIpmbController(), "closing a connection without peer credentials");
            continue;
        }
        qsizetype pending = 0;
        Peer *oldest = nullptr;
        for (const auto &p : m_peers) {
            if (!p->dead && p->endpointId == 0) {
                ++pending;
                if (!oldest)
                    oldest = p.get();
            }
        }
        if (pending >= IpmbLimits::MaxPendingHellos)
            dropPeer(*oldest, QStringLiteral("%1 connections wait for their Hello; the oldest goes").arg(pending), true);
        Peer &added = *peer;
        m_peers.push_back(std::move(peer));
        if (added.credentials.uid != m_uid) {
            refuse(added, IpmbErrorCode::Permission,
                   QCoreApplication::translate("IpmbEndpoint", "A process of uid %1 may not join a bus of uid %2")
                           .arg(added.credentials.uid).arg(m_uid));
            continue;
        }
        serve(added); // an endpoint sends its Hello with the connection: it is mostly here already
    }
}

void IpmbController::serve(Peer &peer)
{
    const qint64 heldBefore = peer.connection.heldFrameBytes();
    const qint64 growthBudget = qMax<qint64>(0, IpmbLimits::MaxHeldFrameBytes - m_heldFrameBytes);
    const auto status = peer.connection.readFrames(
            [&](const IpmbConnection::Frame &frame) { return handleFrame(peer, frame); },
            4 * 1024 * 1024, std::numeric_limits<qsizetype>::max(), growthBudget);
    m_heldFrameBytes += peer.connection.heldFrameBytes() - heldBefore;
    noteFrameProgress(peer);
    if (status == IpmbConnection::ReadStatus::Ok && peer.parked)
        return;
    if (peer.dead)
        return;
    if (status == IpmbConnection::ReadStatus::Closed)
        dropPeer(peer, peer.connection.errorString(), false);
    else if (status == IpmbConnection::ReadStatus::Failed)
        dropPeer(peer, peer.connection.errorString(), true);
}

qint64 IpmbController::heldFrameBytes() const
{
    qint64 held = 0;
    for (const auto &peer : m_peers)
        held += peer->connection.heldFrameBytes();
    return held;
}

// A frame that has begun must end in time: its sender's clock runs only while the controller reads
// from it (not while it is parked or waits for memory), and restarts with every frame completed.
void IpmbController::noteFrameProgress(Peer &peer)
{
    const quint64 frames = peer.connection.framesReceived();
    if (!peer.connection.inFrame())
        peer.frameStart = -1;
    else if (peer.frameStart < 0 || frames != peer.framesSeen || peer.parked || peer.connection.waitsForMemory())
        peer.frameStart = m_clock.elapsed();
    peer.framesSeen = frames;
}

qint64 IpmbController::frameDeadline(const Peer &peer) const
{
    if (peer.dead || peer.frameStart < 0 || peer.parked || peer.connection.waitsForMemory())
        return -1;
    return peer.frameStart + IpmbLimits::FrameTimeoutMsecs + peer.connection.unfinishedFrameLength() * 1000 / IpmbLimits::MinFrameBytesPerSecond;
}

void IpmbController::dropUnfinishedFrames()
{
    const qint64 now = m_clock.elapsed();
    for (const auto &peer : m_peers) {
        if (const qint64 deadline = frameDeadline(*peer); deadline >= 0 && now > deadline) {
            dropPeer(*peer, QStringLiteral("a frame stayed unfinished for %1 ms").arg(now - peer->frameStart), true);
        }
    }
}

IpmbConnection::Action IpmbController::handleFrame(Peer &peer, const IpmbConnection::Frame &frame)
{
    using Action = IpmbConnection::Action;
    if (peer.dead)
        return Action::Stop; // refused: ignore what it pipelined after its Hello
    if (peer.endpointId == 0) {
        if (frame.header.type != FrameType::Hello) {
            dropPeer(peer, QStringLiteral("first frame is not a Hello"), true);
            return Action::Stop;
        }
        return handleHello(peer, frame);
    }
    if (frame.header.version != IpmbProtocol::Version) {
        dropPeer(peer, QStringLiteral("frame of protocol version %1").arg(frame.header.version), true);
        return Action::Stop;
    }
    if (frame.header.type == FrameType::Watch)
        return handleWatch(peer, frame);
    if (frame.header.type == FrameType::Introduce)
        return handleIntroduce(peer, frame);
    if (frame.header.type == FrameType::Channel)
        return handleChannel(peer, frame);
    if (frame.header.type == FrameType::Observed)
        return handleObserved(peer, frame);
    if (frame.header.type != FrameType::Message) {
        dropPeer(peer, QStringLiteral("unexpected frame type %1").arg(int(frame.header.type)), true);
        return Action::Stop;
    }
    if (frame.header.senderLength != 0) {
        dropPeer(peer, QStringLiteral("an endpoint wrote a sender block"), true);
        return Action::Stop;
    }
    const QByteArrayView attachments = IpmbProtocol::messageSections(frame.header, frame.body).attachments;
    for (qsizetype i = 0; i < attachments.size(); ++i) {
        const char kind = attachments[i];
        if (kind == char(IpmbProtocol::AttachmentKind::Handle))
            continue;
        // A region's reference count is adjusted here, so it must really be one.
        IpmbErrorInfo error;
        if (!IpmbProtocol::isRegion(kind) || !IpmbMemoryRegionPrivate::validate(frame.handles.at(i), &error)) {
            dropPeer(peer, QStringLiteral("attachment %1 is not a handle or region: %2").arg(i).arg(error.message), true);
            return Action::Stop;
        }
    }
    const Action action = route(peer, frame);
    return peer.dead ? Action::Stop : action;
}

IpmbConnection::Action IpmbController::handleHello(Peer &peer, const IpmbConnection::Frame &frame)
{
    if (frame.header.version != IpmbProtocol::Version) {
        refuse(peer, IpmbErrorCode::VersionMismatch,
               QCoreApplication::translate("IpmbEndpoint", "The bus controller speaks protocol version %1, the endpoint version %2")
                       .arg(IpmbProtocol::Version).arg(frame.header.version));
        return IpmbConnection::Action::Stop;
    }
    QString why;
    const std::optional<IpmbProtocol::Hello> hello = IpmbProtocol::parseHello(frame.body, &why);
    if (!hello) {
        dropPeer(peer, QStringLiteral("malformed Hello: ") + why, true);
        return IpmbConnection::Action::Stop;
    }
    if (!IpmbProtocol::constantTimeEquals(hello->token, m_token)) {
        refuse(peer, IpmbErrorCode::TokenMismatch, QCoreApplication::translate("IpmbEndpoint", "The bus refused the token"));
        return IpmbConnection::Action::Stop;
    }
    if ((hello->features & IpmbProtocol::IsMonitor) && peer.credentials.uid != m_uid) {
        refuse(peer, IpmbErrorCode::Permission,
               QCoreApplication::translate("IpmbEndpoint", "Only the bus's own user may monitor it"));
        return IpmbConnection::Action::Stop;
    }
    peer.connection.setMaxBodyLength(IpmbLimits::MaxMessageBody);
    welcome(peer, *hello);
    deliverBuffered(peer);
    return IpmbConnection::Action::Consumed;
}

void IpmbController::refuse(Peer &peer, IpmbErrorCode error, const QString &reason)
{
    m_warnings.warn(lcIpmbController(), "refusing pid %lld: %s", peer.credentials.pid, qPrintable(reason));
    IpmbProtocol::appendRefuse(peer.connection.tail(), error, reason);
    peer.connection.flush();
    peer.dead = true; // closed once this pass is over; the Refuse is already in the kernel
}

// Decodes the selector of `from`'s message unless it is the one before; false if malformed (then
// `from` is dropped).
bool IpmbController::decodeSelector(Peer &from, QByteArrayView selectorBytes)
{
    if (IpmbProtocol::sameBytes(from.lastSelectorBytes, selectorBytes))
        return true;
    QString why;
    std::optional<IpmbSelector> selector = IpmbSelectorCodec::decodeSelector(selectorBytes, &why);
    if (!selector) {
        dropPeer(from, QStringLiteral("malformed selector: ") + why, true);
        from.lastMatches.clear();
        return false;
    }
    from.lastSelectorBytes = selectorBytes.toByteArray();
    from.lastSelector = *selector;
    from.lastGeneration = ~quint64(0);
    return true;
}

const std::vector<IpmbController::Peer *> &IpmbController::matchesFor(Peer &from, QByteArrayView selectorBytes,
                                                                      bool *ok)
{
    *ok = decodeSelector(from, selectorBytes);
    if (!*ok)
        return from.lastMatches;
    if (from.lastGeneration != m_generation) {
        from.lastMatches.clear();
        const IpmbLabelOp op = from.lastSelector.labelOp();
        for (const auto &peer : m_peers) {
            if (peer->endpointId != 0 && !peer->dead && !peer->monitor && op.matches(peer->label))
                from.lastMatches.push_back(peer.get());
        }
        from.lastGeneration = m_generation;
    }
    return from.lastMatches;
}

// A receiver whose queue is full gets no more until it drains. The sender of such a message is
// parked (not read from) meanwhile, which is flow control for slow receivers; a receiver that
// reads nothing for StallTimeoutMsecs is stuck, and its messages are dropped instead (counted,
// and reported to it with a Dropped frame), so that it cannot stall its senders for longer.
bool IpmbController::hasRoom(const Peer &to)
{
    return to.connection.bytesToWrite() < IpmbLimits::ReceiverQueueBytes && to.connection.handlesToWrite() < IpmbLimits::ReceiverQueueHandles;
}

IpmbController::Room IpmbController::roomIn(Peer &to)
{
    if (hasRoom(to))
        return Room::Yes;
    if (!to.stuck && m_clock.elapsed() - to.lastProgress > IpmbLimits::StallTimeoutMsecs) {
        m_warnings.warn(lcIpmbController(), "endpoint %u (pid %lld) reads nothing: dropping messages for it",
                        to.endpointId, to.credentials.pid);
        to.stuck = true;
    }
    return to.stuck ? Room::Stuck : Room::Full;
}

// The sender added one reference per region for the message in flight; make that one per
// receiver. A buffered message keeps it until it is delivered (then it is that receiver's) or
// expires (then it is released).
void IpmbController::addRegionReferences(const IpmbConnection::Frame &frame, int delta)
{
    if (delta != 0 && frame.header.handleCount != 0)
        addRegionReferences(IpmbProtocol::messageSections(frame.header, frame.body).attachments, frame.handles, delta);
}

void IpmbController::addRegionReferences(QByteArrayView attachments, const QList<IpmbNativeHandle> &handles,
                                         int delta)
{
    for (qsizetype i = 0; i < attachments.size(); ++i) {
        if (IpmbProtocol::isRegion(attachments[i]))
            IpmbMemoryRegionPrivate::addReferences(handles.at(i), delta);
    }
}

IpmbConnection::Action IpmbController::route(Peer &from, const IpmbConnection::Frame &frame)
{
    const IpmbProtocol::MessageSections sections = IpmbProtocol::messageSections(frame.header, frame.body);
    const IpmbProtocol::Call call = IpmbProtocol::callOf(frame.header, sections);
    Routed routed;
    if (call.flags & IpmbProtocol::Reply) {
        const IpmbConnection::Action action = routeReply(from, frame, call, &routed);
        if (action == IpmbConnection::Action::Consumed && !m_monitors.empty())
            observeRouted(from, frame, call, routed);
        return action;
    }
    const IpmbConnection::Action action = routeMatched(from, sections.selector, frame, call, &routed);
    if (action != IpmbConnection::Action::Consumed)
        return action;
    if (!m_monitors.empty())
        observeRouted(from, frame, call, routed);
    if (routed.deliveries >= 0)
        addRegionReferences(frame, routed.deliveries - 1);
    if (call.flags)
        routedCall(from, call, routed);
    return action;
}

IpmbConnection::Action IpmbController::routeMatched(Peer &from, QByteArrayView selectorBytes,
                                                    const IpmbConnection::Frame &frame,
                                                    const IpmbProtocol::Call &call, Routed *routed)
{
    using Action = IpmbConnection::Action;
    bool ok;
    const bool addressed = call.flags & IpmbProtocol::Addressed;
    const std::vector<Peer *> &matches = addressed ? addressedMatch(from, selectorBytes, call.target, &ok)
                                                   : matchesFor(from, selectorBytes, &ok);
    if (!ok)
        return Action::Stop;
    if ((call.flags & IpmbProtocol::Request) && from.lastSelector.mode() != IpmbSelector::Unicast) {
        dropPeer(from, QStringLiteral("a multicast request"), true);
        return Action::Stop;
    }
    if (matches.empty()) {
        // An addressed message was for one endpoint, which has gone: nobody else gets it.
        const qint64 ttl = addressed ? 0 : from.lastSelector.ttl().count();
        if (ttl > 0) {
            buffer(from, frame, ttl, call);
            routed->deliveries = -1;
        } else {
            routed->noMatch = true;
        }
        return Action::Consumed;
    }
    if (from.lastSelector.mode() == IpmbSelector::Multicast) {
        for (Peer *to : matches) {
            if (roomIn(*to) == Room::Full) {
                from.parked = true;
                from.waitingFor = to;
                return Action::Keep;
            }
        }
        for (Peer *to : matches) {
            if (roomIn(*to) == Room::Stuck) {
                ++to->dropped;
            } else {
                deliver(*to, from, frame);
                ++routed->deliveries;
            }
        }
        return Action::Consumed;
    }
    // Unicast: round-robin over the receivers with room; wait if one is only full.
    const size_t start = size_t(m_roundRobin % matches.size());
    const Peer *full = nullptr;
    for (size_t i = 0; i < matches.size(); ++i) {
        Peer *to = matches[(start + i) % matches.size()];
        const Room room = roomIn(*to);
        if (room == Room::Yes) {
            deliver(*to, from, frame);
            ++m_roundRobin;
            routed->deliveries = 1;
            routed->receiver = to;
            return Action::Consumed;
        }
        if (room == Room::Full && !full)
            full = to;
    }
    if (full) {
        from.parked = true;
        from.waitingFor = full;
        return Action::Keep;
    }
    ++matches[start]->dropped; // every match is stuck
    ++m_roundRobin;
    return Action::Consumed;
}

void IpmbController::deliver(Peer &to, const Peer &from, const IpmbConnection::Frame &frame)
{
    if (to.connection.bytesToWrite() == 0)
        to.lastProgress = m_clock.elapsed(); // an idle queue has not been stalling
    to.connection.appendHandles(frame.handles); // the kernel gives the receiver its own copies
    QByteArray &out = to.connection.tail();
    IpmbProtocol::appendForwardedHeader(out, frame.header, from.senderBlock);
    if (frame.storage)
        to.connection.appendShared(*frame.storage, IpmbProtocol::HeaderSize);
    else
        out.append(frame.body.data(), frame.body.size());
}

void IpmbController::buffer(const Peer &from, const IpmbConnection::Frame &frame, qint64 ttlMsecs,
                            const IpmbProtocol::Call &call)
{
    Buffered b;
    b.call = call;
    b.senderId = from.endpointId;
    IpmbProtocol::appendForwardedHeader(b.frame, frame.header, from.senderBlock);
    b.frame.append(frame.body.data(), frame.body.size());
    b.attachments = IpmbProtocol::messageSections(frame.header, frame.body).attachments.toByteArray();
    b.handles = frame.handles;
    b.selector = from.lastSelector;
    b.deadline.setRemainingTime(ttlMsecs);
    m_bufferedBytes += b.frame.size();
    m_bufferedHandles += b.handles.size();
    m_buffered.push_back(std::move(b));
    while (m_buffered.size() > size_t(IpmbLimits::TtlBufferMessages) || m_bufferedBytes > IpmbLimits::TtlBufferBytes
           || m_bufferedHandles > IpmbLimits::TtlBufferHandles) {
        qCDebug(lcIpmbController, "ttl buffer full: dropping the oldest message");
        dropOldestBuffered();
    }
}

void IpmbController::deliverBuffered(Peer &joined)
{
    if (joined.monitor)
        return;
    for (auto it = m_buffered.begin(); it != m_buffered.end();) {
        if (!it->deadline.hasExpired() && it->selector.labelOp().matches(joined.label)) {
            joined.connection.appendHandles(it->handles);
            joined.connection.appendShared(it->frame, 0);
            if (it->call.flags & IpmbProtocol::Request)
                recordRequest(joined, it->senderId, it->call);
            forgetBuffered(*it);
            it = m_buffered.erase(it);
        } else {
            ++it;
        }
    }
}

// Releases the in-flight references of a buffered message's regions.
static void releaseBuffered(const QByteArray &attachments, const QList<IpmbNativeHandle> &handles)
{
    IpmbController::addRegionReferences(attachments, handles, -1);
}

void IpmbController::forgetBuffered(const Buffered &buffered)
{
    m_bufferedBytes -= buffered.frame.size();
    m_bufferedHandles -= buffered.handles.size();
}

void IpmbController::dropOldestBuffered()
{
    const Buffered &oldest = m_buffered.front();
    tellUndeliverable(oldest.senderId, oldest.call, IpmbErrorCode::QueueFull);
    releaseBuffered(oldest.attachments, oldest.handles);
    forgetBuffered(oldest);
    m_buffered.pop_front();
}

void IpmbController::expireBuffered()
{
    for (auto it = m_buffered.begin(); it != m_buffered.end();) {
        if (it->deadline.hasExpired()) {
            tellUndeliverable(it->senderId, it->call, IpmbErrorCode::NoRoute);
            releaseBuffered(it->attachments, it->handles);
            forgetBuffered(*it);
            it = m_buffered.erase(it);
        } else {
            ++it;
        }
    }
}

void IpmbController::flushAll()
{
    qint64 queued = 0;
    for (const auto &peer : m_peers) {
        if (peer->dead)
            continue;
        if (peer->connection.bytesToWrite() < IpmbLimits::ReceiverQueueBytes / 2) {
            peer->stuck = false;
            if (peer->dropped) {
                qCDebug(lcIpmbController, "endpoint %u: %llu messages were dropped", peer->endpointId,
                        peer->dropped);
                IpmbProtocol::appendDropped(peer->connection.tail(), peer->dropped);
                peer->dropped = 0;
            }
            if (std::exchange(peer->missedPeers, false) && peer->watching())
                sendPeerList(*peer);
        }
        if (peer->connection.bytesToWrite() == 0 || peer->writeClosed)
            continue;
        const IoResult r = peer->connection.flush();
        if (r.bytes > 0)
            peer->lastProgress = m_clock.elapsed();
        // An endpoint that closed its end may have sent frames before it did (a sender that left
        // right after a burst): they are read to its end of stream, where serve() drops it.
        if (r.status == IoStatus::Closed)
            peer->writeClosed = true;
        else if (r.status == IoStatus::Failed)
            dropPeer(*peer, r.error.message, true);
        queued += peer->connection.bytesToWrite();
    }
    // Once queues (a stopped receiver's, say) and large frames that held megabytes are gone, give
    // the memory back: the allocator would keep it for this process otherwise.
    const qint64 held = queued + m_heldFrameBytes;
    if (held >= IpmbLimits::MemoryEpisodeBytes) {
        m_memoryEpisode = true;
    } else if (m_memoryEpisode && held < IpmbLimits::MemoryEpisodeBytes / 8) {
        m_memoryEpisode = false;
        releaseFreeMemory();
    }
}

void IpmbController::dropPeer(Peer &peer, const QString &reason, bool warn)
{
    if (peer.dead)
        return;
    if (warn)
        m_warnings.warn(lcIpmbController(), "dropping endpoint %u (pid %lld): %s", peer.endpointId,
                        peer.credentials.pid, qPrintable(reason));
    else
        qCDebug(lcIpmbController, "endpoint %u (pid %lld) left: %s", peer.endpointId,
                peer.credentials.pid, qPrintable(reason));
    peer.dead = true;
    if (peer.endpointId != 0) {
        ++m_generation;
        failRequestsTo(peer);
        failIntroductionsOf(peer);
        announceLeft(peer);
    }
}

void IpmbController::removeDeadPeers()
{
    for (const auto &peer : m_peers) {
        if (peer->waitingFor && peer->waitingFor->dead)
            peer->waitingFor = nullptr;
    }
    m_peers.erase(std::remove_if(m_peers.begin(), m_peers.end(),
                                 [](const std::unique_ptr<Peer> &p) { return p->dead; }),
                  m_peers.end());
}
