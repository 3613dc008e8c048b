// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbqmlendpoint.h"

#include <QtCore/qfuturewatcher.h>
#include <QtQml/qjsengine.h>
#include <QtQml/qjsvalue.h>

/*!
    \qmltype Endpoint
    \inqmlmodule IpmbQt
    \brief One participant of an IpmbQt message bus.

    Endpoint is IpmbEndpoint for QML. Set \l identifier (the name of the bus) and \l label (who
    this endpoint is): the endpoint joins the bus by itself once the component is complete.
    Send with send() and a selector made by the \l Selector singleton; receive by handling
    messageReceived().

    \qml
    import QtQuick
    import IpmbQt

    Item {
        Endpoint {
            id: moon
            identifier: "com.example.solar"
            label: ["moon"]

            // Emitted once joined, and again after each failover.
            onJoined: send(Selector.unicast("earth"), { text: "hello", radius: 1737 })
            onMessageReceived: (message) => console.log(message.payload, "from", message.senderPid)
            onErrorOccurred: (error) => {
                if (error !== Endpoint.NoError)
                    console.warn("moon:", errorString)
            }
        }
    }
    \endqml

    The differences from IpmbEndpoint are few: \l label is a list of strings, \l token is a
    string (sent as UTF-8), and \l active joins and leaves. Everything else behaves as in
    IpmbEndpoint, whose documentation has the details, and the enumerations are the same: write
    \c Endpoint.JoinedState or \c Endpoint.InvalidArgumentError.

    \section2 Joining and leaving

    The endpoint joins when the component is complete, that is when every property written in
    QML is set, so the order of the bindings does not matter; setting \l active to \c false
    leaves the bus, and setting it back to \c true joins again. join() and leave() do the same
    by hand, without changing \l active. Joining is asynchronous: joined() follows on success,
    errorOccurred() on failure. A failed join is not retried: \l state is back to
    \c Endpoint.UnjoinedState, and a call to join() (or setting \l active to \c false and then
    \c true) tries again.

    \section2 Receiving

    messageReceived() carries each received message as a \l message value. Its properties
    (payload, sender, selector) can be read and kept as long as needed. A message that carries
    shared-memory regions holds them for as long as a JavaScript value refers to it, which for a
    message handed to a JavaScript handler lasts until the next garbage collection, not until
    the handler returns: a producer that waits for its regions to come back (an
    IpmbMemoryRegistry pool) runs dry. To show a stream of frames, let a SharedImage take the
    messages in C++ through its \l {SharedImage::source}{source} property, and handle no
    messageReceived() of that endpoint in JavaScript.

    \section2 Errors

    A failure sets \l error and \l errorString and emits errorOccurred(). send() fails at once:
    it returns \c false, and errorOccurred() has already been emitted when it returns. No error
    is ever silent: a selector that does not parse is refused by send() with
    \c Endpoint.InvalidArgumentError rather than sent to nobody (see \l Selector).
    clearError() resets the error and emits errorOccurred() with \c Endpoint.NoError, so that
    bindings to \l error and \l errorString see the change.

    \section2 From C++

    The C++ class behind the type is \c IpmbQmlEndpoint (\c {#include <ipmbqmlendpoint.h>},
    CMake target \c IpmbQt::IpmbQtQml). Its \c endpoint() function returns the IpmbEndpoint it
    forwards to, for C++ code that shares the endpoint with QML: to connect to
    IpmbEndpoint::messageReceived() in C++, or to send messages with kernel handles or memory
    regions, which QML cannot attach.

    \sa Selector, SharedImage, IpmbEndpoint
*/

/*!
    \qmlproperty string Endpoint::identifier

    The name of the bus, such as \c {"com.example.editor"}. Only endpoints of the same user
    with the same identifier meet. A change takes effect at the next join. While it is empty an
    \l active endpoint waits for it; an explicit join() with an empty identifier fails with
    \c Endpoint.InvalidArgumentError.

    \sa IpmbEndpoint::identifier
*/

/*!
    \qmlproperty list<string> Endpoint::label

    The names that describe this endpoint on the bus, such as \c {["renderer", "gpu0"]}:
    senders pick receivers with a selector whose label op matches them. Duplicates are dropped
    and the names read back sorted. At most 256 names of at most 1024 UTF-8 bytes each; joining
    with more fails with \c Endpoint.InvalidArgumentError. A change takes effect at the next
    join.

    \sa IpmbEndpoint::label
*/

/*!
    \qmlproperty string Endpoint::token

    An optional shared secret of the bus, sent as its UTF-8 bytes (at most 64 KiB of them).
    Endpoints whose token differs from the controller's are refused with
    \c Endpoint.TokenMismatchError. It keeps apart programs that happen to use the same
    identifier; it is no boundary within one user (\l {guides/concepts.html}{concepts guide},
    "Security"). Empty by default.

    \sa IpmbEndpoint::token
*/

/*!
    \qmlproperty int Endpoint::joinTimeout

    How long, in milliseconds, joining may take before it fails with \c Endpoint.TimeoutError,
    and how long a lost controller may take to be replaced before the endpoint gives up. The
    default is 10000; negative values are taken as 0.
*/

/*!
    \qmlproperty bool Endpoint::active

    Whether the endpoint should be on its bus; \c true by default. While it is \c true, the
    endpoint joins when the component is complete, when \l active becomes \c true while it is
    unjoined, and when an empty \l identifier gets a value (an identifier bound to something
    that arrives later is not an error). Setting it to \c false leaves the bus. A join that failed is not retried until
    \l active is set again or join() is called. join() and leave() do not change it.

    Set it to \c false to create an endpoint that joins later, for example once the user has
    chosen the bus:

    \qml
    Endpoint {
        identifier: busField.text
        label: ["editor"]
        active: connectButton.checked
    }
    \endqml
*/

/*!
    \qmlproperty enumeration Endpoint::state
    \readonly

    Where the endpoint is in joining its bus; stateChanged() reports every transition.

    \value Endpoint.UnjoinedState Not on a bus: before joining, after leave(), or after joining
           failed.
    \value Endpoint.JoiningState Joining: waiting for the election and the controller's welcome.
    \value Endpoint.JoinedState On the bus: messages can be sent and received.
    \value Endpoint.ReconnectingState The controller's process went away and the endpoint takes
           part in electing a new one. Messages sent meanwhile are kept and sent once joined
           again; if no controller appears within \l joinTimeout, the endpoint gives up with
           \c Endpoint.TimeoutError.

    \sa IpmbEndpoint::State, {guides/protocol.html}{protocol guide}
*/

/*!
    \qmlproperty bool Endpoint::controller
    \readonly

    Whether this endpoint's process hosts the bus controller, the router that runs on a thread
    of its own in the process of the first endpoint that joined (after a failover, of the one
    that won the election). Nothing needs to be done about it: this is for information and
    tests.
*/

/*!
    \qmlproperty int Endpoint::endpointId
    \readonly

    The number the controller gave this endpoint when it joined, 0 while it is not joined: what
    receivers see as \l {message.senderId}{senderId} of its messages, and other endpoints'
    peers as \l {peer.endpointId}{endpointId}. It stays the same across failover, and changes
    when the endpoint joins again.
*/

/*!
    \qmlproperty enumeration Endpoint::error
    \readonly

    The last error, or \c Endpoint.NoError; \l errorString describes it. Both change when
    errorOccurred() is emitted, including when clearError() resets them. The values are those of
    IpmbEndpoint::Error, which tells when each happens:

    \value Endpoint.NoError No error.
    \value Endpoint.TimeoutError No controller answered within \l joinTimeout, or none took over
           within it after a failover.
    \value Endpoint.DisconnectedError The endpoint is not joined (send() before joining).
    \value Endpoint.VersionMismatchError The bus speaks another protocol version.
    \value Endpoint.TokenMismatchError The bus has another \l token.
    \value Endpoint.PermissionError The bus directory is not safe to use, or only a controller of
           another user answered.
    \value Endpoint.PayloadTooLargeError The encoded payload is larger than 256 MiB.
    \value Endpoint.QueueFullError 8 MiB or 1,024 kernel handles already wait for the
           controller.
    \value Endpoint.InvalidArgumentError An empty \l identifier, a \l label or \l token over the
           limits, an invalid selector (\l errorString then has its parse error), or a payload
           that cannot be streamed.
    \value Endpoint.ProtocolError The other side broke the wire protocol.
    \value Endpoint.ResourceError The system is out of a resource (memory, descriptors).
    \value Endpoint.UnknownError Any other operating-system error.
    \value Endpoint.NoRouteError A request matched no endpoint (see request()).
    \value Endpoint.PeerLeftError The endpoint that got a request left, or died, before it
           replied.
*/

/*!
    \qmlproperty bool Endpoint::watchingPeers

    Whether this endpoint keeps a list of the other endpoints on its bus: peers(), peerJoined()
    and peerLeft(). \c false by default, so that a bus of many endpoints tells only those that
    ask; a PeerModel turns it on. Turning it off empties the list without signals. See
    IpmbEndpoint::watchingPeers and the \l {guides/presence-and-requests.html}{presence guide}
    for what it promises across failover.
*/

/*!
    \qmlmethod list<peer> Endpoint::peers()

    The other endpoints on the bus, in the order they joined, while \l watchingPeers is \c true.
    For a view, use a PeerModel.
*/

/*!
    \qmlsignal Endpoint::peerJoined(peer peer)
    \qmlsignal Endpoint::peerLeft(peer peer)

    Emitted, while \l watchingPeers is \c true, for each \a peer that joins (and for those
    already there once the list arrives), and for each that leaves, crashes included.
*/

/*!
    \qmlsignal Endpoint::watchingPeersChanged()

    Emitted when \l watchingPeers changes.
*/

/*!
    \qmlmethod Promise Endpoint::request(selector selector, var payload, int timeoutMsecs = 30000)

    Sends \a payload, with a timeout of \a timeoutMsecs milliseconds, as a request to the one endpoint that \a selector (a unicast) picks, and
    returns a JavaScript Promise. It resolves with the reply, a \l message whose
    \l {message.senderPid}{senderPid} and \l {message.senderLabel}{senderLabel} say who answered;
    it rejects with an \c Error whose \c error property is the reason, one of
    \c Endpoint.TimeoutError, \c Endpoint.NoRouteError, \c Endpoint.PeerLeftError,
    \c Endpoint.DisconnectedError, \c Endpoint.QueueFullError or
    \c Endpoint.InvalidArgumentError, and whose \c message describes it.

    \qml
    endpoint.request(Selector.unicast("worker"), { job: 7 }, 5000)
        .then(reply => results.append({ text: reply.payload, worker: reply.senderPid }))
        .catch(e => status.text = e.message)
    \endqml

    \sa IpmbEndpoint::request(), reply()
*/

/*!
    \qmlmethod bool Endpoint::reply(message request, var payload)

    Answers \a request, a received message whose \l {message.request}{request} property is
    \c true, with \a payload. Returns \c false and sets \l error if it is not a request or has
    been answered already.
*/

/*!
    \qmlproperty string Endpoint::errorString
    \readonly

    A readable description of \l error, such as \c {send: invalid label op "earth &&": expected
    an operand at position 8 (end of input)}; empty when there is none.
*/

/*!
    \qmlsignal Endpoint::messageReceived(message message)

    Emitted for each \a message this endpoint receives. Messages from one sender arrive in the
    order they were sent. A message that carries shared-memory regions keeps them until the
    garbage collector frees the JavaScript value that holds it; see "Receiving" above, and use
    \l {SharedImage::source}{SharedImage.source} for frames.
*/

/*!
    \qmlsignal Endpoint::joined()

    Emitted when the endpoint has joined its bus, and again after each failover that it
    survived.
*/

/*!
    \qmlsignal Endpoint::errorOccurred(enumeration error)

    Emitted when \l error changes to \a error, one of the \c Endpoint error values. It is also
    emitted with \c Endpoint.NoError when clearError() resets an error that was set.
*/

/*!
    \qmlsignal Endpoint::messagesDropped(int count)

    Emitted when the controller had to drop \a count messages for this endpoint because it read
    nothing for a second (it was declared stuck). See "Delivery promises" in the
    \l {guides/concepts.html}{concepts guide}.
*/

/*!
    \qmlsignal Endpoint::identifierChanged()
    \qmlsignal Endpoint::labelChanged()
    \qmlsignal Endpoint::tokenChanged()
    \qmlsignal Endpoint::joinTimeoutChanged()
    \qmlsignal Endpoint::activeChanged()
    \qmlsignal Endpoint::stateChanged()
    \qmlsignal Endpoint::controllerChanged()

    Emitted when the property of the same name changes (\l identifier, \l label, \l token,
    \l joinTimeout, \l active, \l state, \l controller). \l error and \l errorString change
    with errorOccurred().
*/

/*!
    \qmlmethod bool Endpoint::send(selector selector, var payload)

    Sends \a payload to the endpoints that \a selector picks, and returns \c true once the
    message is queued for the controller; it never waits for a slow receiver.

    \a payload is any JavaScript value that converts to a QVariant: a string, a number, a bool,
    an array, an object (a map of strings to values, nested as deep as needed), an ArrayBuffer
    (a QByteArray), or a value that a C++ function returned. Receivers get it back as the
    \l {message.payload}{payload} of a message; C++ receivers as a QVariant
    (\l {guides/payloads.html}{payloads guide}).

    Returns \c false, sets \l error and \l errorString and emits errorOccurred() before it
    returns when the endpoint is not joined (\c Endpoint.DisconnectedError), when \a selector is
    invalid or the payload cannot be streamed (\c Endpoint.InvalidArgumentError; for an invalid
    selector \l errorString has its parse error), when the payload is larger than 256 MiB
    (\c Endpoint.PayloadTooLargeError), or when the queue to the controller is full
    (\c Endpoint.QueueFullError).

    \qml
    if (!endpoint.send(Selector.multicast("renderer && !gpu0"), { frame: 12, exposure: 0.5 }))
        status.text = endpoint.errorString
    \endqml

    \sa IpmbEndpoint::send()
*/

/*!
    \qmlmethod void Endpoint::join()

    Joins the bus asynchronously: joined() follows on success, errorOccurred() on failure. Does
    nothing unless \l state is \c Endpoint.UnjoinedState. An \l active endpoint joins by itself;
    call join() to try again after a failed join, or to join an endpoint that is not \l active.
*/

/*!
    \qmlmethod void Endpoint::leave()

    Leaves the bus. Queued messages are handed to the controller first (for at most a second).
    If this endpoint hosts the controller, the other endpoints elect a new one. The endpoint
    does not join again by itself, even while \l active is \c true.
*/

/*!
    \qmlmethod void Endpoint::clearError()

    Resets \l error to \c Endpoint.NoError and \l errorString to an empty string. If an error
    was set, errorOccurred() is emitted with \c Endpoint.NoError, so that bindings see the
    change.
*/

IpmbQmlEndpoint::IpmbQmlEndpoint(QObject *parent)
    : QObject(parent), m_endpoint(new IpmbEndpoint(this))
{
    connect(m_endpoint, &IpmbEndpoint::identifierChanged, this, &IpmbQmlEndpoint::identifierChanged);
    connect(m_endpoint, &IpmbEndpoint::identifierChanged, this, &IpmbQmlEndpoint::update);
    connect(m_endpoint, &IpmbEndpoint::labelChanged, this, &IpmbQmlEndpoint::labelChanged);
    connect(m_endpoint, &IpmbEndpoint::tokenChanged, this, &IpmbQmlEndpoint::tokenChanged);
    connect(m_endpoint, &IpmbEndpoint::joinTimeoutChanged, this, &IpmbQmlEndpoint::joinTimeoutChanged);
    connect(m_endpoint, &IpmbEndpoint::stateChanged, this, &IpmbQmlEndpoint::stateChanged);
    connect(m_endpoint, &IpmbEndpoint::controllerChanged, this, &IpmbQmlEndpoint::controllerChanged);
    connect(m_endpoint, &IpmbEndpoint::joined, this, &IpmbQmlEndpoint::joined);
    connect(m_endpoint, &IpmbEndpoint::errorOccurred, this, &IpmbQmlEndpoint::errorOccurred);
    connect(m_endpoint, &IpmbEndpoint::messageReceived, this, &IpmbQmlEndpoint::messageReceived);
    connect(m_endpoint, &IpmbEndpoint::messagesDropped, this, &IpmbQmlEndpoint::messagesDropped);
    connect(m_endpoint, &IpmbEndpoint::watchingPeersChanged, this, &IpmbQmlEndpoint::watchingPeersChanged);
    connect(m_endpoint, &IpmbEndpoint::peerJoined, this, &IpmbQmlEndpoint::peerJoined);
    connect(m_endpoint, &IpmbEndpoint::peerLeft, this, &IpmbQmlEndpoint::peerLeft);
}

// A JavaScript object or array may reach us as a QJSValue; the bus carries plain QVariants.
static QVariant plain(const QVariant &payload)
{
    return payload.metaType() == QMetaType::fromType<QJSValue>() ? payload.value<QJSValue>().toVariant() : payload;
}

QJSValue IpmbQmlEndpoint::request(const IpmbSelector &selector, const QVariant &payload, int timeoutMsecs)
{
    QJSEngine *engine = qjsEngine(this);
    if (!engine)
        return QJSValue();
    // A Promise whose settling functions C++ keeps.
    const QJSValue make = engine->evaluate(QStringLiteral(
            "(function() { let settle = {}; settle.promise = new Promise((resolve, reject) => {"
            " settle.resolve = resolve; settle.reject = reject; }); return settle; })"));
    const QJSValue settle = make.call();
    // A watcher, not a continuation with a context object: Qt 6.4 asserts when a context object
    // has gone before its future finishes, and this one goes with the QML item.
    auto *watcher = new QFutureWatcher<IpmbMessage>(this);
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher, settle] {
        watcher->deleteLater();
        QJSEngine *engine = qjsEngine(this);
        if (!engine)
            return;
        QFuture<IpmbMessage> future = watcher->future();
        if (future.resultCount() > 0) {
            QJSValue(settle.property(QStringLiteral("resolve"))).call({engine->toScriptValue(future.result())});
            return;
        }
        IpmbEndpoint::Error error = IpmbEndpoint::DisconnectedError;
        QString errorString = IpmbEndpoint::tr("request: cancelled");
        try {
            future.waitForFinished();  // finished already: rethrows the failure, if there is one
        } catch (const IpmbRequestError &e) {
            error = e.error();
            errorString = e.errorString();
        }
        QJSValue reason = engine->newErrorObject(QJSValue::GenericError, errorString);
        reason.setProperty(QStringLiteral("error"), int(error));
        QJSValue(settle.property(QStringLiteral("reject"))).call({reason});
    });
    watcher->setFuture(m_endpoint->request(selector, plain(payload), timeoutMsecs));
    return settle.property(QStringLiteral("promise"));
}

bool IpmbQmlEndpoint::reply(const IpmbMessage &request, const QVariant &payload)
{
    return m_endpoint->reply(request, plain(payload));
}

IpmbQmlEndpoint::~IpmbQmlEndpoint() = default;

void IpmbQmlEndpoint::setActive(bool active)
{
    if (m_active == active)
        return;
    m_active = active;
    Q_EMIT activeChanged();
    update();
}

void IpmbQmlEndpoint::componentComplete()
{
    m_complete = true;
    update();
}

// Joins once the component is complete (all bindings set), active and has an identifier (one
// bound to something that arrives later is not an error); leaves when made inactive.
void IpmbQmlEndpoint::update()
{
    if (!m_complete)
        return;
    if (m_active && m_endpoint->state() == IpmbEndpoint::UnjoinedState && !m_endpoint->identifier().isEmpty())
        m_endpoint->join();
    else if (!m_active && m_endpoint->state() != IpmbEndpoint::UnjoinedState)
        m_endpoint->leave();
}

bool IpmbQmlEndpoint::send(const IpmbSelector &selector, const QVariant &payload)
{
    return m_endpoint->send(selector, plain(payload));
}
