// SPDX-License-Identifier: BSD-3-Clause
// Request/reply and undeliverable notices on the endpoint's side (doc/protocol.md, "Requests,
// replies and undeliverable messages"): the API, and the I/O thread's part of the requests that
// wait (IpmbRequests holds them).
#include "ipmbendpoint.h"
#include "ipmbendpoint_p.h"
#include "ipmbmessage_p.h"
#include "ipmbprotocol_p.h"

/*!
    Sends \a payload to the one endpoint that \a selector picks, as a request, and returns a
    future for its reply, which fails after \a timeoutMsecs milliseconds: the same as
    request(IpmbMessage(selector, payload), timeoutMsecs).
*/
QFuture<IpmbMessage> IpmbEndpoint::request(const IpmbSelector &selector, const QVariant &payload, int timeoutMsecs)
{
    return request(IpmbMessage(selector, payload), timeoutMsecs);
}

/*!
    \overload
    Sends \a message (its payload, handles and regions) as a request to the one endpoint its
    selector picks, and returns a future for the reply. The receiver sees IpmbMessage::isRequest()
    and answers with reply(); the future then has the reply, with the replier's pid, label and
    id as its sender.

    The future fails with an IpmbRequestError (QFuture::onFailed()) whose error() says why:
    \list
    \li TimeoutError: no reply within \a timeoutMsecs (-1: no timeout);
    \li NoRouteError: no endpoint matched, at once with a ttl of 0, or when the selector's ttl
        ran out;
    \li PeerLeftError: the endpoint that got it left the bus or died before it replied (known at
        once: the controller, or the end of their direct channel, says so);
    \li DisconnectedError: this endpoint is not joined, or left, before the reply came; or it
        lost its controller (failover) while the request went through it. A request sent on a
        direct channel to its replier waits through a failover;
    \li InvalidArgumentError: a multicast selector (a request has one replier), or a payload
        that cannot be sent; QueueFullError: the send queue, or the 65,536 requests that may
        wait at once, are full.
    \endlist
    These failures do not set error() or emit errorOccurred(): they belong to the request.

    Cancelling the future (QFuture::cancel()) stops the wait and frees what the request held
    (within 10 ms); a reply that comes after is dropped. The future is fulfilled in the thread
    that reads the bus, so give continuations a context object:
    \c {request(...).then(this, ...)} runs in \c this object's thread. With Qt 6.4 that object
    must outlive the future: a continuation whose context object has been destroyed asserts in
    a debug build. Where it may not (a dialog the user can close), watch the future with a
    QFutureWatcher that the object owns, as the QML Endpoint does.

    May be called from any thread.
*/
QFuture<IpmbMessage> IpmbEndpoint::request(const IpmbMessage &message, int timeoutMsecs)
{
    Q_D(IpmbEndpoint);
    const auto failed = [](const IpmbErrorInfo &error) {
        return QtFuture::makeExceptionalFuture<IpmbMessage>(
                IpmbRequestError(IpmbEndpointPrivate::publicError(error.code), error.message));
    };
    if (message.selector().mode() != IpmbSelector::Unicast)
        return failed(IpmbErrorInfo(IpmbErrorCode::InvalidArgument, tr("request: a request needs a unicast selector")));
    const quint64 id = d->m_requests.nextId();
    const qint64 now = d->m_clock.nsecsElapsed();
    const qint64 deadline = timeoutMsecs < 0 ? std::numeric_limits<qint64>::max()
                                             : now + qint64(timeoutMsecs) * IpmbLimits::NsecsPerMsec;
    IpmbErrorInfo error;
    bool wake = false;
    std::optional<QFuture<IpmbMessage>> future = d->m_requests.add(id, deadline, timeoutMsecs, &error, &wake);
    if (!future)
        return failed(error);
    if (!d->sendMessage(message, {IpmbProtocol::Tracked | IpmbProtocol::Request, id, 0}, QStringLiteral("request"), &error)) {
        d->m_requests.remove(id);
        return failed(error);
    }
    // The I/O thread keeps the time; it is woken if it planned to look later than this one is due.
    if (wake)
        d->m_waker.wake();
    return *future;
}

/*!
    Answers \a request (a received message whose IpmbMessage::isRequest() is \c true) with
    \a payload, and returns whether the reply was queued; the same as
    reply(request, IpmbMessage(IpmbSelector(), payload)).
*/
bool IpmbEndpoint::reply(const IpmbMessage &request, const QVariant &payload)
{
    return reply(request, IpmbMessage(IpmbSelector(), payload));
}

/*!
    \overload
    Answers \a request with \a reply: its payload, handles and regions (its selector is not
    used: a reply goes to the requester). Returns \c false and sets error() with
    InvalidArgumentError if \a request is not a request or has been answered already (each
    request gets one reply), or as send() does if it cannot be sent. A reply to a requester that
    has gone, or that stopped waiting, is dropped without an error. May be called from any
    thread, for example from a QtConcurrent::run() task that did the work.
*/
bool IpmbEndpoint::reply(const IpmbMessage &request, const IpmbMessage &reply)
{
    Q_D(IpmbEndpoint);
    const IpmbMessageData *data = IpmbMessageData::get(request);
    if (!data->isRequest()) {
        d->setError(IpmbErrorInfo(IpmbErrorCode::InvalidArgument, tr("reply: the message is not a request")));
        return false;
    }
    if (data->replied->exchange(true)) {
        d->setError(IpmbErrorInfo(IpmbErrorCode::InvalidArgument, tr("reply: the request has been answered already")));
        return false;
    }
    IpmbErrorInfo error;
    if (d->sendMessage(reply, {IpmbProtocol::Reply, data->requestId, request.senderId()}, QStringLiteral("reply"), &error,
                       data->requestOnChannel))
        return true;
    data->replied->store(false);  // it may be tried again
    d->setError(error);
    return false;
}

/*!
    \fn void IpmbEndpoint::undeliverable(quint64 messageId, IpmbEndpoint::Error reason)

    Emitted in the endpoint's thread when the tracked message \a messageId (see send(const
    IpmbMessage &, quint64 *)) reached no endpoint; \a reason is NoRouteError (nothing matched,
    at once with a ttl of 0, or when its ttl ran out) or QueueFullError (the controller dropped
    it: every match was stuck, or its ttl buffer was full).
*/

// The reading thread: a reply goes to the future that waits for it, not to the inbox.
void IpmbEndpointPrivate::replyArrived(quint64 id, IpmbMessage &&reply, quint32 channelPeer)
{
    if (!m_requests.fulfil(id, std::move(reply), channelPeer))
        qCDebug(lcIpmbEndpoint, "dropping a reply to request %llu: nobody waits for it any more%s", id,
                channelPeer ? " on that channel" : "");
}

