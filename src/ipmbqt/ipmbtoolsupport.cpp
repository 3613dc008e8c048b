// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbtoolsupport_p.h"

#include "ipmbendpoint_p.h"
#include "ipmbmessage_p.h"
#include "ipmbpayloadcodec_p.h"

#include <QtCore/qendian.h>


namespace IpmbToolSupport {

void setMonitor(IpmbEndpoint *endpoint, bool monitor)
{
    if (endpoint->state() != IpmbEndpoint::UnjoinedState) {
        qWarning("IpmbToolSupport::setMonitor: call it before join()");
        return;
    }
    IpmbEndpointPrivate *d = IpmbEndpointPrivate::get(endpoint);
    d->m_monitor = monitor;
    d->m_joinsOnly = monitor;
    d->m_inbox.setMonitor(monitor);
}

void setJoinsExistingBusOnly(IpmbEndpoint *endpoint, bool only)
{
    if (endpoint->state() != IpmbEndpoint::UnjoinedState) {
        qWarning("IpmbToolSupport::setJoinsExistingBusOnly: call it before join()");
        return;
    }
    IpmbEndpointPrivate::get(endpoint)->m_joinsOnly = only;
}

bool isMonitor(const IpmbEndpoint *endpoint)
{
    return IpmbEndpointPrivate::get(endpoint)->m_monitor;
}

std::optional<IpmbObservation> observation(const IpmbMessage &message)
{
    const std::shared_ptr<const IpmbObservation> &observation = IpmbMessageData::get(message)->observation;
    return observation ? std::optional<IpmbObservation>(*observation) : std::nullopt;
}

void setKeepsEncodedPayloads(IpmbEndpoint *endpoint, bool keep)
{
    if (endpoint->state() != IpmbEndpoint::UnjoinedState) {
        qWarning("IpmbToolSupport::setKeepsEncodedPayloads: call it before join()");
        return;
    }
    IpmbEndpointPrivate::get(endpoint)->m_inbox.setKeepsEncodedPayloads(keep);
}

QByteArray encodedPayload(const IpmbMessage &message)
{
    return IpmbMessageData::get(message)->encodedPayload;
}

IpmbMessage messageWithEncodedPayload(const IpmbSelector &selector, const QByteArray &encoded)
{
    return IpmbMessage(selector, QVariant::fromValue(IpmbEncodedPayload{encoded}));
}

QString payloadPrefixText(QByteArrayView prefix)
{
    const std::optional<QByteArray> typeName = IpmbPayloadCodec::typeNameOf(prefix);
    if (!typeName || typeName->isEmpty())
        return {};
    const QByteArrayView value = prefix.sliced(1 + typeName->size());
    if (*typeName == "QString") {  // UTF-16 little-endian on the wire; an odd last byte is cut off
        QString text(value.size() / 2, Qt::Uninitialized);
        qFromLittleEndian<char16_t>(value.data(), text.size(), text.data());
        return text;
    }
    if (*typeName == "QByteArray")
        return QString::fromUtf8(value);
    return {};
}

} // namespace IpmbToolSupport
