// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBTOOLSUPPORT_P_H
#define IPMBTOOLSUPPORT_P_H

// Private API for the programs in tools/ (the `ipmbqt` command, the inspector). It is exported
// so that they link against an installed library, but it is not part of the public API and may
// change in any release (the idiom of Qt's exported _p.h classes). Not installed.

#include "ipmbendpoint.h"
#include "ipmbmessage.h"

#include <optional>

// What a monitor learns about one message besides the message itself (doc/protocol.md, "Monitors").
struct IpmbObservation
{
    enum Path : quint8 { ThroughController = 0, OnChannel = 1 };
    Path path = ThroughController;
    bool tracked = false;
    bool request = false;
    bool reply = false;
    quint32 target = 0;      // the one receiver (unicast, addressed, channel); 0 for none or several
    quint32 deliveries = 0;  // how many endpoints it went to; 0: nobody matched; KeptForTtl
    static constexpr quint32 KeptForTtl = 0xFFFFFFFF;  // nobody matched yet: kept for its ttl
    quint16 handleCount = 0; // kernel handles it carried (the monitor gets none), regions included
    quint16 regionCount = 0;
    qint64 payloadSize = 0;  // bytes of the encoded payload as sent (doc/payloads.md, "Wire format")
    bool payloadInRegion = false; // it travelled in shared memory: the monitor has none of its bytes
    QByteArray payloadPrefix;     // the first bytes of the encoded payload (at most MonitorPayloadBytes)
};

namespace IpmbToolSupport {

// Call before join(). A monitor endpoint is never a receiver of anyone's messages and is in no
// peer list; messageReceived() gives it a copy of each message on the bus (the payload decoded
// when the whole payload came along), and observation() says how that message went.
IPMBQT_EXPORT void setMonitor(IpmbEndpoint *endpoint, bool monitor);
IPMBQT_EXPORT bool isMonitor(const IpmbEndpoint *endpoint);
// Call before join(). The endpoint never hosts the bus's controller: joining a bus that nobody is
// on fails (NoRouteError, "Nobody is on the bus ...") after a second instead of starting one, and
// after a failover it waits for another endpoint to take over. A tool that looks at a bus must not
// make one up when its name was mistyped. Monitors are set so by setMonitor().
IPMBQT_EXPORT void setJoinsExistingBusOnly(IpmbEndpoint *endpoint, bool only);
// Set for a message that a monitor endpoint received; empty for any other message.
IPMBQT_EXPORT std::optional<IpmbObservation> observation(const IpmbMessage &message);

// Call before join(). The endpoint keeps the payload of each received message as it was on the
// wire and does not decode it: payload() is invalid, payloadTypeName() is set, and
// encodedPayload() returns the bytes (a bridge forwards payloads of types it cannot read).
IPMBQT_EXPORT void setKeepsEncodedPayloads(IpmbEndpoint *endpoint, bool keep);
IPMBQT_EXPORT QByteArray encodedPayload(const IpmbMessage &message);
// A message whose payload goes on the wire exactly as `encoded` (the format of doc/payloads.md,
// "Wire format"). send() fails with InvalidArgumentError if `encoded` does not start with a
// well-formed type name, and with PayloadTooLargeError beyond the payload limit; receivers check
// the rest as they check any payload.
IPMBQT_EXPORT IpmbMessage messageWithEncodedPayload(const IpmbSelector &selector, const QByteArray &encoded);

// The start of the value of a payload of which only `prefix` came along (a monitor's copy): the
// text of a QString, or of a QByteArray (bytes that are not UTF-8 come out as U+FFFD); null for
// any other type, whose encoding cannot be read in part.
IPMBQT_EXPORT QString payloadPrefixText(QByteArrayView prefix);

} // namespace IpmbToolSupport

#endif // IPMBTOOLSUPPORT_P_H
