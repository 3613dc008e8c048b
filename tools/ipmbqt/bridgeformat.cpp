// SPDX-License-Identifier: BSD-3-Clause
#include "bridgeformat.h"

#include "ipmblimits_p.h"

#include <mosquitto.h>

using namespace Qt::StringLiterals;

namespace BridgeFormat {

namespace {

// At most 60 characters of a value from the wire, for a log line; anything unprintable escaped.
QString shown(const QByteArray &value)
{
    QString text;
    for (qsizetype i = 0; i < value.size() && text.size() < 60; ++i) {
        const auto c = uchar(value.at(i));
        text += c >= 0x20 && c < 0x7f ? QString(QChar(c)) : u"\\x%1"_s.arg(c, 2, 16, QLatin1Char('0'));
    }
    if (text.size() >= 60)
        text += u"..."_s;
    return text;
}

constexpr qsizetype MaxMqttString = 0xFFFF; // an MQTT UTF-8 string has a u16 length

} // namespace

std::optional<QByteArray> payloadTypeName(const QByteArray &encoded, QString *why)
{
    if (encoded.isEmpty()) {
        *why = u"empty payload (not even the type name's length)"_s;
        return std::nullopt;
    }
    const qsizetype length = uchar(encoded.at(0));
    if (1 + length > encoded.size()) {
        *why = u"payload of %1 bytes is shorter than its type name (%2 bytes)"_s.arg(encoded.size()).arg(length);
        return std::nullopt;
    }
    const QByteArray name = encoded.mid(1, length);
    for (const char c : name) {
        if (uchar(c) < 0x20 || uchar(c) > 0x7e) {
            *why = u"payload type name '%1' is not printable ASCII"_s.arg(shown(name));
            return std::nullopt;
        }
    }
    return name;
}

std::optional<MqttUserProperties> exportProperties(const IpmbMessage &message, const QByteArray &typeName,
                                                   const QByteArray &origin, const QString &bus, QString *why)
{
    const IpmbSelector selector = message.selector();
    const QByteArray op = selector.labelOp().toString().toUtf8();
    if (op.size() > MaxMqttString) {
        *why = u"its label op's text (%1 bytes) is longer than an MQTT string (65,535 bytes)"_s.arg(op.size());
        return std::nullopt;
    }
    MqttUserProperties properties {
        {KeyFormat, FormatVersion},
        {KeyMode, selector.mode() == IpmbSelector::Multicast ? "multicast" : "unicast"},
        {KeyOp, op},
        {KeyTtl, QByteArray::number(qint64(selector.ttl().count()))},
        {KeyType, typeName},
        {KeyOrigin, origin},
        {KeyBus, bus.toUtf8()},
    };
    for (const QString &name : message.senderLabel().toStringList())
        properties.append({KeySender, name.toUtf8()});
    return properties;
}

std::optional<Imported> parseImported(const MqttMessage &message, qint64 maxPayload, QString *why)
{
    if (message.payload.size() > maxPayload) {
        *why = u"payload of %1 bytes is over the limit of %2"_s.arg(message.payload.size()).arg(maxPayload);
        return std::nullopt;
    }
    if (message.contentType != ContentType) {
        *why = message.contentType.isEmpty() ? u"no content type (not from an ipmbqt bridge)"_s
                                             : u"content type '%1' is not %2"_s.arg(shown(message.contentType),
                                                                                   QLatin1String(ContentType));
        return std::nullopt;
    }
    std::optional<QByteArray> format, mode, op, ttl, type, origin;
    Imported imported;
    for (const auto &[key, value] : message.userProperties) {
        std::optional<QByteArray> *slot = nullptr;
        if (key == KeyFormat)
            slot = &format;
        else if (key == KeyMode)
            slot = &mode;
        else if (key == KeyOp)
            slot = &op;
        else if (key == KeyTtl)
            slot = &ttl;
        else if (key == KeyType)
            slot = &type;
        else if (key == KeyOrigin)
            slot = &origin;
        else if (key == KeySender)
            imported.senderLabel.append(QString::fromUtf8(value));
        if (!slot)
            continue; // another's property, or informational (ipmbqt-bus)
        if (slot->has_value()) {
            *why = u"property %1 given twice"_s.arg(QLatin1String(key));
            return std::nullopt;
        }
        *slot = value;
    }
    if (!format || !mode || !op || !ttl) {
        *why = u"property %1 missing"_s.arg(QLatin1String(!format ? KeyFormat : !mode ? KeyMode : !op ? KeyOp : KeyTtl));
        return std::nullopt;
    }
    if (*format != FormatVersion) {
        *why = u"format '%1' is not %2"_s.arg(shown(*format), QLatin1String(FormatVersion));
        return std::nullopt;
    }
    IpmbSelector::Mode selectorMode = IpmbSelector::Unicast;
    if (*mode == "multicast") {
        selectorMode = IpmbSelector::Multicast;
    } else if (*mode != "unicast") {
        *why = u"mode '%1' is neither unicast nor multicast"_s.arg(shown(*mode));
        return std::nullopt;
    }
    bool ok = ttl->size() >= 1 && ttl->size() <= 10;
    for (const char c : *ttl)
        ok = ok && c >= '0' && c <= '9';
    const qint64 ttlMsecs = ok ? ttl->toLongLong(&ok) : -1;
    if (!ok || ttlMsecs > IpmbLimits::MaxTtlMsecs) {
        *why = u"ttl '%1' is not a number of milliseconds up to %2"_s.arg(shown(*ttl)).arg(IpmbLimits::MaxTtlMsecs);
        return std::nullopt;
    }
    if (op->size() > IpmbLimits::MaxOpTextLength) {
        *why = u"label op of %1 bytes is longer than %2"_s.arg(op->size()).arg(IpmbLimits::MaxOpTextLength);
        return std::nullopt;
    }
    QString opError;
    const std::optional<IpmbLabelOp> labelOp = IpmbLabelOp::fromString(QString::fromUtf8(*op), &opError);
    if (!labelOp) {
        *why = u"label op '%1' does not parse: %2"_s.arg(shown(*op), opError);
        return std::nullopt;
    }
    const std::optional<QByteArray> name = payloadTypeName(message.payload, why);
    if (!name)
        return std::nullopt;
    if (type && *type != *name) {
        *why = u"property %1 says '%2' but the payload is a '%3'"_s.arg(QLatin1String(KeyType), shown(*type), shown(*name));
        return std::nullopt;
    }
    imported.selector = IpmbSelector(selectorMode, *labelOp, std::chrono::milliseconds(ttlMsecs));
    imported.typeName = *name;
    imported.origin = origin.value_or(QByteArray());
    return imported;
}

bool isValidTopicName(const QByteArray &topic, QString *why)
{
    if (topic.isEmpty() || topic.size() > MaxMqttString || topic.contains('\0')
        || mosquitto_validate_utf8(topic.constData(), int(topic.size())) != MOSQ_ERR_SUCCESS) {
        *why = u"'%1' is not an MQTT topic name (1 to 65,535 bytes of UTF-8)"_s.arg(QString::fromUtf8(topic));
        return false;
    }
    if (mosquitto_pub_topic_check(topic.constData()) != MOSQ_ERR_SUCCESS) {
        *why = u"'%1' is not an MQTT topic name: '+' and '#' are for filters"_s.arg(QString::fromUtf8(topic));
        return false;
    }
    return true;
}

bool isValidTopicFilter(const QByteArray &filter, QString *why)
{
    if (filter.isEmpty() || filter.size() > MaxMqttString || filter.contains('\0')
        || mosquitto_validate_utf8(filter.constData(), int(filter.size())) != MOSQ_ERR_SUCCESS
        || mosquitto_sub_topic_check(filter.constData()) != MOSQ_ERR_SUCCESS) {
        *why = u"'%1' is not an MQTT topic filter ('+' a whole level, '#' only at the end)"_s.arg(
                QString::fromUtf8(filter));
        return false;
    }
    return true;
}

} // namespace BridgeFormat
