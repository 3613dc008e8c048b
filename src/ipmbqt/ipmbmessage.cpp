// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbmessage.h"
#include "ipmbmessage_p.h"

#include <QtCore/qdebug.h>

/*!
    \class IpmbMessage
    \inmodule IpmbQt
    \inheaderfile IpmbQt/IpmbMessage
    \brief A message on the bus: a selector that routes it and a QVariant payload.

    Outgoing messages are built by the user; received messages also say who sent them
    (senderPid(), senderUid(), senderLabel(), filled in by the controller, so a sender cannot lie)
    and whether the payload could be decoded in this process (payloadStatus()). A payload of a
    type that is not registered here arrives with PayloadUnknownType and its payloadTypeName().
*/

/*!
    \enum IpmbMessage::PayloadStatus

    Whether the payload of a received message could be decoded in this process. The message is
    delivered either way; only its payload() is missing (an invalid QVariant). See the
    \l {guides/payloads.html}{payloads guide}.

    \value PayloadOk The payload was decoded (always the case for outgoing messages).
    \value PayloadUnknownType The payload's type, or a type inside it, is not registered in this
           process, has no QDataStream operators here, or is one that receivers refuse;
           payloadTypeName() names it.
    \value PayloadMalformed The bytes are not a valid encoding of the type: a bug in a user
           type's stream operators, differing versions of them, or a hostile sender.
*/

/*!
    Constructs an empty message: default selector, invalid payload.
*/
IpmbMessage::IpmbMessage()
    : d(new IpmbMessageData)
{
}

/*!
    Constructs a message that goes to the endpoints \a selector picks and carries \a payload.
    Attach kernel handles and shared-memory regions with addHandle() and addRegion(), then pass
    it to IpmbEndpoint::send().
*/
IpmbMessage::IpmbMessage(const IpmbSelector &selector, const QVariant &payload)
    : d(new IpmbMessageData(selector, payload))
{
}

IpmbMessage::IpmbMessage(IpmbMessageData *data)
    : d(data)
{
}

/*!
    \fn IpmbMessage::IpmbMessage(const IpmbMessage &other)

    Constructs a copy of \a other. Copies are cheap (implicitly shared); attached handles and
    regions are shared, not duplicated.
*/

/*!
    \fn IpmbMessage::IpmbMessage(IpmbMessage &&other)

    Move-constructs a message from \a other.
*/

/*!
    \fn IpmbMessage &IpmbMessage::operator=(const IpmbMessage &other)

    Assigns \a other to this message and returns a reference to it.
*/

/*!
    \fn IpmbMessage &IpmbMessage::operator=(IpmbMessage &&other)

    Move-assigns \a other to this message and returns a reference to it.
*/

/*!
    \fn IpmbMessage::~IpmbMessage()

    Destroys the message. Attached handles are closed and regions unmapped when their last copy
    goes.
*/

/*!
    \fn void IpmbMessage::swap(IpmbMessage &other)

    Swaps this message with \a other. This operation is very fast and never fails.
*/
IpmbMessage::IpmbMessage(const IpmbMessage &other) = default;
IpmbMessage::IpmbMessage(IpmbMessage &&other) noexcept = default;
IpmbMessage &IpmbMessage::operator=(const IpmbMessage &other) = default;
IpmbMessage &IpmbMessage::operator=(IpmbMessage &&other) noexcept = default;
IpmbMessage::~IpmbMessage() = default;

/*!
    \property IpmbMessage::selector
    \brief which endpoints receive the message.

    In a received message, the selector the sender used.
*/

/*!
    \fn void IpmbMessage::setSelector(const IpmbSelector &selector)

    Sets the \a selector that routes the message.
*/

/*!
    \property IpmbMessage::payload
    \brief the value the message carries.

    Any QVariant whose type has QDataStream operators and is registered in the receiving process
    (\l {guides/payloads.html}{payloads guide}). In a received message whose payloadStatus() is
    not PayloadOk, an invalid QVariant.
*/

/*!
    \fn void IpmbMessage::setPayload(const QVariant &payload)

    Sets the \a payload the message carries.
*/

/*!
    \fn QList<IpmbNativeHandle> IpmbMessage::handles() const

    Returns the kernel handles attached to the message. In a received message these are new
    handles of this process, referring to the same open files, pipes or sockets as the sender's.
*/

/*!
    \fn void IpmbMessage::setHandles(const QList<IpmbNativeHandle> &handles)

    Replaces the attached kernel handles with \a handles. Handles and regions together are at
    most 64 per message; more make IpmbEndpoint::send() fail with
    IpmbEndpoint::InvalidArgumentError. The handles stay valid in this process after send().
*/

/*!
    \fn void IpmbMessage::addHandle(const IpmbNativeHandle &handle)

    Attaches \a handle to the message. The receiver gets its own handle to the same kernel
    object; see setHandles() for the limit.
*/

/*!
    \property IpmbMessage::handleCount
    \brief the number of kernel handles attached to the message.

    handles() returns them.
*/

/*!
    \fn QList<IpmbMemoryRegion> IpmbMessage::regions() const

    Returns the shared-memory regions attached to the message. In a received message they are
    already mapped: the same memory as the sender's, not a copy.
*/

/*!
    \fn void IpmbMessage::setRegions(const QList<IpmbMemoryRegion> &regions)

    Replaces the attached shared-memory regions with \a regions. They travel without a copy:
    the receiver maps the same memory (\l {guides/memory.html}{shared memory guide}).
*/

/*!
    \fn void IpmbMessage::addRegion(const IpmbMemoryRegion &region)

    Attaches \a region to the message; see setRegions().
*/

/*!
    \property IpmbMessage::regionCount
    \brief the number of shared-memory regions attached to the message.

    regions() returns them.
*/

/*!
    \property IpmbMessage::payloadStatus
    \brief whether the payload of a received message could be decoded here.

    PayloadOk for outgoing messages.
*/

/*!
    \property IpmbMessage::payloadTypeName
    \brief the name of the payload's type as it was sent.

    Set in received messages; with PayloadUnknownType it tells which type to register. The
    property is a QString, so that QML reads it as text; payloadTypeName() returns the bytes.
*/

/*!
    \fn QByteArray IpmbMessage::payloadTypeName() const

    Returns the name of the payload's type as it was sent (the QMetaType name), as
    QMetaType::name() spells it. Set in received messages.
*/

/*!
    \property IpmbMessage::payloadErrorString
    \brief why the payload of a received message could not be decoded.

    Empty when payloadStatus() is PayloadOk.
*/

/*!
    \property IpmbMessage::senderPid
    \brief the process id of the sender, as the controller saw it on the socket.

    Written by the controller from what the kernel told it (\c SO_PEERCRED on Linux), never
    claimed by the sender: the process that connected, which may have handed its socket to
    another process since. -1 in a message that was not received.
*/

/*!
    \property IpmbMessage::senderUid
    \brief the user id of the sender, as the controller saw it on the socket.

    Always this process's user: a bus is open to one user only. -1 in a message that was not
    received.
*/

/*!
    \property IpmbMessage::senderLabel
    \brief the label the sender joined with.

    Empty in a message that was not received. A process of the same user may claim any label;
    see the \l {guides/concepts.html}{concepts guide}, "Security".
*/

/*!
    \property IpmbMessage::senderId
    \brief the id the controller gave the sending endpoint when it joined.

    Tells apart endpoints with the same label, for example to reply to exactly one; it is the
    IpmbPeer::endpointId() that presence reports. It stays the same across failover, and changes
    when the endpoint leaves and joins again. 0 in a message that was not received.
*/
IpmbSelector IpmbMessage::selector() const { return d->selector; }
void IpmbMessage::setSelector(const IpmbSelector &selector) { d->selector = selector; }
QVariant IpmbMessage::payload() const { return d->payload; }
void IpmbMessage::setPayload(const QVariant &payload) { d->payload = payload; }
QList<IpmbNativeHandle> IpmbMessage::handles() const { return d->handles; }
void IpmbMessage::setHandles(const QList<IpmbNativeHandle> &handles) { d->handles = handles; }
void IpmbMessage::addHandle(const IpmbNativeHandle &handle) { d->handles.append(handle); }
/*!
    Returns the number of kernel handles attached to the message; handles() returns them.
*/
qsizetype IpmbMessage::handleCount() const { return d->handles.size(); }
QList<IpmbMemoryRegion> IpmbMessage::regions() const { return d->regions; }
void IpmbMessage::setRegions(const QList<IpmbMemoryRegion> &regions) { d->regions = regions; }
void IpmbMessage::addRegion(const IpmbMemoryRegion &region) { d->regions.append(region); }
/*!
    Returns the number of shared-memory regions attached to the message; regions() returns them.
*/
qsizetype IpmbMessage::regionCount() const { return d->regions.size(); }
IpmbMessage::PayloadStatus IpmbMessage::payloadStatus() const { return d->payloadStatus; }
QByteArray IpmbMessage::payloadTypeName() const { return d->payloadTypeName; }
QString IpmbMessage::payloadErrorString() const { return d->payloadErrorString; }
qint64 IpmbMessage::senderPid() const { return d->senderPid; }
qint64 IpmbMessage::senderUid() const { return d->senderUid; }
IpmbLabel IpmbMessage::senderLabel() const { return d->senderLabel; }
quint32 IpmbMessage::senderId() const { return d->senderId; }

/*!
    \property IpmbMessage::request
    \brief whether this received message is a request (IpmbEndpoint::request()): its sender waits
    for one IpmbEndpoint::reply() to it.
*/
bool IpmbMessage::isRequest() const { return d->isRequest(); }

/*!
    \fn bool IpmbMessage::operator==(const IpmbMessage &lhs, const IpmbMessage &rhs)

    Returns \c true if \a lhs and \a rhs have equal selectors, payloads, attachments and sender
    information.
*/

/*!
    \fn bool IpmbMessage::operator!=(const IpmbMessage &lhs, const IpmbMessage &rhs)

    Returns \c true if \a lhs and \a rhs differ.
*/
bool operator==(const IpmbMessage &lhs, const IpmbMessage &rhs)
{
    if (lhs.d == rhs.d)
        return true;
    const IpmbMessageData &a = *lhs.d;
    const IpmbMessageData &b = *rhs.d;
    return a.selector == b.selector && a.payload == b.payload && a.handles == b.handles
            && a.regions == b.regions && a.requestId == b.requestId
            && a.payloadStatus == b.payloadStatus
            && a.payloadTypeName == b.payloadTypeName && a.senderPid == b.senderPid
            && a.senderUid == b.senderUid && a.senderLabel == b.senderLabel && a.senderId == b.senderId;
}

#ifndef QT_NO_DEBUG_STREAM
/*!
    \relates IpmbMessage

    Writes \a message to \a debug: selector, payload, attachment counts and, for a received
    message, the sender.
*/
QDebug operator<<(QDebug debug, const IpmbMessage &message)
{
    QDebugStateSaver saver(debug);
    debug.nospace() << "IpmbMessage(" << message.selector() << ", " << message.payload();
    if (!message.handles().isEmpty())
        debug << ", " << message.handles().size() << " handles";
    if (!message.regions().isEmpty())
        debug << ", " << message.regions().size() << " regions";
    if (message.senderPid() >= 0)
        debug << ", from pid " << message.senderPid() << ' ' << message.senderLabel();
    if (message.payloadStatus() != IpmbMessage::PayloadOk)
        debug << ", undecodable " << message.payloadTypeName();
    debug << ')';
    return debug;
}
#endif
