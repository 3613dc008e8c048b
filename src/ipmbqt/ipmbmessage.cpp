// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbmessage.h"
#include "ipmbmessage_p.h"

#include <QtCore/qdebug.h>

/*!
    \class IpmbMessage
    \brief A message on the bus: a selector that routes it and a QVariant payload.

    Outgoing messages are built by the user; received messages also say who sent them
    (senderPid(), senderUid(), senderLabel(), filled in by the controller, so a sender cannot lie)
    and whether the payload could be decoded in this process (payloadStatus()). A payload of a
    type that is not registered here arrives with PayloadUnknownType and its payloadTypeName().
*/

IpmbMessage::IpmbMessage()
    : d(new IpmbMessageData)
{
}

IpmbMessage::IpmbMessage(const IpmbSelector &selector, const QVariant &payload)
    : d(new IpmbMessageData(selector, payload))
{
}

IpmbMessage::IpmbMessage(IpmbMessageData *data)
    : d(data)
{
}

IpmbMessage::IpmbMessage(const IpmbMessage &other) = default;
IpmbMessage::IpmbMessage(IpmbMessage &&other) noexcept = default;
IpmbMessage &IpmbMessage::operator=(const IpmbMessage &other) = default;
IpmbMessage &IpmbMessage::operator=(IpmbMessage &&other) noexcept = default;
IpmbMessage::~IpmbMessage() = default;

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

bool operator==(const IpmbMessage &lhs, const IpmbMessage &rhs)
{
    if (lhs.d == rhs.d)
        return true;
    const IpmbMessageData &a = *lhs.d;
    const IpmbMessageData &b = *rhs.d;
    return a.selector == b.selector && a.payload == b.payload && a.handles == b.handles
            && a.regions == b.regions
            && a.payloadStatus == b.payloadStatus
            && a.payloadTypeName == b.payloadTypeName && a.senderPid == b.senderPid
            && a.senderUid == b.senderUid && a.senderLabel == b.senderLabel && a.senderId == b.senderId;
}

#ifndef QT_NO_DEBUG_STREAM
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
