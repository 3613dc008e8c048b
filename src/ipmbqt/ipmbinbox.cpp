// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbinbox_p.h"
#include "ipmblimits_p.h"
#include "ipmbmemoryregion_p.h"
#include "ipmbmessage_p.h"
#include "ipmbpayloadcodec_p.h"
#include "ipmbselectorcodec_p.h"
#include "ipmbtoolsupport_p.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

using IpmbPlatform::PollEntry;
using IpmbProtocol::FrameType;

// Whether the user's last copy of `bytes` is gone. An acquire load of the count orders that copy's
// reads (in any thread) before our writes; a relaxed isDetached() and a fence would do the same,
// but ThreadSanitizer does not model fences and would report a race.
static bool isOnlyHolder(QByteArray &bytes)
{
    const QArrayData *d = bytes.data_ptr().d_ptr();
    return d && d->ref_.loadAcquire() == 1;
}

QByteArray IpmbPayloadBuffers::take(qsizetype size)
{
    for (auto it = m_buffers.begin(); it != m_buffers.end(); ++it) {
        const qsizetype capacity = it->capacity();
        if (capacity >= size && capacity / 2 <= size && isOnlyHolder(*it)) {
            QByteArray bytes = std::move(*it);
            m_buffers.erase(it);
            bytes.resize(size);
            return bytes;
        }
    }
    return QByteArray(size, Qt::Uninitialized);
}

void IpmbPayloadBuffers::keep(const QByteArray &bytes)
{
    if (bytes.capacity() < IpmbLimits::PayloadBufferMinBytes)
        return;
    qint64 total = bytes.capacity();
    for (const QByteArray &kept : m_buffers)
        total += kept.capacity();
    if (int(m_buffers.size()) < IpmbLimits::PayloadBuffersMax && total <= IpmbLimits::PayloadBuffersMaxBytes)
        m_buffers.push_back(bytes);
}

void IpmbPayloadBuffers::clearUnused()
{
    m_buffers.erase(std::remove_if(m_buffers.begin(), m_buffers.end(),
                                   [](const QByteArray &bytes) { return bytes.isDetached(); }),
                    m_buffers.end());
}

IpmbInbox::IpmbInbox(Owner *owner, IpmbPlatform::Waker *ioWaker)
    : m_owner(owner), m_ioWaker(ioWaker)
{
    m_clock.start();
}

std::optional<IpmbMessage> IpmbInbox::take(int msecs, bool *closed)
{
    *closed = false;
    QDeadlineTimer deadline(QDeadlineTimer::Forever);
    bool deadlineSet = false;  // a clock read per call is a noticeable share of a 16 B message
    QMutexLocker locker(&m_mutex);
    while (m_messages.empty()) {
        if (!std::exchange(deadlineSet, true) && msecs >= 0)
            deadline.setRemainingTime(msecs);
        if (!m_open) {
            *closed = true;  // nothing can come
            return std::nullopt;
        }
        if (canReadDirectlyLocked()) {
            readDirectly(locker, deadline);
            if (m_messages.empty() && deadline.hasExpired())
                return std::nullopt;
            continue;
        }
        ++m_waiters;
        const bool woken = m_changed.wait(&m_mutex, deadline);
        --m_waiters;
        if (!woken && m_messages.empty())
            return std::nullopt;
    }
    Received received = std::move(m_messages.front());
    m_messages.pop_front();
    m_bytes -= received.frameBytes;
    m_handles -= received.handles;
    --m_entries;
    resumeReadingLocked();
    return std::move(received.message);
}

bool IpmbInbox::isEmpty() const
{
    QMutexLocker locker(&m_mutex);
    return m_messages.empty();
}

quint64 IpmbInbox::queuedCount() const
{
    QMutexLocker locker(&m_mutex);
    return m_queued;
}

quint64 IpmbInbox::nextSequence() const
{
    QMutexLocker locker(&m_mutex);
    return m_messages.empty() ? m_queued : m_messages.front().sequence;
}

std::deque<IpmbInbox::Received> IpmbInbox::takeAll()
{
    QMutexLocker locker(&m_mutex);
    return std::exchange(m_messages, {});
}

void IpmbInbox::delivered(qint64 frameBytes, qsizetype handles)
{
    QMutexLocker locker(&m_mutex);
    m_bytes -= frameBytes;
    m_handles -= handles;
    --m_entries;
    resumeReadingLocked();
}

void IpmbInbox::clear()
{
    QMutexLocker locker(&m_mutex);
    for (const Received &received : m_messages) {
        m_bytes -= received.frameBytes;
        m_handles -= received.handles;
    }
    m_entries -= qint64(m_messages.size());
    m_messages.clear();
}

void IpmbInbox::open(qsizetype handleLimit)
{
    QMutexLocker locker(&m_mutex);
    m_open = true;
    m_handleLimit = handleLimit;
}

void IpmbInbox::close()
{
    QMutexLocker locker(&m_mutex);
    m_open = false;
    m_changed.wakeAll();  // take() returns
}

void IpmbInbox::attach(IpmbConnection *connection)
{
    QMutexLocker locker(&m_mutex);
    m_connection = connection;
    m_controllerSource.connection = connection;
    m_readiness.add(connection->socket());
    m_decoding.welcomed = false;  // nobody holds the role: detach() reclaimed it
}

// Before the I/O thread closes or replaces the connection: no take() thread may read it.
void IpmbInbox::detach()
{
    QMutexLocker locker(&m_mutex);
    m_directAllowed = false;
    m_directOutcome.reset();
    m_lastDirectRead = -1;
    if (m_reading) {
        m_readerWaker.wake();
        while (m_reading)
            m_roleReleased.wait(&m_mutex);
        m_readerWaker.drain();
    }
    if (m_connection)
        m_readiness.remove(m_connection->socket());
    m_connection = nullptr;
    m_controllerSource.connection = nullptr;
}

void IpmbInbox::addChannel(IpmbConnection *connection, quint32 peer, bool incoming, const IpmbProtocol::Sender &sender)
{
    auto source = std::make_unique<Source>();
    source->connection = connection;
    source->peer = peer;
    source->incoming = incoming;
    source->sender = sender;
    QMutexLocker locker(&m_mutex);
    m_readiness.add(connection->socket());
    m_channels.push_back(std::move(source));
    m_channelsChanged = true;
    if (m_directReading)
        m_readerWaker.wake();  // it polls the new one too from its next turn
}

void IpmbInbox::removeChannel(IpmbConnection *connection)
{
    QMutexLocker locker(&m_mutex);
    if (m_reading) {
        m_reclaiming = true;  // no receive() thread takes the role meanwhile
        m_readerWaker.wake();
        while (m_reading)
            m_roleReleased.wait(&m_mutex);
        m_readerWaker.drain();
        m_reclaiming = false;
        if (m_waiters > 0)
            m_changed.wakeAll();  // one of them may take the role again
    }
    m_readiness.remove(connection->socket());
    m_channels.erase(std::remove_if(m_channels.begin(), m_channels.end(),
                                    [&](const std::unique_ptr<Source> &s) { return s->connection == connection; }),
                     m_channels.end());
    // A receive() thread may have found it ended meanwhile: the pointer must not outlive it (a
    // later connection may get its address).
    m_lostChannels.erase(std::remove(m_lostChannels.begin(), m_lostChannels.end(), connection), m_lostChannels.end());
}

IpmbInbox::Source *IpmbInbox::channelSourceLocked(IpmbConnection *connection)
{
    for (const std::unique_ptr<Source> &source : m_channels) {
        if (source->connection == connection)
            return source.get();
    }
    return nullptr;
}

void IpmbInbox::setWelcomed()
{
    m_decoding.welcomed = true;
}

IpmbInbox::PollPlan IpmbInbox::planPoll(int timeoutMsecs)
{
    PollPlan plan;
    plan.timeoutMsecs = timeoutMsecs;
    QMutexLocker locker(&m_mutex);
    plan.lostChannels = std::exchange(m_lostChannels, {});
    if (m_directOutcome) {
        plan.outcome = m_directOutcome;
        return plan;
    }
    if (m_decoding.welcomed && !m_directAllowed) {
        m_directAllowed = true;
        if (m_waiters > 0)
            m_changed.wakeAll();
    }
    // Stay off the socket while a take() thread reads it (doc/concepts.md).
    const qint64 now = m_clock.nsecsElapsed();
    bool direct = false;
    m_ioSleepsLong = false;
    if (m_directReading) {
        direct = true;
        if (now - m_directSince < IpmbLimits::DirectHoldLongNsecs)
            plan.timeoutMsecs = IpmbLimits::DirectPollMsecs;
        else
            m_ioSleepsLong = true;
    } else if (m_lastDirectRead >= 0 && now - m_lastDirectRead < IpmbLimits::DirectLingerNsecs) {
        direct = true;
        plan.timeoutMsecs = IpmbLimits::DirectPollMsecs;
    }
    plan.read = !m_paused && !direct;
    return plan;
}

IpmbInbox::ReadOutcome IpmbInbox::read()
{
    {
        QMutexLocker locker(&m_mutex);
        if (m_reading)
            return ReadOutcome::Ok;  // a take() thread took the role meanwhile: it reads
        m_reading = true;
    }
    const ReadOutcome outcome = readConnection(m_controllerSource);  // only this thread changes it
    QMutexLocker locker(&m_mutex);
    releaseRoleLocked();
    return outcome;
}

bool IpmbInbox::readChannel(IpmbConnection *connection)
{
    const Source *source;
    {
        QMutexLocker locker(&m_mutex);
        source = channelSourceLocked(connection);
        if (m_reading || !source || source->lost)
            return true;  // a take() thread reads it, or found it ended (planPoll() says so)
        m_reading = true;
    }
    const ReadOutcome outcome = readConnection(*source);
    QMutexLocker locker(&m_mutex);
    releaseRoleLocked();
    return outcome == ReadOutcome::Ok;
}

bool IpmbInbox::sweep()
{
    QMutexLocker locker(&m_mutex);
    if (!m_reading) {  // the buffers belong to the read role
        m_reading = true;
        locker.unlock();
        m_decoding.payloadBuffers.clearUnused();
        locker.relock();
        releaseRoleLocked();
    }
    // An inbox that held megabytes (its thread fell behind), or took them in within one interval,
    // leaves them with the allocator once drained, scattered over the heaps of the threads that
    // allocated and freed them: give them back, after a whole interval at rest (the last batches
    // are still being freed when it first looks empty).
    if (m_peakFootprint >= IpmbLimits::InboxReleaseBytes || m_takenIn >= IpmbLimits::InboxReleaseBytes)
        m_episode = true;
    m_peakFootprint = footprintLocked();
    m_takenIn = 0;
    const bool quiet = m_peakFootprint < IpmbLimits::InboxReleaseBytes / 8;
    const bool release = m_episode && quiet && m_wasQuiet;
    m_wasQuiet = quiet;
    if (release)
        m_episode = false;
    return release;
}

// Called when the user took messages: reading resumes once the inbox is half empty.
void IpmbInbox::resumeReadingLocked()
{
    if (m_paused && qint64(m_messages.size()) < IpmbLimits::InboxMessages / 2 && m_bytes < IpmbLimits::InboxBytes / 2
        && m_handles < m_handleLimit / 2) {
        m_paused = false;
        m_ioWaker->wake();
        if (m_waiters > 0)
            m_changed.wakeAll();  // one of them may read now
    }
}

bool IpmbInbox::canReadDirectlyLocked() const
{
    return m_directAllowed && !m_reading && !m_paused && !m_reclaiming;
}

IpmbInbox::ReadNow IpmbInbox::readNow(qint64 budget)
{
    QMutexLocker locker(&m_mutex);
    if (!canReadDirectlyLocked())
        return ReadNow::Busy;
    bool handedOver = false;
    const bool readable = readDirectly(locker, QDeadlineTimer(0), budget, &handedOver);
    return handedOver ? ReadNow::HandedOver : readable ? ReadNow::Read : ReadNow::Nothing;
}

// A thread in take() holds the read role while it waits: it polls the socket itself, reads and
// decodes what arrives. Called and returns with m_mutex locked. Returns whether a socket had
// something to read.
bool IpmbInbox::readDirectly(QMutexLocker<QMutex> &locker, const QDeadlineTimer &deadline, qint64 budget,
                             bool *handedOver)
{
    m_reading = true;
    m_directReading = true;
    m_directSince = m_clock.nsecsElapsed();
    // A wake for a channel added after the last poll is stale now that this poll has them all (no
    // reclaim is pending: reclaimers keep readers out until they are done).
    if (std::exchange(m_channelsChanged, false))
        m_readerWaker.drain();
    const Source &controller = m_controllerSource;  // replaced only after detach()
    thread_local std::vector<const Source *> channels;
    channels.clear();
    for (const std::unique_ptr<Source> &source : m_channels) {
        if (!source->lost)
            channels.push_back(source.get());  // removed only with the role reclaimed
    }
    locker.unlock();

    thread_local std::vector<PollEntry> entries;
    entries.clear();
    entries.push_back({controller.connection->socket(), true, false, false, false});
    entries.push_back({m_readerWaker.socket(), true, false, false, false});
    for (const Source *source : channels)
        entries.push_back({source->connection->socket(), true, false, false, false});
    const qint64 remaining = deadline.remainingTime();  // -1: forever
    IpmbPlatform::poll(entries.data(), int(entries.size()), int(qMin<qint64>(remaining, std::numeric_limits<int>::max())));
    // Once reclaimed, the sockets are the I/O thread's again, even if they have data.
    const bool reclaimed = entries[1].readable;
    const ReadOutcome outcome = entries[0].readable && !reclaimed ? readConnection(controller, budget) : ReadOutcome::Ok;
    bool readable = entries[0].readable && !reclaimed;
    thread_local std::vector<const Source *> lost;
    lost.clear();
    for (size_t i = 0; i < channels.size() && !reclaimed; ++i) {
        readable = readable || entries[i + 2].readable;
        if (entries[i + 2].readable && readConnection(*channels[i], budget) != ReadOutcome::Ok)
            lost.push_back(channels[i]);
    }
    // A reader with a small budget (the endpoint's thread) leaves a large frame it has begun to
    // the I/O thread: its copy and decoding would stall that thread's event loop.
    bool handOver = false;
    if (handedOver) {
        handOver = controller.connection->unfinishedFrameLength() > budget;
        for (const Source *source : channels)
            handOver = handOver || source->connection->unfinishedFrameLength() > budget;
        *handedOver = handOver;
    }
    locker.relock();
    m_directReading = false;
    m_lastDirectRead = handOver ? -1 : m_clock.nsecsElapsed();  // -1: the I/O thread reads at once
    if (reclaimed && std::exchange(m_channelsChanged, false))
        m_readerWaker.drain();  // woken to poll a new channel, not reclaimed
    if (!lost.empty()) {
        // Removing a channel is the I/O thread's job.
        for (const Source *source : lost) {
            const_cast<Source *>(source)->lost = true;  // ours: the role holds it alive
            m_lostChannels.push_back(source->connection);
        }
        m_ioWaker->wake();
    }
    if (outcome != ReadOutcome::Ok) {
        // Failover and shutdown are the I/O thread's job.
        m_directAllowed = false;
        m_directOutcome = outcome;
        m_ioWaker->wake();
    } else if (std::exchange(m_ioSleepsLong, false) || handOver) {
        m_ioWaker->wake();  // it left the socket to us: it must look again
    }
    releaseRoleLocked();
    return readable;
}

void IpmbInbox::releaseRoleLocked()
{
    m_reading = false;
    m_roleReleased.wakeAll();
    if (m_waiters > 0)
        m_changed.wakeAll();  // one of them may take the role
}

// Reads and decodes what the socket has into the inbox; the caller holds the read role.
IpmbInbox::ReadOutcome IpmbInbox::readConnection(const Source &source, qint64 budget)
{
    IpmbConnection *connection = source.connection;
    qsizetype handleBudget;
    qint64 room;
    {
        QMutexLocker locker(&m_mutex);
        handleBudget = m_handleLimit - m_handles;
        room = IpmbLimits::InboxMessages - qint64(m_messages.size());
    }
    ReadOutcome outcome = ReadOutcome::Ok;
    bool stop = false;
    qint64 frames = 0;
    const auto status = connection->readFrames([&](const IpmbConnection::Frame &frame) {
        // The inbox's message limit holds within a read too: at 16 B, the read budget alone
        // would let one read add 50,000 messages to a full inbox.
        if (frames++ >= room)
            return IpmbConnection::Action::Keep;
        stop = !handleFrame(frame, source, &outcome);
        return stop ? IpmbConnection::Action::Stop : IpmbConnection::Action::Consumed;
    }, budget, handleBudget);
    bool arrived;
    {
        QMutexLocker locker(&m_mutex);
        arrived = !m_messages.empty();
        if (arrived && m_waiters > 0)
            m_changed.wakeAll();
        m_paused = qint64(m_messages.size()) >= IpmbLimits::InboxMessages || m_bytes >= IpmbLimits::InboxBytes
                || m_handles >= m_handleLimit;
    }
    if (arrived)
        m_owner->messagesArrived();
    if (stop)
        return outcome;
    if (status == IpmbConnection::ReadStatus::Ok)
        return ReadOutcome::Ok;
    if (status == IpmbConnection::ReadStatus::Failed && source.peer != 0)
        qCWarning(lcIpmbEndpoint, "closing the channel of endpoint %u: %s", source.peer, qPrintable(connection->errorString()));
    else if (status == IpmbConnection::ReadStatus::Failed)
        qCWarning(lcIpmbEndpoint, "dropping the connection to the bus controller: %s",
                  qPrintable(connection->errorString()));
    return ReadOutcome::Lost;
}

// Messages are decoded here; everything else is the Owner's. Returns false to stop reading.
bool IpmbInbox::handleFrame(const IpmbConnection::Frame &frame, const Source &source, ReadOutcome *outcome)
{
    const IpmbProtocol::Header &header = frame.header;
    if (source.peer != 0) {
        if (handleChannelFrame(frame, source))
            return true;
        *outcome = ReadOutcome::Lost;  // this channel's, not the controller's
        return false;
    }
    if (header.type == FrameType::Message && header.version == IpmbProtocol::Version && m_decoding.welcomed
        && header.senderLength != 0) {
        decodeMessage(frame, source);
        return true;
    }
    if (header.type == FrameType::Observed && header.version == IpmbProtocol::Version && m_decoding.welcomed
        && m_decoding.isMonitor && header.senderLength != 0) {
        decodeObserved(frame, source);
        return true;
    }
    return m_owner->controlFrame(frame, outcome);
}

// A channel carries messages without a sender block: from the peer that introduced it, or replies
// from the peer this endpoint introduced itself to (doc/protocol.md, "Direct channels"). False
// closes the channel.
bool IpmbInbox::handleChannelFrame(const IpmbConnection::Frame &frame, const Source &source)
{
    const IpmbProtocol::Header &header = frame.header;
    QString why;
    if (header.version != IpmbProtocol::Version) {
        why = QStringLiteral("a frame of protocol version %1").arg(header.version);
    } else if (header.type == FrameType::Message) {
        const bool reply = header.flags & IpmbProtocol::Reply;
        if (header.senderLength == 0 && reply != source.incoming) {
            decodeMessage(frame, source);
            return true;
        }
        why = header.senderLength != 0 ? QStringLiteral("a message with a sender block")
                : reply ? QStringLiteral("a reply on a channel the peer opened")
                        : QStringLiteral("a message on a channel this endpoint opened");
    } else if (m_owner->channelFrame(source.peer, frame, &why)) {
        return true;
    }
    if (!why.isEmpty())
        m_decoding.warnings.warn(lcIpmbEndpoint(), "closing the channel of endpoint %u: %s", source.peer, qPrintable(why));
    return false;
}

// The sender (from its block, or the channel's peer) and the selector, each decoded only when it
// differs from the last message's; nullptr (with a warning) for a malformed sender block.
const IpmbProtocol::Sender *IpmbInbox::decodeSender(QByteArrayView senderBytes, QByteArrayView selectorBytes,
                                                    const Source &source)
{
    using IpmbProtocol::sameBytes;
    QString why;
    if (source.peer == 0 && !sameBytes(m_decoding.lastSenderBytes, senderBytes)) {
        const std::optional<IpmbProtocol::Sender> sender = IpmbProtocol::parseSenderBlock(senderBytes, &why);
        if (!sender) {
            m_decoding.warnings.warn(lcIpmbEndpoint(), "ignoring a message with a malformed sender block: %s", qPrintable(why));
            return nullptr;
        }
        m_decoding.lastSenderBytes = senderBytes.toByteArray();
        m_decoding.lastSender = *sender;
    }
    if (!sameBytes(m_decoding.lastSelectorBytes, selectorBytes)) {
        std::optional<IpmbSelector> selector = IpmbSelectorCodec::decodeSelector(selectorBytes, &why);
        m_decoding.lastSelectorBytes = selector ? selectorBytes.toByteArray() : QByteArray();
        m_decoding.lastSelector = selector.value_or(IpmbSelector());
    }
    return source.peer == 0 ? &m_decoding.lastSender : &source.sender;
}

// A monitor's copy of a message (doc/protocol.md, "Monitors"): the payload is decoded when all of
// it came along; the observation keeps what did.
void IpmbInbox::decodeObserved(const IpmbConnection::Frame &frame, const Source &source)
{
    QString why;
    const std::optional<IpmbProtocol::ObservedSections> observed = IpmbProtocol::parseObserved(frame.header, frame.body, &why);
    if (!observed) {
        m_decoding.warnings.warn(lcIpmbEndpoint(), "ignoring an Observed frame: %s", qPrintable(why));
        return;
    }
    const IpmbProtocol::Sender *sender = decodeSender(observed->sender, observed->selector, source);
    if (!sender)
        return;
    IpmbMessage message = IpmbMessageData::received(m_decoding.lastSelector, sender->label);
    IpmbMessageData *data = IpmbMessageData::get(message);
    data->senderId = sender->endpointId;
    data->senderPid = sender->pid;
    data->senderUid = sender->uid;
    const IpmbProtocol::Observation &o = observed->observation;
    auto observation = std::make_shared<IpmbObservation>();
    observation->path = IpmbObservation::Path(o.path);
    observation->tracked = o.messageFlags & IpmbProtocol::Tracked;
    observation->request = o.messageFlags & IpmbProtocol::Request;
    observation->reply = o.messageFlags & IpmbProtocol::Reply;
    observation->target = o.target;
    observation->deliveries = o.deliveries;
    observation->handleCount = o.handleCount;
    observation->regionCount = o.regionCount;
    observation->payloadSize = qint64(o.payloadLength);
    observation->payloadInRegion = o.payloadInRegion;
    observation->payloadPrefix = observed->payloadPrefix.toByteArray();
    data->observation = observation;
    const QByteArrayView prefix = observed->payloadPrefix;
    if (!o.payloadInRegion && quint64(prefix.size()) == o.payloadLength) {
        setPayload(data, prefix);
    } else {
        data->payloadTypeName = IpmbPayloadCodec::typeNameOf(prefix).value_or(QByteArray());
    }
    queueMessage(std::move(message), {}, source, frame.body.size());
}

void IpmbInbox::decodeMessage(const IpmbConnection::Frame &frame, const Source &source)
{
    const IpmbProtocol::MessageSections sections = IpmbProtocol::messageSections(frame.header, frame.body);
    QString why;
    const IpmbProtocol::Sender *sender = decodeSender(sections.sender, sections.selector, source);
    if (!sender)
        return;

    IpmbMessage message = IpmbMessageData::received(m_decoding.lastSelector, sender->label);
    IpmbMessageData *data = IpmbMessageData::get(message);
    IpmbMemoryRegion payloadRegion;
    const QByteArrayView attachments = sections.attachments;
    for (qsizetype i = 0; i < attachments.size(); ++i) {
        const char kind = attachments[i];
        if (kind == char(IpmbProtocol::AttachmentKind::Handle)) {
            data->handles.append(frame.handles.at(i));
            continue;
        }
        // The reference this region holds was added for us by the sender and the controller.
        const IpmbMemoryRegion region = IpmbMemoryRegionPrivate::adoptReceived(frame.handles.at(i));
        const bool secondPayload = kind == char(IpmbProtocol::AttachmentKind::PayloadRegion) && !payloadRegion.isNull();
        if (!IpmbProtocol::isRegion(kind) || region.isNull() || secondPayload) {
            m_decoding.warnings.warn(lcIpmbEndpoint(), "ignoring a message with a bad attachment %lld: %s", qlonglong(i),
                      secondPayload ? "a second payload region" : qPrintable(region.errorString()));
            return;
        }
        if (kind == char(IpmbProtocol::AttachmentKind::PayloadRegion))
            payloadRegion = region;
        else
            data->regions.append(region);
    }
    data->senderId = sender->endpointId;
    data->senderPid = sender->pid;
    data->senderUid = sender->uid;
    const IpmbProtocol::Call call = IpmbProtocol::callOf(frame.header, sections);
    if (call.flags & IpmbProtocol::Request) {
        data->markRequest(call.id);
        data->requestOnChannel = source.peer != 0;
    }
    const QByteArrayView payloadSection = sections.payload;
    qint64 payloadInRegion = 0;
    QByteArrayView encoded = payloadSection;
    if (!payloadRegion.isNull()) {
        const std::optional<qint64> length = IpmbProtocol::parseRegionPayloadLength(payloadSection, &why);
        if (!length || *length > payloadRegion.size()) {
            m_decoding.warnings.warn(lcIpmbEndpoint(), "ignoring a message with a bad payload region: %s",
                      length ? "its payload is larger than the region" : qPrintable(why));
            return;
        }
        payloadInRegion = *length;
        encoded = QByteArrayView(static_cast<const char *>(payloadRegion.constData()), payloadInRegion);
    }
    // A large QByteArray payload is copied once, into a recycled buffer. Any other payload in a
    // region is copied out before it is decoded: the sender may still write the region.
    const qsizetype raw = m_decoding.keepsEncodedPayloads ? 0 : IpmbPayloadCodec::rawByteArrayOffset(encoded);
    if (raw > 0 && encoded.size() - raw >= IpmbLimits::PayloadBufferMinBytes) {
        QByteArray value = m_decoding.payloadBuffers.take(encoded.size() - raw);
        std::memcpy(value.data(), encoded.data() + raw, size_t(value.size()));
        m_decoding.payloadBuffers.keep(value);
        applyDecoded(data, IpmbPayloadCodec::Decoded::byteArray(std::move(value)));
    } else if (payloadRegion.isNull()) {
        setPayload(data, encoded);
    } else {
        setPayload(data, encoded.toByteArray());
    }
    payloadRegion = IpmbMemoryRegion();  // released: the sender's pool may reuse it now
    queueMessage(std::move(message), call, source, frame.body.size() + payloadInRegion);
}

// Decodes `encoded` into the message, or keeps it as it is for a tool (keepsEncodedPayloads).
template <typename Bytes>
void IpmbInbox::setPayload(IpmbMessageData *data, Bytes &&encoded)
{
    if (!m_decoding.keepsEncodedPayloads) {
        applyDecoded(data, IpmbPayloadCodec::decode(std::forward<Bytes>(encoded)));
        return;
    }
    QString why;
    const std::optional<QByteArray> typeName = IpmbPayloadCodec::typeNameOf(encoded, &why);
    if constexpr (std::is_same_v<std::decay_t<Bytes>, QByteArray>)
        data->encodedPayload = std::move(encoded);  // copied out of a region already
    else
        data->encodedPayload = QByteArrayView(encoded).toByteArray();
    data->payloadTypeName = typeName.value_or(QByteArray());
    if (!typeName) {
        data->payloadStatus = IpmbMessage::PayloadMalformed;
        data->payloadErrorString = why;
    }
}

void IpmbInbox::applyDecoded(IpmbMessageData *data, IpmbPayloadCodec::Decoded &&payload)
{
    data->payloadTypeName = payload.typeName;
    switch (payload.status) {
    case IpmbPayloadCodec::Status::Ok:
        data->payload = std::move(payload.value);
        break;
    case IpmbPayloadCodec::Status::UnknownType:
        data->payloadStatus = IpmbMessage::PayloadUnknownType;
        break;
    case IpmbPayloadCodec::Status::Malformed:
        data->payloadStatus = IpmbMessage::PayloadMalformed;
        break;
    }
    if (payload.status != IpmbPayloadCodec::Status::Ok) {
        data->payloadErrorString = payload.errorString;
        // Once per type name, for the first IpmbLimits::MaxWarnedTypes names: a sender may make up any number.
        if (!m_decoding.warnedTypes.contains(payload.typeName)) {
            if (m_decoding.warnedTypes.size() < IpmbLimits::MaxWarnedTypes)
                m_decoding.warnedTypes.insert(payload.typeName);
            m_decoding.warnings.warn(lcIpmbEndpoint(), "received an undecodable payload: %s", qPrintable(payload.errorString));
        }
    }
}

// `size`: what the inbox holds of it.
void IpmbInbox::queueMessage(IpmbMessage &&message, const IpmbProtocol::Call &call, const Source &source, qint64 size)
{
    if (call.flags & IpmbProtocol::Reply) {
        m_owner->replyArrived(call.id, std::move(message), source.peer);  // for the future that waits for it
        return;
    }
    const IpmbMessageData *data = IpmbMessageData::get(std::as_const(message));
    const qsizetype handles = data->handles.size() + data->regions.size();
    QMutexLocker locker(&m_mutex);
    m_messages.push_back({std::move(message), size, handles, m_queued++});
    m_bytes += size;
    m_handles += handles;
    ++m_entries;
    m_peakFootprint = qMax(m_peakFootprint, footprintLocked());
    m_takenIn += size + IpmbLimits::InboxEntryBytes;
}


