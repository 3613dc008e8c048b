// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbtoolsupport_p.h"

// Placeholder implementations (landing in steps): monitors and encoded payloads.
namespace IpmbToolSupport {

void setMonitor(IpmbEndpoint *, bool) { }
bool isMonitor(const IpmbEndpoint *) { return false; }
std::optional<IpmbObservation> observation(const IpmbMessage &) { return std::nullopt; }
void setKeepsEncodedPayloads(IpmbEndpoint *, bool) { }
QByteArray encodedPayload(const IpmbMessage &) { return {}; }
IpmbMessage messageWithEncodedPayload(const IpmbSelector &selector, const QByteArray &) { return IpmbMessage(selector, QVariant()); }
QString payloadSummary(const QByteArray &, qint64 fullSize, int)
{
    return QStringLiteral("%1 bytes").arg(fullSize);
}

} // namespace IpmbToolSupport
