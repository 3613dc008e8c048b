// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbendpoint.h"
#include "ipmbendpoint_p.h"
#include "ipmblogging_p.h"
#include "ipmbmemoryregion_p.h"
#include "ipmbmessage_p.h"
#include "ipmbpayloadcodec_p.h"
#include "ipmbprotocol_p.h"
#include "ipmbselectorcodec_p.h"

#include <QtCore/qmetaobject.h>
#include <QtCore/qpointer.h>
#include <QtCore/qrandom.h>
#include <QtCore/qthread.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

using namespace IpmbPlatform;
using IpmbProtocol::FrameType;

// Queue limits and timings: ipmblimits_p.h.

/*!
    \class IpmbEndpoint
    \inmodule IpmbQt
    \inheaderfile IpmbQt/IpmbEndpoint
    \brief One participant of an IpmbQt message bus.

    Set an identifier (the bus name) and a label, call join(), and send messages routed by
    IpmbSelector to the endpoints whose label matches. The first endpoint of a bus becomes its
    controller, on a thread of its own; when that process exits, the others elect a new one.

    Received messages are delivered in one of two ways:
    \list
    \li the messageReceived() signal, emitted in the endpoint's thread, when at least one
        connection to it exists;
    \li receive(), a blocking call for worker threads.
    \endlist
    Both take messages from the same queue, each message exactly once: while messageReceived() is
    connected it normally wins, since the I/O thread posts every batch to it; use one style per
    endpoint. Messages that arrive while nothing is connected wait for receive() (or for the
    first connection to messageReceived()).
*/

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

IpmbEndpointPrivate::IpmbEndpointPrivate(IpmbEndpoint *q)
    : q_ptr(q)
{
    m_clock.start();
    // bytesWritten(): counted only while the signal is connected (IpmbOutbox::countWrites()).
    m_outbox.setWrittenCallback([this](qint64 bytes) {
        QMutexLocker locker(&m_mutex);
        m_ioBytesWritten += bytes;
        postSyncLocked();
    });
#ifdef IPMBQT_BUILD_TESTS
    // A hook for the tests and benchmarks, which compare both ways in one run; a library built
    // without its tests ignores it, so the environment cannot change what a process sends.
    bool ok = false;
    const int threshold = qEnvironmentVariableIntValue("IPMBQT_PAYLOAD_REGION_THRESHOLD", &ok);
    if (ok)
        m_payloadRegionThreshold = qMax(threshold, 0);
#endif
}

IpmbEndpointPrivate::~IpmbEndpointPrivate() = default;

// The lower layers' codes up to Unknown are IpmbEndpoint::Error's numbers (a Refuse frame carries
// them); the shared-memory ones do not reach an endpoint, and would be unknown here.
static_assert(int(IpmbErrorCode::Timeout) == IpmbEndpoint::TimeoutError
              && int(IpmbErrorCode::Protocol) == IpmbEndpoint::ProtocolError
              && int(IpmbErrorCode::Unknown) == IpmbEndpoint::UnknownError,
              "IpmbErrorCode and IpmbEndpoint::Error differ");

IpmbEndpoint::Error IpmbEndpointPrivate::publicError(IpmbErrorCode code)
{
    return code <= IpmbErrorCode::Unknown ? IpmbEndpoint::Error(code) : IpmbEndpoint::UnknownError;
}

/*!
    \enum IpmbEndpoint::State

    Where the endpoint is in joining its bus; see the \l {guides/protocol.html}{protocol guide}
    for the state machine.

    \value UnjoinedState Not on a bus: before join(), after leave(), or after joining failed.
    \value JoiningState join() was called; waiting for the election and the controller's welcome.
    \value JoinedState On the bus: messages can be sent and received.
    \value ReconnectingState The controller's process went away; the endpoint takes part in
           electing a new one. Messages sent meanwhile are kept and sent once joined again; if no
           controller appears within joinTimeout() the endpoint gives up with TimeoutError.
*/

/*!
    \enum IpmbEndpoint::Error

    What went wrong; errorString() has the details. See the
    \l {guides/concepts.html}{concepts guide} for when each happens.

    \value NoError No error.
    \value TimeoutError No controller answered within joinTimeout(), or none took over within it
           after a failover.
    \value DisconnectedError The endpoint is not joined (send(), receive(), waitForJoined()
           without join()).
    \value VersionMismatchError The bus speaks another protocol version; errorString() names
           both.
    \value TokenMismatchError The bus has another token().
    \value PermissionError The bus directory is not safe to use (another user's, open to others,
           a symlink), or only a controller of another user answered.
    \value PayloadTooLargeError The encoded payload is larger than 256 MiB; move bulk data in an
           IpmbMemoryRegion.
    \value QueueFullError 64 MiB or 1,024 kernel handles already wait for the controller: wait
           in waitForBytesWritten(), or send again on bytesWritten().
    \value InvalidArgumentError An empty identifier, a label or token over the limits, an
           invalid selector, a payload that cannot be streamed, or too many attachments.
    \value ProtocolError The other side broke the wire protocol.
    \value ResourceError The system is out of a resource (memory, descriptors).
    \value UnknownError Any other operating-system error.
*/

/*!
    \fn void IpmbEndpoint::joined()

    Emitted in the endpoint's thread when the endpoint has joined its bus, and again after each
    failover that it survived.
*/

/*!
    \fn void IpmbEndpoint::messageReceived(const IpmbMessage &message)

    Emitted in the endpoint's thread for each \a message this endpoint receives. While at least
    one connection to this signal exists, it takes messages before receive() does; messages that
    arrived while nothing was connected are delivered when the first connection is made.
*/

/*!
    \fn void IpmbEndpoint::errorOccurred(IpmbEndpoint::Error error)

    Emitted in the endpoint's thread when an operation fails with \a error; errorString() says
    why. A failure in another thread (send() or receive() there) is reported here once per turn
    of the endpoint's event loop, with the latest error. clearError() emits it with NoError when
    it resets a set error, so that bindings to \l error and \l errorString update. Arguments
    that join() or send() refuse at once are reported before the call returns.
*/

/*!
    \fn void IpmbEndpoint::messagesDropped(quint64 count)

    Emitted in the endpoint's thread when the controller had to drop \a count messages for this
    endpoint because it read nothing for a second (it was declared stuck). The running total is
    droppedMessageCount(). See "Delivery promises" in the \l {guides/concepts.html}{concepts guide}.
*/

/*!
    Constructs an unjoined endpoint with the given \a parent. Set identifier() and label(), then
    call join().
*/
IpmbEndpoint::IpmbEndpoint(QObject *parent)
    : QObject(parent), d_ptr(std::make_unique<IpmbEndpointPrivate>(this))
{
}

/*!
    \fn IpmbEndpoint::~IpmbEndpoint()

    Destroys the endpoint. It leaves the bus without emitting any signal (slots connected to it
    may belong to an owner that is being destroyed too); messages still waiting in it are dropped.
*/
// Leaves the bus without a signal: slots connected to an endpoint being destroyed may belong to an
// owner that is being destroyed too. Messages still waiting are dropped.
IpmbEndpoint::~IpmbEndpoint()
{
    Q_D(IpmbEndpoint);
    d->stop(IpmbEndpointPrivate::Signals::None);
}

/*!
    \property IpmbEndpoint::identifier
    \brief the name of the bus, such as \c com.example.editor.

    Only endpoints of the same user with the same identifier meet. A change takes effect at the
    next join(); join() fails with InvalidArgumentError while it is empty.
*/
QString IpmbEndpoint::identifier() const { return d_func()->m_identifier; }

void IpmbEndpoint::setIdentifier(const QString &identifier)
{
    Q_D(IpmbEndpoint);
    if (d->m_identifier == identifier)
        return;
    if (d->m_state != UnjoinedState)
        qCWarning(lcIpmbEndpoint, "setIdentifier: takes effect at the next join()");
    d->m_identifier = identifier;
    Q_EMIT identifierChanged(identifier);
}

/*!
    \property IpmbEndpoint::label
    \brief the label that describes this endpoint on the bus, such as \c {{"renderer", "gpu0"}}.

    Senders pick receivers with an IpmbSelector whose IpmbLabelOp matches labels. A change takes
    effect at the next join().
*/
IpmbLabel IpmbEndpoint::label() const { return d_func()->m_label; }

void IpmbEndpoint::setLabel(const IpmbLabel &label)
{
    Q_D(IpmbEndpoint);
    if (d->m_label == label)
        return;
    if (d->m_state != UnjoinedState)
        qCWarning(lcIpmbEndpoint, "setLabel: takes effect at the next join()");
    d->m_label = label;
    Q_EMIT labelChanged(label);
}

/*!
    \property IpmbEndpoint::token
    \brief an optional shared secret of the bus (at most 64 KiB).

    Endpoints whose token differs from the controller's are refused with TokenMismatchError (the
    controller compares in constant time). It keeps apart programs that happen to use the same
    identifier; it is no boundary within one user, whose processes can do anything the bus's own
    endpoints can (\l {guides/concepts.html}{concepts guide}, "Security").
*/
QByteArray IpmbEndpoint::token() const { return d_func()->m_token; }

void IpmbEndpoint::setToken(const QByteArray &token)
{
    Q_D(IpmbEndpoint);
    if (d->m_token == token)
        return;
    d->m_token = token;
    Q_EMIT tokenChanged(token);
}

/*!
    \property IpmbEndpoint::joinTimeout
    \brief how long, in milliseconds, join() may take before it fails with TimeoutError, and
    how long a lost controller may take to be replaced before the endpoint gives up.

    The default is 10 seconds; negative values are taken as 0.
*/
int IpmbEndpoint::joinTimeout() const { return d_func()->m_joinTimeout; }
void IpmbEndpoint::setJoinTimeout(int msecs)
{
    Q_D(IpmbEndpoint);
    msecs = qMax(msecs, 0);
    if (d->m_joinTimeout == msecs)
        return;
    d->m_joinTimeout = msecs;
    Q_EMIT joinTimeoutChanged(msecs);
}

/*!
    \property IpmbEndpoint::state
    \brief where the endpoint is in joining its bus.

    stateChanged() reports every transition, in the endpoint's thread, even those of a failover
    that was over before that thread got to process it.
*/

/*!
    \fn bool IpmbEndpoint::isJoined() const

    Returns \c true if the endpoint is on its bus: state() is JoinedState.
*/

/*!
    \property IpmbEndpoint::controller
    \brief whether this endpoint's process hosts the bus controller.

    The controller (the router) runs on a thread of its own in the process of the first endpoint
    that joined; after a failover, of the one that won the election. Nothing needs to be done
    about it: this is for information and tests.
*/
IpmbEndpoint::State IpmbEndpoint::state() const { return d_func()->m_state; }
bool IpmbEndpoint::isController() const { return d_func()->m_isController; }

/*!
    \property IpmbEndpoint::endpointId
    \brief the number the controller gave this endpoint when it joined; 0 while it is not joined.

    Receivers see it as IpmbMessage::senderId() of this endpoint's messages. It is unique on the
    bus while the endpoint is joined, and changes when the endpoint joins again, including after a
    failover to a new controller.
*/
quint32 IpmbEndpoint::endpointId() const { return d_func()->m_endpointId; }
/*!
    \property IpmbEndpoint::error
    \brief the last error, or NoError.

    send() and receive() may fail in any thread: the error is set at once for the calling thread
    to read, and errorOccurred() follows in the endpoint's thread (once per turn of its event
    loop, with the latest error). clearError() resets it.
*/

/*!
    \property IpmbEndpoint::errorString
    \brief a readable description of error(); empty when there is none.
*/
// The error may be set by send() or receive() in any thread: it is read and written under the lock.
IpmbEndpoint::Error IpmbEndpoint::error() const
{
    Q_D(const IpmbEndpoint);
    QMutexLocker locker(&d->m_mutex);
    return IpmbEndpointPrivate::publicError(d->m_error.code);
}

QString IpmbEndpoint::errorString() const
{
    Q_D(const IpmbEndpoint);
    QMutexLocker locker(&d->m_mutex);
    return d->m_error.message;
}

/*!
    \fn void IpmbEndpoint::clearError()

    Resets error() to NoError and errorString() to empty. Like QSerialPort::clearError(), it
    emits errorOccurred() with NoError if an error was set, so that bindings see the change.
*/
// Like QSerialPort::clearError(): a reset of a set error is a change that bindings to error and
// errorString must see, so it emits errorOccurred(NoError).
void IpmbEndpoint::clearError()
{
    Q_D(IpmbEndpoint);
    if (error() != NoError)
        d->setError(IpmbErrorInfo());
}
/*!
    Returns how many messages for this endpoint the controller dropped because its queue was
    full: the sum of all messagesDropped() counts since join().
*/
quint64 IpmbEndpoint::droppedMessageCount() const { return d_func()->m_droppedTotal; }

/*!
    Joins the bus asynchronously: joined() (and stateChanged()) follow on success, errorOccurred()
    on failure. Does nothing unless the endpoint is unjoined. Arguments it refuses (an empty
    identifier, a label or token over the limits) are reported before it returns.

    Joining raises the process's soft limit of open descriptors to its hard limit (RLIMIT_NOFILE
    on Linux), once: kernel handles that messages carry, and the controller's connections, are
    open descriptors, and the default soft limit of 1,024 is easily reached. Where the hard limit
    is low, the endpoint holds fewer received handles instead (see the concepts guide, "Kernel
    handles").
*/
void IpmbEndpoint::join()
{
    Q_D(IpmbEndpoint);
    if (d->m_state != UnjoinedState) {
        qCWarning(lcIpmbEndpoint, "join: the endpoint is already joined or joining");
        return;
    }
    QString why;
    if (d->m_identifier.isEmpty()) {
        d->setError(IpmbErrorInfo(IpmbErrorCode::InvalidArgument, tr("join: the identifier is empty")));
        return;
    }
    if (!IpmbSelectorCodec::fitsLimits(d->m_label, &why)) {
        d->setError(IpmbErrorInfo(IpmbErrorCode::InvalidArgument, tr("join: %1").arg(why)));
        return;
    }
    if (d->m_token.size() > IpmbLimits::MaxTokenBytes) {
        d->setError(IpmbErrorInfo(IpmbErrorCode::InvalidArgument,
                                  tr("join: the token exceeds %1 bytes").arg(IpmbLimits::MaxTokenBytes)));
        return;
    }
    d->startJoin();
}

/*!
    Leaves the bus. Queued messages are handed to the controller first (for at most a second). If
    this endpoint hosts the controller, the other endpoints elect a new one.
*/
void IpmbEndpoint::leave()
{
    Q_D(IpmbEndpoint);
    d->stop();
}

/*!
    Blocks until the endpoint is joined, joining fails, or \a msecs pass. Returns whether the
    endpoint is joined; the signals of the transition have been emitted when it returns.

    Called without a join() in progress it returns false at once: error() then says why joining
    failed, or is DisconnectedError if join() was never called.
*/
bool IpmbEndpoint::waitForJoined(int msecs)
{
    Q_D(IpmbEndpoint);
    if (d->m_state == JoinedState)
        return true;
    if (d->m_state == UnjoinedState) {
        // After a join that failed, error() already says why; otherwise there was no join().
        if (error() == NoError)
            d->setError(IpmbErrorInfo(IpmbErrorCode::Disconnected,
                                      tr("waitForJoined: the endpoint is not joining (call join() first)")));
        return false;
    }
    QDeadlineTimer deadline(msecs);
    {
        QMutexLocker locker(&d->m_mutex);
        while (d->m_ioState == JoiningState || d->m_ioState == ReconnectingState) {
            if (!d->m_ioStateChanged.wait(&d->m_mutex, deadline))
                break;
        }
    }
    d->syncFromIo();
    return d->m_state == JoinedState;
}

/*!
    Sends \a payload to the endpoints that \a selector picks; the same as
    send(IpmbMessage(selector, payload)).

    Returns \c true once the message is queued for the controller; it never blocks on a slow
    receiver. Returns \c false and sets error() when the endpoint is not joined
    (DisconnectedError), the selector is invalid or the payload cannot be streamed
    (InvalidArgumentError), the payload is larger than 256 MiB (PayloadTooLargeError), or the
    queue to the controller is full (QueueFullError). May be called from any thread.
*/
bool IpmbEndpoint::send(const IpmbSelector &selector, const QVariant &payload)
{
    return send(IpmbMessage(selector, payload));
}

/*!
    Sends \a message: its payload and the kernel handles attached to it. The handles stay valid
    here; the receiver gets its own.

    send() does not wait for the receivers, with one exception: a payload of 16 KiB or more, while
    the receivers are so far behind that all of this endpoint's shared-memory payload regions are
    in flight, waits up to a millisecond for one to come back (see the
    \l {guides/memory.html}{shared memory guide}).
*/
bool IpmbEndpoint::send(const IpmbMessage &message)
{
    Q_D(IpmbEndpoint);
    if (!message.selector().isValid()) {
        d->setError(IpmbErrorInfo(IpmbErrorCode::InvalidArgument, tr("send: %1").arg(message.selector().errorString())));
        return false;
    }
    // Handles first, then the regions' memfds (appendMessage() writes the attachment kinds).
    QList<IpmbNativeHandle> handles = message.handles();
    QList<IpmbMemoryRegion> regions = message.regions();
    for (const IpmbMemoryRegion &region : regions)
        handles.append(region.nativeHandle());
    for (qsizetype i = 0; i < handles.size(); ++i) {
        if (handles.at(i).isNull()) {
            d->setError(IpmbErrorInfo(IpmbErrorCode::InvalidArgument, i < message.handles().size()
                                              ? tr("send: handle %1 is null").arg(i)
                                              : tr("send: region %1 is null").arg(i - message.handles().size())));
            return false;
        }
    }
    // Encoding happens outside any lock, into a per-thread buffer that keeps its allocation. A
    // large payload goes in a pooled region instead (doc/memory.md, "Large payloads"); if every
    // pooled region is in flight (and stays so for up to a millisecond), it goes inline after all.
    thread_local QByteArray frame;
    frame.truncate(0);
    IpmbErrorInfo error;
    IpmbMemoryRegion payloadRegion;
    IpmbProtocol::PayloadPlacement placement;
    placement.threshold = d->m_payloadRegionThreshold;
    placement.allocate = [d, &payloadRegion](qsizetype size) -> char * {
        payloadRegion = d->m_payloadRegions.alloc(size, d->m_clock.nsecsElapsed(), IpmbLimits::PayloadRegionWaitMsecs);
        return payloadRegion.isNull() ? nullptr : static_cast<char *>(payloadRegion.data());
    };
    if (!IpmbProtocol::appendMessage(frame, message.selector(), message.payload(), &error,
                                     message.handles().size(), regions.size(), placement)) {
        d->setError(error);
        return false;
    }
    if (!payloadRegion.isNull()) {
        handles.append(payloadRegion.nativeHandle());
        regions.append(payloadRegion);
    }
    // Each region carries one reference for its receiver(s) while in flight: the controller
    // turns it into one per receiver, or releases it if nobody gets the message.
    for (const IpmbMemoryRegion &region : regions)
        IpmbMemoryRegionPrivate::addReferences(region, +1);
    const bool sent = d->sendFrame(frame, handles);
    // The buffer stays with the thread for the next send(), but only as large as a small frame:
    // one large message must not pin its size in every thread that ever sent one.
    if (frame.capacity() > IpmbLimits::ShareFrameBytes)
        frame = QByteArray();
    if (sent)
        return true;
    for (const IpmbMemoryRegion &region : regions)
        IpmbMemoryRegionPrivate::addReferences(region, -1);
    return false;
}

bool IpmbEndpointPrivate::sendFrame(QByteArray &frame, const QList<IpmbNativeHandle> &handles)
{
    IpmbErrorInfo error;
    if (m_outbox.send(frame, handles, &error))
        return true;
    setError(error);
    return false;
}

/*!
    Returns the number of bytes of sent messages that still wait to be written to the
    controller; like QIODevice::bytesToWrite(). Safe to call from any thread.
*/
qint64 IpmbEndpoint::bytesToWrite() const
{
    Q_D(const IpmbEndpoint);
    return d->m_outbox.bytesToWrite();
}

/*!
    \fn void IpmbEndpoint::bytesWritten(qint64 bytes)

    Emitted in the endpoint's thread after queued messages went to the controller: \a bytes is
    how much of bytesToWrite() was written since the last emission (several writes make one
    emission). An event-driven sender that got QueueFullError from send() resumes here, the way
    QIODevice::bytesWritten() is used. Nothing is counted while the signal has no connection.
*/

/*!
    Blocks until queued messages were written to the controller's socket (at least one write, as
    QAbstractSocket::waitForBytesWritten() does) or nothing is queued, or \a msecs pass. Returns
    false on timeout, or when the endpoint is not joined or leaves meanwhile.

    A sender that got QueueFullError sends again as soon as this returns. To wait until every
    message sent so far is written:

    \code
    while (endpoint.bytesToWrite() > 0 && endpoint.waitForBytesWritten())
        ;
    \endcode
*/
bool IpmbEndpoint::waitForBytesWritten(int msecs)
{
    Q_D(IpmbEndpoint);
    return d->m_outbox.waitForWritten(QDeadlineTimer(msecs));
}

/*!
    Takes the next received message, waiting up to \a msecs for one (-1 waits forever). Safe to
    call from any thread. Returns std::nullopt on timeout (error() unchanged), and at once when the
    endpoint is not joined (or leaves while this waits) and no message is left (DisconnectedError;
    errorOccurred() is emitted in the endpoint's thread).

    While it waits, the calling thread reads and decodes arriving messages itself, which saves a
    thread wake-up per message.
*/
std::optional<IpmbMessage> IpmbEndpoint::receive(int msecs)
{
    Q_D(IpmbEndpoint);
    QDeadlineTimer deadline(QDeadlineTimer::Forever);
    bool deadlineSet = false;  // a clock read per call is a noticeable share of a 16 B message
    QMutexLocker locker(&d->m_mutex);
    while (d->m_inbox.empty()) {
        if (!std::exchange(deadlineSet, true) && msecs >= 0)
            deadline.setRemainingTime(msecs);
        if (d->m_ioState == IpmbEndpoint::UnjoinedState) {
            locker.unlock();  // nothing can come
            d->setError(IpmbErrorInfo(IpmbErrorCode::Disconnected, tr("receive: the endpoint is not joined")));
            return std::nullopt;
        }
        if (d->canReadDirectlyLocked()) {
            d->readDirectly(locker, deadline);
            if (d->m_inbox.empty() && deadline.hasExpired())
                return std::nullopt;
            continue;
        }
        ++d->m_inboxWaiters;
        const bool woken = d->m_inboxChanged.wait(&d->m_mutex, deadline);
        --d->m_inboxWaiters;
        if (!woken && d->m_inbox.empty())
            return std::nullopt;
    }
    IpmbEndpointPrivate::Received received = std::move(d->m_inbox.front());
    d->m_inbox.pop_front();
    d->m_inboxBytes -= received.frameBytes;
    d->m_inboxHandles -= received.handles;
    d->resumeReadingLocked();
    return std::move(received.message);
}

/*!
    \reimp
*/
void IpmbEndpoint::connectNotify(const QMetaMethod &signal)
{
    Q_D(IpmbEndpoint);
    if (signal == QMetaMethod::fromSignal(&IpmbEndpoint::bytesWritten))
        d->m_outbox.countWrites(++d->m_bytesWrittenConnections > 0);
    if (signal == QMetaMethod::fromSignal(&IpmbEndpoint::messageReceived)) {
        ++d->m_receiverConnections;
        QMutexLocker locker(&d->m_mutex);
        if (!d->m_inbox.empty())
            d->postSyncLocked(); // deliver what waited for a receiver
    }
}

/*!
    \reimp
*/
void IpmbEndpoint::disconnectNotify(const QMetaMethod &signal)
{
    Q_D(IpmbEndpoint);
    // An invalid method means "all signals" (disconnect(obj, nullptr, ...)).
    if (!signal.isValid() || signal == QMetaMethod::fromSignal(&IpmbEndpoint::messageReceived))
        d->m_receiverConnections = qMax(0, d->m_receiverConnections - 1);
    if (!signal.isValid() || signal == QMetaMethod::fromSignal(&IpmbEndpoint::bytesWritten)) {
        d->m_bytesWrittenConnections = qMax(0, d->m_bytesWrittenConnections - 1);
        d->m_outbox.countWrites(d->m_bytesWrittenConnections > 0);
    }
}

// Any thread may fail (send(), receive()): the error is set under the lock, so that the calling
// thread reads it at once, and errorOccurred() is emitted in the endpoint's thread. Errors of other
// threads are reported by one emission per turn of that thread's event loop, with the latest
// error: a worker that fails in a loop must not fill the event queue.
void IpmbEndpointPrivate::setError(const IpmbErrorInfo &error)
{
    Q_Q(IpmbEndpoint);
    {
        QMutexLocker locker(&m_mutex);
        m_error = error;
    }
    if (error.isError())
        qCDebug(lcIpmbEndpoint) << "error:" << publicError(error.code) << error.message;
    if (QThread::currentThread() == q->thread()) {
        Q_EMIT q->errorOccurred(publicError(error.code));
    } else if (!m_errorSignalPosted.exchange(true)) {
        QMetaObject::invokeMethod(q, [this, q] {
            m_errorSignalPosted = false;
            Q_EMIT q->errorOccurred(q->error());
        }, Qt::QueuedConnection);
    }
}

void IpmbEndpointPrivate::startJoin()
{
    Q_Q(IpmbEndpoint);
    m_ioIdentifier = m_identifier;
    m_ioLabel = m_label;
    m_ioToken = m_token;
    m_ioJoinTimeout = m_joinTimeout;
    m_stopping = false;
    m_droppedTotal = 0;
    // Received handles are open descriptors until the user drops the messages: raise the soft
    // limit as the controller does, and where that leaves little room, hold fewer (the I/O thread
    // holds at most the inbox's handles plus one read's worth, beside the process's own).
    IpmbPlatform::raiseHandleLimit();
    const qsizetype inboxHandleLimit = IpmbLimits::inboxHandleLimit(IpmbPlatform::handleLimit());
    {
        QMutexLocker locker(&m_mutex);
        m_inboxHandleLimit = inboxHandleLimit;
        m_ioState = IpmbEndpoint::JoiningState;
        m_ioStateChanges.clear();
        m_ioError = IpmbErrorInfo();
    }
    m_outbox.open();
    m_state = IpmbEndpoint::JoiningState;
    m_ioThread = QThread::create([this] { ioMain(); });
    m_ioThread->setObjectName(QStringLiteral("IpmbEndpoint I/O"));
    m_ioThread->start();
    Q_EMIT q->stateChanged(m_state);
}

void IpmbEndpointPrivate::stop(Signals emitting)
{
    if (m_ioThread) {
        m_stopping = true;
        m_waker.wake();
        m_ioThread->wait();
        delete m_ioThread;
        m_ioThread = nullptr;
    }
    if (emitting == Signals::All) {
        syncFromIo();
        return;
    }
    QMutexLocker locker(&m_mutex);
    m_ioStateChanges.clear();
    m_inbox.clear();
    m_state = m_ioState;
    m_isController = m_ioIsController;
}

// Applies what the I/O thread published, and emits the signals for it, in the endpoint's thread.
void IpmbEndpointPrivate::syncFromIo()
{
    Q_Q(IpmbEndpoint);
    QList<IpmbEndpoint::State> states;
    bool isController;
    quint32 endpointId;
    IpmbErrorInfo error;
    quint64 dropped;
    qint64 written;
    std::deque<Received> messages;
    {
        QMutexLocker locker(&m_mutex);
        m_syncPosted = false;
        written = std::exchange(m_ioBytesWritten, 0);
        states = std::exchange(m_ioStateChanges, {});
        isController = m_ioIsController;
        endpointId = m_ioEndpointId;
        error = std::exchange(m_ioError, IpmbErrorInfo());
        dropped = std::exchange(m_ioDropped, 0);
        // Each message of the batch stays counted in m_inboxBytes/m_inboxHandles until it is
        // delivered: its handles are open until then, and the I/O thread must not read more than
        // the process can hold meanwhile.
        if (m_receiverConnections > 0)
            messages.swap(m_inbox);
    }
    // A QPointer guards against a slot that deletes the endpoint.
    QPointer<IpmbEndpoint> guard(q);
    if (error.isError())
        setError(error);
    m_endpointId = endpointId; // announced with the state change that follows
    if (guard && isController != m_isController) {
        m_isController = isController;
        Q_EMIT q->controllerChanged(isController);
    }
    // Every transition, in order: a failover that completed before this ran (Joined ->
    // Reconnecting -> Joined) still says so, with joined() again.
    for (const IpmbEndpoint::State state : std::as_const(states)) {
        if (!guard)
            return;
        if (state == m_state)
            continue;
        m_state = state;
        Q_EMIT q->stateChanged(state);
        if (guard && state == IpmbEndpoint::JoinedState)
            Q_EMIT q->joined();
    }
    if (guard && dropped) {
        m_droppedTotal += dropped;
        Q_EMIT q->messagesDropped(dropped);
    }
    if (guard && written > 0)
        Q_EMIT q->bytesWritten(written);
    while (guard && !messages.empty()) {
        qint64 bytes;
        qsizetype handles;
        {
            const Received received = std::move(messages.front());
            messages.pop_front();
            bytes = received.frameBytes;
            handles = received.handles;
            Q_EMIT q->messageReceived(received.message);
        }   // its handles close here, unless the slot kept a copy
        if (!guard)
            return;
        // Delivered, so it no longer holds up reading: with slow slots, a batch that stayed
        // counted until its end stopped the reading for so long that the controller took the
        // endpoint for stuck and dropped its messages.
        QMutexLocker locker(&m_mutex);
        m_inboxBytes -= bytes;
        m_inboxHandles -= handles;
        resumeReadingLocked();
    }
}

// Called when the user took messages: reading resumes once the inbox is half empty.
void IpmbEndpointPrivate::resumeReadingLocked()
{
    if (m_readingPaused && qint64(m_inbox.size()) < IpmbLimits::InboxMessages / 2 && m_inboxBytes < IpmbLimits::InboxBytes / 2
        && m_inboxHandles < m_inboxHandleLimit / 2) {
        m_readingPaused = false;
        m_waker.wake();
        if (m_inboxWaiters > 0)
            m_inboxChanged.wakeAll();  // one of them may read now
    }
}

bool IpmbEndpointPrivate::canReadDirectlyLocked() const
{
    return m_directAllowed && !m_reading && !m_readingPaused;
}

// A thread in receive() holds the read role while it waits: it polls the socket itself, reads
// and decodes what arrives into the inbox. Called and returns with m_mutex locked.
void IpmbEndpointPrivate::readDirectly(QMutexLocker<QMutex> &locker, const QDeadlineTimer &deadline)
{
    m_reading = true;
    m_directReading = true;
    m_directSince = m_clock.nsecsElapsed();
    IpmbConnection *connection = m_connection.get();  // replaced only after reclaimReadRole()
    locker.unlock();

    PollEntry entries[2] = {{connection->socket(), true, false, false, false},
                            {m_readerWaker.socket(), true, false, false, false}};
    const qint64 remaining = deadline.remainingTime();  // -1: forever
    IpmbPlatform::poll(entries, 2, int(qMin<qint64>(remaining, std::numeric_limits<int>::max())));
    Outcome outcome = Outcome::Lost;
    // Once reclaimed, the socket is the I/O thread's again, even if it has data.
    const bool broken = entries[0].readable && !entries[1].readable && !readConnection(connection, &outcome);

    locker.relock();
    m_directReading = false;
    m_lastDirectRead = m_clock.nsecsElapsed();
    if (broken) {
        // Failover and shutdown are the I/O thread's job.
        m_directAllowed = false;
        m_directOutcome = outcome;
        m_waker.wake();
    } else if (std::exchange(m_ioSleepsLong, false)) {
        m_waker.wake();  // it left the socket to us for long: it must look again
    }
    releaseReadRoleLocked();
}

void IpmbEndpointPrivate::releaseReadRoleLocked()
{
    m_reading = false;
    m_readRoleReleased.wakeAll();
    if (m_inboxWaiters > 0)
        m_inboxChanged.wakeAll();  // one of them may take the role
}

// Before the I/O thread closes or replaces the connection: no receive() thread may read it.
void IpmbEndpointPrivate::reclaimReadRole()
{
    QMutexLocker locker(&m_mutex);
    m_directAllowed = false;
    m_directOutcome.reset();
    m_lastDirectRead = -1;
    if (m_reading) {
        m_readerWaker.wake();
        while (m_reading)
            m_readRoleReleased.wait(&m_mutex);
        m_readerWaker.drain();
    }
}

void IpmbEndpointPrivate::postSyncLocked()
{
    if (m_syncPosted)
        return;
    m_syncPosted = true;
    QMetaObject::invokeMethod(q_ptr, [this] { syncFromIo(); }, Qt::QueuedConnection);
}

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
            // The Hello first; then what was sent meanwhile, pipelined behind it.
            IpmbProtocol::appendHello(m_connection->tail(), m_ioToken, m_ioLabel);
        }
        m_outbox.attach(m_connection.get());
        m_welcomed = false;
        const Outcome outcome = serveConnection(deadline);
        reclaimReadRole();
        if (outcome == Outcome::Stopped)
            drainOutput(1000);
        m_outbox.detach();
        {
            QMutexLocker locker(&m_mutex);
            m_connection.reset();
        }
        if (outcome != Outcome::Lost)
            break;
        qCDebug(lcIpmbEndpoint, "lost the bus controller; electing a new one");
        if (m_welcomed)
            setIoState(IpmbEndpoint::ReconnectingState);
        deadline.setRemainingTime(m_ioJoinTimeout);
    }
    m_controller.reset();
    m_outbox.close();
    QMutexLocker locker(&m_mutex);
    m_ioIsController = false;
    m_ioEndpointId = 0;
    m_ioState = IpmbEndpoint::UnjoinedState;
    m_ioStateChanges.append(IpmbEndpoint::UnjoinedState);
    m_ioStateChanged.wakeAll();
    m_inboxChanged.wakeAll();  // receive() returns
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
            if (m_controller)
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

IpmbEndpointPrivate::Outcome IpmbEndpointPrivate::serveConnection(const QDeadlineTimer &joinDeadline)
{
    IpmbConnection *connection = m_connection.get();
    PollEntry entries[2];
    while (!m_stopping) {
        int timeout = m_welcomed ? 1000 : int(qMax<qint64>(joinDeadline.remainingTime(), 0));
        {
            QMutexLocker locker(&m_mutex);
            if (m_directOutcome)
                return *m_directOutcome;
            if (m_welcomed && !m_directAllowed) {
                m_directAllowed = true;
                if (m_inboxWaiters > 0)
                    m_inboxChanged.wakeAll();
            }
            // Stay off the socket while a receive() thread reads it (doc/concepts.md).
            const qint64 now = m_clock.nsecsElapsed();
            bool direct = false;
            m_ioSleepsLong = false;
            if (m_directReading) {
                direct = true;
                if (now - m_directSince < IpmbLimits::DirectHoldLongNsecs)
                    timeout = IpmbLimits::DirectPollMsecs;
                else
                    m_ioSleepsLong = true;
            } else if (m_lastDirectRead >= 0 && now - m_lastDirectRead < IpmbLimits::DirectLingerNsecs) {
                direct = true;
                timeout = IpmbLimits::DirectPollMsecs;
            }
            entries[0] = {connection->socket(), !m_readingPaused && !direct, false, false, false};
        }
        entries[0].wantWrite = m_outbox.wantsWrite();
        entries[1] = {m_waker.socket(), true, false, false, false};
        if (!IpmbPlatform::poll(entries, 2, timeout)) {
            failIo(IpmbErrorInfo(IpmbErrorCode::Unknown, IpmbEndpoint::tr("poll failed")));
            return Outcome::Failed;
        }
        if (entries[1].readable)
            m_waker.drain();
        // Returns the memory of regions freed elsewhere that this process still maps idly.
        if (const qint64 now = m_clock.nsecsElapsed(); now - m_lastMappingSweep >= IpmbLimits::MappingSweepNsecs) {
            m_lastMappingSweep = now;
            IpmbMemoryRegionPrivate::sweepMappings();
            m_payloadRegions.expire(now);
            m_outbox.releaseIdleMemory();
            QMutexLocker locker(&m_mutex);
            if (!m_reading) {  // the buffers belong to the read role
                m_reading = true;
                locker.unlock();
                m_payloadBuffers.clearUnused();
                locker.relock();
                releaseReadRoleLocked();
            }
            // An inbox that held megabytes (its thread fell behind) leaves them with the allocator
            // once drained: give them back, after a whole interval at rest (the last batches are
            // still being freed when it first looks empty).
            if (m_inboxPeakBytes >= IpmbLimits::InboxReleaseBytes)
                m_inboxEpisode = true;
            m_inboxPeakBytes = m_inboxBytes;
            const bool quiet = m_inboxBytes < IpmbLimits::InboxReleaseBytes / 8;
            const bool release = m_inboxEpisode && quiet && m_inboxWasQuiet;
            m_inboxWasQuiet = quiet;
            if (release)
                m_inboxEpisode = false;
            locker.unlock();
            if (release)
                IpmbPlatform::releaseFreeMemory();
        }
        if (!m_welcomed && joinDeadline.hasExpired()) {
            failIo(IpmbErrorInfo(IpmbErrorCode::Timeout,
                                 IpmbEndpoint::tr("The bus controller did not answer within %1 ms")
                                         .arg(m_ioJoinTimeout)));
            return Outcome::Failed;
        }
        if (entries[0].writable) {
            const IoResult r = m_outbox.write();
            if (r.status == IoStatus::Closed || r.status == IoStatus::Failed)
                return Outcome::Lost;
        }
        if (entries[0].readable) {
            {
                QMutexLocker locker(&m_mutex);
                if (m_reading)
                    continue;  // a receive() thread took the role meanwhile: it reads
                m_reading = true;
            }
            Outcome outcome = Outcome::Lost;
            const bool ok = readConnection(connection, &outcome);
            {
                QMutexLocker locker(&m_mutex);
                releaseReadRoleLocked();
            }
            if (!ok)
                return outcome;
        }
    }
    return Outcome::Stopped;
}

// Reads and decodes what the socket has into the inbox; the caller holds the read role. Returns
// false when the connection has to go, and *outcome says why.
bool IpmbEndpointPrivate::readConnection(IpmbConnection *connection, Outcome *outcome)
{
    qsizetype handleBudget;
    {
        QMutexLocker locker(&m_mutex);
        handleBudget = m_inboxHandleLimit - m_inboxHandles;
    }
    bool stop = false;
    const auto status = connection->readFrames([&](const IpmbConnection::Frame &frame) {
        stop = !handleFrame(frame, outcome);
        return stop ? IpmbConnection::Action::Stop : IpmbConnection::Action::Consumed;
    }, IpmbLimits::ReadBudget, handleBudget);
    {
        QMutexLocker locker(&m_mutex);
        if (!m_inbox.empty()) {
            if (m_inboxWaiters > 0)
                m_inboxChanged.wakeAll();
            if (m_receiverConnections > 0)
                postSyncLocked();
        }
        m_readingPaused = qint64(m_inbox.size()) >= IpmbLimits::InboxMessages || m_inboxBytes >= IpmbLimits::InboxBytes
                || m_inboxHandles >= m_inboxHandleLimit;
    }
    if (stop)
        return false;
    if (status == IpmbConnection::ReadStatus::Ok)
        return true;
    if (status == IpmbConnection::ReadStatus::Failed)
        qCWarning(lcIpmbEndpoint, "dropping the connection to the bus controller: %s",
                  qPrintable(connection->errorString()));
    *outcome = Outcome::Lost;
    return false;
}

// Returns false to stop reading; *outcome then says why.
bool IpmbEndpointPrivate::handleFrame(const IpmbConnection::Frame &frame, Outcome *outcome)
{
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
        *outcome = Outcome::Failed;
        return false;
    }
    if (header.version != IpmbProtocol::Version) {
        failIo(IpmbErrorInfo(IpmbErrorCode::VersionMismatch,
                             IpmbEndpoint::tr("The bus controller speaks protocol version %1, this endpoint version %2")
                                     .arg(header.version).arg(IpmbProtocol::Version)));
        *outcome = Outcome::Failed;
        return false;
    }
    switch (header.type) {
    case FrameType::Welcome: {
        QString why;
        const std::optional<IpmbProtocol::Welcome> welcome =
                m_welcomed ? std::nullopt : IpmbProtocol::parseWelcome(frame.body, &why);
        if (!welcome)
            break;
        m_welcomed = true;
        {
            QMutexLocker locker(&m_mutex);
            m_ioEndpointId = welcome->endpointId;
        }
        setIoState(IpmbEndpoint::JoinedState);
        return true;
    }
    case FrameType::Message:
        if (!m_welcomed || header.senderLength == 0)
            break;
        decodeMessage(frame);
        return true;
    case FrameType::Dropped: {
        QString why;
        const std::optional<quint64> count = IpmbProtocol::parseDropped(frame.body, &why);
        if (!count)
            break;
        QMutexLocker locker(&m_mutex);
        m_ioDropped += *count;
        postSyncLocked();
        return true;
    }
    default:
        break;
    }
    qCWarning(lcIpmbEndpoint, "dropping the connection to the bus controller: unexpected frame of type %d",
              int(header.type));
    *outcome = Outcome::Lost;
    return false;
}

void IpmbEndpointPrivate::decodeMessage(const IpmbConnection::Frame &frame)
{
    using IpmbProtocol::sameBytes;
    const IpmbProtocol::MessageSections sections = IpmbProtocol::messageSections(frame.header, frame.body);
    QString why;
    const QByteArrayView senderBytes = sections.sender;
    if (!sameBytes(m_lastSenderBytes, senderBytes)) {
        const std::optional<IpmbProtocol::Sender> sender = IpmbProtocol::parseSenderBlock(senderBytes, &why);
        if (!sender) {
            m_warnings.warn(lcIpmbEndpoint(), "ignoring a message with a malformed sender block: %s", qPrintable(why));
            return;
        }
        m_lastSenderBytes = senderBytes.toByteArray();
        m_lastSender = *sender;
    }
    const QByteArrayView selectorBytes = sections.selector;
    if (!sameBytes(m_lastSelectorBytes, selectorBytes)) {
        std::optional<IpmbSelector> selector = IpmbSelectorCodec::decodeSelector(selectorBytes, &why);
        m_lastSelectorBytes = selector ? selectorBytes.toByteArray() : QByteArray();
        m_lastSelector = selector.value_or(IpmbSelector());
    }
    const IpmbProtocol::Sender *sender = &m_lastSender;

    IpmbMessage message = IpmbMessageData::received(m_lastSelector, sender->label);
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
            m_warnings.warn(lcIpmbEndpoint(), "ignoring a message with a bad attachment %lld: %s", qlonglong(i),
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
    const QByteArrayView payloadSection = sections.payload;
    IpmbPayloadCodec::Decoded payload;
    qint64 payloadInRegion = 0;
    QByteArrayView encoded = payloadSection;
    if (!payloadRegion.isNull()) {
        const std::optional<qint64> length = IpmbProtocol::parseRegionPayloadLength(payloadSection, &why);
        if (!length || *length > payloadRegion.size()) {
            m_warnings.warn(lcIpmbEndpoint(), "ignoring a message with a bad payload region: %s",
                      length ? "its payload is larger than the region" : qPrintable(why));
            return;
        }
        payloadInRegion = *length;
        encoded = QByteArrayView(static_cast<const char *>(payloadRegion.constData()), payloadInRegion);
    }
    // A large QByteArray payload is copied once, into a recycled buffer. Any other payload in a
    // region is copied out before it is decoded: the sender may still write the region.
    const qsizetype raw = IpmbPayloadCodec::rawByteArrayOffset(encoded);
    if (raw > 0 && encoded.size() - raw >= IpmbLimits::PayloadBufferMinBytes) {
        QByteArray value = m_payloadBuffers.take(encoded.size() - raw);
        std::memcpy(value.data(), encoded.data() + raw, size_t(value.size()));
        m_payloadBuffers.keep(value);
        payload = IpmbPayloadCodec::Decoded::byteArray(std::move(value));
    } else if (payloadRegion.isNull()) {
        payload = IpmbPayloadCodec::decode(encoded);
    } else {
        payload = IpmbPayloadCodec::decode(encoded.toByteArray());
    }
    payloadRegion = IpmbMemoryRegion();  // released: the sender's pool may reuse it now
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
        if (!m_warnedTypes.contains(payload.typeName)) {
            if (m_warnedTypes.size() < IpmbLimits::MaxWarnedTypes)
                m_warnedTypes.insert(payload.typeName);
            m_warnings.warn(lcIpmbEndpoint(), "received an undecodable payload: %s", qPrintable(payload.errorString));
        }
    }
    const qint64 size = frame.body.size() + payloadInRegion;  // what the inbox holds of it
    const qsizetype handles = data->handles.size() + data->regions.size();
    QMutexLocker locker(&m_mutex);
    m_inbox.push_back({std::move(message), size, handles});
    m_inboxBytes += size;
    m_inboxHandles += handles;
    m_inboxPeakBytes = qMax(m_inboxPeakBytes, m_inboxBytes);
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
