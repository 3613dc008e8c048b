// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQT_TOOL_BRIDGEFORMAT_H
#define IPMBQT_TOOL_BRIDGEFORMAT_H

#include "mqttclient.h"

#include <IpmbQt/IpmbMessage>

#include <optional>

// How a bus message travels as an MQTT v5 PUBLISH (doc/scale.md, "On the wire"): the payload in
// the wire format of doc/payloads.md, untouched, as the MQTT payload; the selector, the type name
// and where it came from in user properties. The only place that writes or reads that layout.
namespace BridgeFormat {

inline constexpr char ContentType[] = "application/x-ipmbqt-payload";
inline constexpr char FormatVersion[] = "1";

inline constexpr char KeyFormat[] = "ipmbqt-format";
inline constexpr char KeyMode[] = "ipmbqt-mode";
inline constexpr char KeyOp[] = "ipmbqt-op";
inline constexpr char KeyTtl[] = "ipmbqt-ttl";
inline constexpr char KeyType[] = "ipmbqt-type";
inline constexpr char KeyOrigin[] = "ipmbqt-origin";
inline constexpr char KeyBus[] = "ipmbqt-bus";
inline constexpr char KeySender[] = "ipmbqt-sender"; // once per name of the sender's label

// The label name every bridge joins with. Imported messages are sent with "&& !ipmbqt-bridge"
// added to their label op, so no bridge on the receiving bus gets them: a message crosses once.
inline constexpr char BridgeLabelName[] = "ipmbqt-bridge";

// The type name at the start of an encoded payload (empty for a null QVariant); nullopt with the
// reason if the bytes do not start with one (doc/payloads.md, "Wire format").
std::optional<QByteArray> payloadTypeName(const QByteArray &encoded, QString *why);

// The user properties of a bus message sent to MQTT; nullopt with the reason if it cannot go
// (a label op whose text is longer than an MQTT string).
std::optional<MqttUserProperties> exportProperties(const IpmbMessage &message, const QByteArray &typeName,
                                                   const QByteArray &origin, const QString &bus, QString *why);

struct Imported
{
    IpmbSelector selector; // as carried; the bridge adds "&& !ipmbqt-bridge" when it sends
    QByteArray typeName;
    QByteArray origin;
    QStringList senderLabel;
};

// Checks everything a PUBLISH from the broker carries, which anyone who may publish on the import
// topics wrote: nullopt with the reason if the message is not one a bridge exported.
std::optional<Imported> parseImported(const MqttMessage &message, qint64 maxPayload, QString *why);

// A topic name a bridge may publish on: UTF-8 without NUL, '+' or '#', 1 to 65,535 bytes.
bool isValidTopicName(const QByteArray &topic, QString *why);
// A topic filter a bridge may subscribe to ('+' and '#' where MQTT allows them).
bool isValidTopicFilter(const QByteArray &filter, QString *why);

} // namespace BridgeFormat

#endif // IPMBQT_TOOL_BRIDGEFORMAT_H
