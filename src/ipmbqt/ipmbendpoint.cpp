// SPDX-License-Identifier: BSD-3-Clause
// IpmbEndpoint and the endpoint-thread part of IpmbEndpointPrivate. Over 600 lines because most of
// it is the API reference (qdoc comments); the I/O thread is in ipmbendpointio.cpp, the way in and
// out in ipmbinbox.cpp and ipmboutbox.cpp.
#include "ipmbendpoint.h"
#include "ipmbendpoint_p.h"
#include "ipmblogging_p.h"
#include "ipmbmemoryregion_p.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qabstracteventdispatcher.h>
#include <QtCore/qmetaobject.h>
#include <QtCore/qpointer.h>
#include <QtCore/qsocketnotifier.h>
#include <QtCore/qthread.h>

#include <atomic>

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

IpmbEndpointPrivate::IpmbEndpointPrivate(IpmbEndpoint *q)
    : q_ptr(q)
{
    m_clock.start();
    // bytesWritten(): counted only while the signal is connected (IpmbOutbox::countWrites()).
    setUpOutbox(m_outbox);
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

// The lower layers' codes up to LastPublic are IpmbEndpoint::Error's numbers (Refuse and
// Undeliverable frames carry them); the shared-memory ones do not reach an endpoint, and would be
// unknown here.
static_assert(int(IpmbErrorCode::Timeout) == IpmbEndpoint::TimeoutError
              && int(IpmbErrorCode::Protocol) == IpmbEndpoint::ProtocolError
              && int(IpmbErrorCode::Unknown) == IpmbEndpoint::UnknownError
              && int(IpmbErrorCode::NoRoute) == IpmbEndpoint::NoRouteError
              && int(IpmbErrorCode::LastPublic) == IpmbEndpoint::PeerLeftError,
              "IpmbErrorCode and IpmbEndpoint::Error differ");

IpmbEndpoint::Error IpmbEndpointPrivate::publicError(IpmbErrorCode code)
{
    return code <= IpmbErrorCode::LastPublic ? IpmbEndpoint::Error(code) : IpmbEndpoint::UnknownError;
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
    \value QueueFullError 8 MiB or 1,024 kernel handles already wait for the controller: wait
           in waitForBytesWritten(), or send again on bytesWritten().
    \value InvalidArgumentError An empty identifier, a label or token over the limits, an
           invalid selector, a payload that cannot be streamed, or too many attachments.
    \value ProtocolError The other side broke the wire protocol.
    \value ResourceError The system is out of a resource (memory, descriptors).
    \value UnknownError Any other operating-system error.
    \value NoRouteError A request, or a message sent with an id (send(message, &id)), matched no
           endpoint: at once with a ttl of 0, or when its ttl ran out.
    \value PeerLeftError The endpoint that got a request left the bus, or its process died,
           before it replied.
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

    Receivers see it as IpmbMessage::senderId() of this endpoint's messages, and presence as
    IpmbPeer::endpointId(). It is unique on the bus while the endpoint is joined, and stays the
    same across failover: the endpoint claims it from the new controller. A new join() gets a new
    one. (Ids are drawn at random; in the rare case that a new endpoint drew this one before this
    endpoint reconnected, it gets another.)
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
    IpmbErrorInfo error;
    if (d->sendMessage(message, {}, QStringLiteral("send"), &error))
        return true;
    d->setError(error);
    return false;
}

/*!
    \overload
    Sends \a message as a tracked message and stores its id in \a messageId: if no endpoint gets
    it (none matches, at once with a ttl of 0, or when its ttl runs out; or every match is stuck),
    undeliverable() is emitted with that id. A message that reached an endpoint is not reported.
    Tracking costs the controller nothing more than an ordinary message; it costs the frame
    8 bytes.
*/
bool IpmbEndpoint::send(const IpmbMessage &message, quint64 *messageId)
{
    Q_D(IpmbEndpoint);
    if (!messageId)
        return send(message);
    *messageId = d->m_requests.nextId();
    IpmbErrorInfo error;
    if (d->sendMessage(message, {IpmbProtocol::Tracked, *messageId, 0}, QStringLiteral("send"), &error))
        return true;
    d->setError(error);
    return false;
}

bool IpmbEndpointPrivate::sendMessage(const IpmbMessage &message, const IpmbProtocol::Call &call, const QString &verb,
                                      IpmbErrorInfo *error, bool replyOnChannel)
{
    const bool reply = call.flags & IpmbProtocol::Reply;  // goes to its requester: no selector
    if (!reply && !message.selector().isValid()) {
        *error = IpmbErrorInfo(IpmbErrorCode::InvalidArgument, verb + QLatin1String(": ") + message.selector().errorString());
        return false;
    }
    // Handles first, then the regions' memfds (appendMessage() writes the attachment kinds).
    QList<IpmbNativeHandle> handles = message.handles();
    QList<IpmbMemoryRegion> regions = message.regions();
    for (const IpmbMemoryRegion &region : regions)
        handles.append(region.nativeHandle());
    for (qsizetype i = 0; i < handles.size(); ++i) {
        if (handles.at(i).isNull()) {
            *error = IpmbErrorInfo(IpmbErrorCode::InvalidArgument, i < message.handles().size()
                                           ? IpmbEndpoint::tr("%1: handle %2 is null").arg(verb).arg(i)
                                           : IpmbEndpoint::tr("%1: region %2 is null").arg(verb).arg(i - message.handles().size()));
            return false;
        }
    }
    // Where it goes (doc/protocol.md, "Direct channels"): to receivers this endpoint picked, each
    // named in its copy, or to the controller to route; a reply to a request that came on a
    // channel back on that channel, which may have ended (then the reply is dropped).
    thread_local std::vector<quint32> receivers;
    IpmbProtocol::Call wireCall = call;
    const bool routed = !reply && message.selector().isValid() && routeMessage(message.selector(), &receivers);
    if (routed)
        wireCall.flags |= IpmbProtocol::Addressed;
    ChannelPtr replyChannel;
    if (replyOnChannel) {
        QMutexLocker locker(&m_channelsMutex);
        replyChannel = m_channelsIn.value(call.requester);
        if (!replyChannel) {
            qCDebug(lcIpmbEndpoint, "dropping a reply to endpoint %u: its channel has ended", call.requester);
            return true;
        }
    }
    // Encoding happens outside any lock, into a per-thread buffer that keeps its allocation. A
    // large payload goes in a pooled region instead (doc/memory.md, "Large payloads"); if every
    // pooled region is in flight (and stays so for up to a millisecond), it goes inline after all.
    thread_local QByteArray frame;
    frame.truncate(0);
    IpmbMemoryRegion payloadRegion;
    IpmbProtocol::PayloadPlacement placement;
    placement.threshold = m_payloadRegionThreshold;
    placement.allocate = [this, &payloadRegion](qsizetype size) -> char * {
        payloadRegion = m_payloadRegions.alloc(size, m_clock.nsecsElapsed(), IpmbLimits::PayloadRegionWaitMsecs);
        return payloadRegion.isNull() ? nullptr : static_cast<char *>(payloadRegion.data());
    };
    if (!IpmbProtocol::appendMessage(frame, message.selector(), message.payload(), error,
                                     message.handles().size(), regions.size(), placement, nullptr, wireCall))
        return false;
    if (!payloadRegion.isNull()) {
        handles.append(payloadRegion.nativeHandle());
        regions.append(payloadRegion);
    }
    bool sent;
    if (routed) {
        sent = sendRouted(receivers, frame, handles, regions, wireCall, error);
    } else {
        // Each region carries one reference for its receiver(s) while in flight: the controller
        // turns it into one per receiver, or releases it if nobody gets the message.
        for (const IpmbMemoryRegion &region : regions)
            IpmbMemoryRegionPrivate::addReferences(region, +1);
        QByteArray observed = replyChannel && m_busMonitored.load(std::memory_order_relaxed)
                ? observedOnChannel(frame, call.requester) : QByteArray();
        sent = (replyChannel ? replyChannel->outbox : m_outbox).send(frame, handles, error);
        if (sent && !observed.isEmpty())
            reportToMonitors(observed);
        if (!sent) {
            for (const IpmbMemoryRegion &region : regions)
                IpmbMemoryRegionPrivate::addReferences(region, -1);
        }
    }
    // The buffer stays with the thread for the next send(), but only as large as a small frame:
    // one large message must not pin its size in every thread that ever sent one.
    if (frame.capacity() > IpmbLimits::ShareFrameBytes)
        frame = QByteArray();
    return sent;
}

/*!
    Returns the number of bytes of sent messages that still wait to be written, to the
    controller or to the direct channels to other endpoints; like QIODevice::bytesToWrite().
    Safe to call from any thread.
*/
qint64 IpmbEndpoint::bytesToWrite() const
{
    Q_D(const IpmbEndpoint);
    IpmbEndpointPrivate *d_nc = const_cast<IpmbEndpointPrivate *>(d);
    qint64 bytes = d->m_outbox.bytesToWrite();
    QMutexLocker locker(&d_nc->m_channelsMutex);
    for (const IpmbEndpointPrivate::ChannelPtr &channel : std::as_const(d->m_channelsOut))
        bytes += channel->outbox.bytesToWrite();
    return bytes;
}

/*!
    \fn void IpmbEndpoint::bytesWritten(qint64 bytes)

    Emitted in the endpoint's thread after queued messages went to the controller: \a bytes is
    how much of bytesToWrite() was written since the last emission (several writes make one
    emission). An event-driven sender that got QueueFullError from send() resumes here, the way
    QIODevice::bytesWritten() is used. Nothing is counted while the signal has no connection.
*/

/*!
    Blocks until queued messages were written (at least one write to the fullest queue, the
    controller's or a direct channel's, as
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
    // The fullest queue that can move, the controller's or an open channel's: the one a refused
    // send() waits for. A channel being opened, or to a stuck receiver, moves only when that
    // receiver does (sends to a stuck one are dropped, not refused): it is waited for only when
    // nothing else is queued.
    IpmbEndpointPrivate::ChannelPtr fullest, fullestStalled;
    qint64 most = d->m_outbox.bytesToWrite();
    qint64 mostStalled = 0;
    {
        QMutexLocker locker(&d->m_channelsMutex);
        for (const IpmbEndpointPrivate::ChannelPtr &channel : std::as_const(d->m_channelsOut)) {
            const qint64 bytes = channel->outbox.bytesToWrite();
            const bool stalled = !channel->open
                    || channel->outbox.stalledNsecs() >= qint64(IpmbLimits::StallTimeoutMsecs) * IpmbLimits::NsecsPerMsec;
            if (stalled && bytes > mostStalled) {
                mostStalled = bytes;
                fullestStalled = channel;
            } else if (!stalled && bytes > most) {
                most = bytes;
                fullest = channel;
            }
        }
    }
    if (most == 0 && fullestStalled)
        fullest = fullestStalled;
    return (fullest ? fullest->outbox : d->m_outbox).waitForWritten(QDeadlineTimer(msecs));
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
    bool closed = false;
    std::optional<IpmbMessage> message = d->m_inbox.take(msecs, &closed);
    if (closed)
        d->setError(IpmbErrorInfo(IpmbErrorCode::Disconnected, tr("receive: the endpoint is not joined")));
    return message;
}

/*!
    \reimp
*/
void IpmbEndpoint::connectNotify(const QMetaMethod &signal)
{
    Q_D(IpmbEndpoint);
    if (signal == QMetaMethod::fromSignal(&IpmbEndpoint::bytesWritten)) {
        ++d->m_bytesWrittenConnections;
        d->countWrites();
    }
    if (signal == QMetaMethod::fromSignal(&IpmbEndpoint::messageReceived)) {
        // Delivers what waited for a receiver, and starts reading in the endpoint's thread.
        if (d->m_receiverConnections++ == 0 || !d->m_inbox.isEmpty()) {
            QMutexLocker locker(&d->m_mutex);
            d->postSyncLocked();
        }
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
        d->countWrites();
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
    m_inbox.open(IpmbLimits::inboxHandleLimit(IpmbPlatform::handleLimit()));
    {
        QMutexLocker locker(&m_mutex);
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
    delete m_readNotifier;  // before the I/O thread closes what it watches
    m_readNotifier = nullptr;
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
    m_inbox.clear();
    QMutexLocker locker(&m_mutex);
    m_ioStateChanges.clear();
    m_state = m_ioState;
    m_isController = m_ioIsController;
}

// Applies what the I/O thread published, and emits the signals for it, in the endpoint's thread.
void IpmbEndpointPrivate::syncFromIo(bool enableReading)
{
    Q_Q(IpmbEndpoint);
    QList<IpmbEndpoint::State> states;
    bool isController;
    quint32 endpointId;
    IpmbErrorInfo error;
    quint64 dropped;
    qint64 written;
    std::vector<std::pair<quint64, IpmbErrorCode>> undeliverable;
    {
        QMutexLocker locker(&m_mutex);
        m_syncPosted = false;
        written = std::exchange(m_ioBytesWritten, 0);
        states = std::exchange(m_ioStateChanges, {});
        isController = m_ioIsController;
        endpointId = m_ioEndpointId;
        error = std::exchange(m_ioError, IpmbErrorInfo());
        dropped = std::exchange(m_ioDropped, 0);
        undeliverable = std::exchange(m_ioUndeliverable, {});
        // A slot of the signals below may run a nested event loop (a modal dialog, a QML
        // TestCase whose `when` waits for the state): presence notes and messages are taken
        // after them, and another sync is posted for such a loop to take them.
        if (!states.isEmpty() || error.isError() || dropped || written > 0 || !undeliverable.empty()
            || isController != m_isController)
            postSyncLocked();
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
        if (state == IpmbEndpoint::UnjoinedState)
            clearPeers();
        Q_EMIT q->stateChanged(state);
        if (guard && state == IpmbEndpoint::JoinedState)
            Q_EMIT q->joined();
    }
    if (guard && enableReading)
        updateReadNotifier();
    if (guard && dropped) {
        m_droppedTotal += dropped;
        Q_EMIT q->messagesDropped(dropped);
    }
    if (guard && written > 0)
        Q_EMIT q->bytesWritten(written);
    for (const auto &[id, reason] : undeliverable) {
        if (!guard)
            return;
        Q_EMIT q->undeliverable(id, publicError(reason));
    }
    if (!guard)
        return;
    // Each message of the batch stays counted in the inbox until it is delivered: its handles are
    // open until then, and the I/O thread must not read more than the process can hold meanwhile.
    // Taken before the Peer notes: every note read before one of these messages is then here too.
    const bool signalling = m_receiverConnections > 0;
    std::deque<IpmbInbox::Received> messages;
    if (signalling)
        messages = m_inbox.takeAll();
    std::vector<PeerNote> peerNotes;
    {
        QMutexLocker locker(&m_mutex);
        peerNotes = std::exchange(m_ioPeerNotes, {});
        m_ioPeerNoteBytes = 0;
    }
    if (m_watchPeers.load(std::memory_order_relaxed))
        std::move(peerNotes.begin(), peerNotes.end(), std::back_inserter(m_peerNotes));
    while (guard && !messages.empty()) {
        qint64 bytes;
        qsizetype handles;
        {
            const IpmbInbox::Received received = std::move(messages.front());
            messages.pop_front();
            bytes = received.frameBytes;
            handles = received.handles;
            // A peer's joining before its messages, its leaving after them.
            applyPeerNotes(received.sequence, false, guard);
            if (!guard)
                return;
            Q_EMIT q->messageReceived(received.message);
        }   // its handles close here, unless the slot kept a copy
        if (!guard)
            return;
        // Delivered, so it no longer holds up reading: with slow slots, a batch that stayed
        // counted until its end stopped the reading for so long that the controller took the
        // endpoint for stuck and dropped its messages.
        m_inbox.delivered(bytes, handles);
    }
    // The notes read after the last message delivered (all of them when messages wait for
    // receive(), which takes them in its own time).
    if (guard)
        applyPeerNotes(signalling ? m_inbox.nextSequence() : 0, !signalling, guard);
}

// Signal delivery reads in the endpoint's thread while that thread is idle: a notifier on one
// handle that is readable while any of the endpoint's sockets is wakes it, it reads what is there
// (a bounded amount) and emits at once, saving the I/O thread's wake-up and the hand-over
// (doc/concepts.md, "Who reads the socket", has the measurement). A busy thread does not react,
// and the I/O thread reads instead within 5 ms, as it does after any direct read.
void IpmbEndpointPrivate::updateReadNotifier()
{
    Q_Q(IpmbEndpoint);
    const bool wanted = m_receiverConnections > 0 && m_state == IpmbEndpoint::JoinedState
            && m_inbox.readinessHandle() >= 0 && QAbstractEventDispatcher::instance(q->thread());
    if (wanted && !m_readNotifier) {
        m_readNotifier = new QSocketNotifier(m_inbox.readinessHandle(), QSocketNotifier::Read, q);
        QObject::connect(m_readNotifier, &QSocketNotifier::activated, q, [this] { readInThisThread(); });
    }
    if (m_readNotifier && m_readNotifier->isEnabled() != wanted)
        m_readNotifier->setEnabled(wanted);
}

void IpmbEndpointPrivate::readInThisThread()
{
    t_deliversWhatItReads = true;
    const IpmbInbox::ReadNow read = m_inbox.readNow(IpmbLimits::EventLoopReadBytes);
    t_deliversWhatItReads = false;
    // Busy or Nothing: another thread reads, or what woke it is for the I/O thread (a channel
    // that ended): nothing to spin on. HandedOver: the I/O thread reads the large frame, and this
    // thread must not take it back meanwhile. Either way the next sync from the I/O thread
    // enables the notifier again.
    if (read != IpmbInbox::ReadNow::Read)
        m_readNotifier->setEnabled(false);
    if (read == IpmbInbox::ReadNow::Busy || read == IpmbInbox::ReadNow::Nothing)
        return;
    syncFromIo(read == IpmbInbox::ReadNow::Read);  // emits what it read
}

void IpmbEndpointPrivate::postSyncLocked()
{
    if (m_syncPosted)
        return;
    m_syncPosted = true;
    QMetaObject::invokeMethod(q_ptr, [this] { syncFromIo(); }, Qt::QueuedConnection);
}
