// SPDX-License-Identifier: BSD-3-Clause
#include "payloads.h"

#include "common.h"

#include <QtCore/qcborarray.h>
#include <QtCore/qcbormap.h>
#include <QtCore/qcborvalue.h>
#include <QtCore/qdatastream.h>
#include <QtCore/qfile.h>
#include <QtCore/qjsonarray.h>
#include <QtCore/qjsondocument.h>
#include <QtCore/qstringconverter.h>

#include <cstdio>

using namespace Qt::StringLiterals;

void addPayloadOptions(QCommandLineParser &parser)
{
    parser.addOption({u"text"_s, u"Send the text T (a QString)."_s, u"T"_s});
    parser.addOption({u"json"_s, u"Send the JSON J (a QJsonObject, QJsonArray or QJsonValue)."_s, u"J"_s});
    parser.addOption({u"file"_s, u"Send the bytes of file F, or of stdin for '-' (a QByteArray)."_s, u"F"_s});
}

// An object or an array as a QJsonObject or QJsonArray, anything else (a string, a number, true,
// false, null) as a QJsonValue: each travels as the type it is (doc/payloads.md).
static std::optional<QVariant> parseJson(const QString &text, QString *why)
{
    QJsonParseError error;
    const QJsonDocument document = QJsonDocument::fromJson(text.toUtf8(), &error);
    if (document.isObject())
        return QVariant(document.object());
    if (document.isArray())
        return QVariant(document.array());
    // QJsonDocument takes only an object or an array: a single value is read as one in an array.
    const QJsonDocument wrapped = QJsonDocument::fromJson(u"[%1]"_s.arg(text).toUtf8());
    if (wrapped.isArray() && wrapped.array().size() == 1)
        return QVariant(wrapped.array().first());
    *why = u"%1 at offset %2"_s.arg(error.errorString()).arg(error.offset);
    return std::nullopt;
}

std::optional<QVariant> payloadFromOptions(const QCommandLineParser &parser, const QString &verb)
{
    const int given = parser.isSet(u"text"_s) + parser.isSet(u"json"_s) + parser.isSet(u"file"_s);
    if (given != 1) {
        printError(verb, u"give exactly one of --text, --json, --file (see '%1 --help')"_s.arg(verb));
        return std::nullopt;
    }
    if (parser.isSet(u"text"_s))
        return QVariant(parser.value(u"text"_s));
    if (parser.isSet(u"json"_s)) {
        QString why;
        std::optional<QVariant> json = parseJson(parser.value(u"json"_s), &why);
        if (!json)
            printError(verb, u"--json: not JSON: %1"_s.arg(why));
        return json;
    }
    const QString name = parser.value(u"file"_s);
    QFile file(name);
    const bool opened = name == u"-"_s ? file.open(stdin, QIODevice::ReadOnly) : file.open(QIODevice::ReadOnly);
    QByteArray bytes;
    if (opened)
        bytes = file.readAll();
    if (!opened || file.error() != QFileDevice::NoError) {
        printError(verb, u"--file: cannot read '%1': %2"_s.arg(name, file.errorString()));
        return std::nullopt;
    }
    return QVariant(bytes);
}

// Bytes that are UTF-8 text: valid, and no control characters but tab, newline and return.
static std::optional<QString> utf8Text(const QByteArray &bytes)
{
    QStringDecoder decoder(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless);
    const QString text = decoder(bytes);
    if (decoder.hasError())
        return std::nullopt;
    for (const QChar ch : text) {
        if (ch.unicode() < 0x20 && ch != u'\t' && ch != u'\n' && ch != u'\r')
            return std::nullopt;
    }
    return text;
}

// One line: control characters as escapes (\n, \t, \r, \xNN).
static QString oneLine(const QString &text)
{
    QString line;
    line.reserve(text.size());
    for (const QChar ch : text) {
        if (ch == u'\n')
            line += u"\\n"_s;
        else if (ch == u'\t')
            line += u"\\t"_s;
        else if (ch == u'\r')
            line += u"\\r"_s;
        else if (ch.unicode() < 0x20 || ch.unicode() == 0x7f)
            line += u"\\x%1"_s.arg(ch.unicode(), 2, 16, QLatin1Char('0'));
        else
            line += ch;
    }
    return line;
}

static QString compactJson(const QJsonValue &value)
{
    if (value.isObject())
        return QString::fromUtf8(QJsonDocument(value.toObject()).toJson(QJsonDocument::Compact));
    if (value.isArray())
        return QString::fromUtf8(QJsonDocument(value.toArray()).toJson(QJsonDocument::Compact));
    const QByteArray inArray = QJsonDocument(QJsonArray{value}).toJson(QJsonDocument::Compact);
    return QString::fromUtf8(inArray.mid(1, inArray.size() - 2)); // "[42]" -> "42"
}

// The payloads that are JSON, or have a natural JSON form: empty for any other.
static std::optional<QJsonValue> jsonForm(const QVariant &payload)
{
    switch (payload.typeId()) {
    case QMetaType::QJsonValue:
        return payload.toJsonValue();
    case QMetaType::QJsonObject:
        return payload.toJsonObject();
    case QMetaType::QJsonArray:
        return payload.toJsonArray();
    case QMetaType::QJsonDocument: {
        const QJsonDocument document = payload.toJsonDocument();
        return document.isArray() ? QJsonValue(document.array()) : QJsonValue(document.object());
    }
    case QMetaType::QCborValue:
        return payload.value<QCborValue>().toJsonValue();
    case QMetaType::QCborMap:
        return payload.value<QCborMap>().toJsonObject();
    case QMetaType::QCborArray:
        return payload.value<QCborArray>().toJsonArray();
    case QMetaType::Bool:
    case QMetaType::Int:
    case QMetaType::UInt:
    case QMetaType::LongLong:
    case QMetaType::ULongLong:
    case QMetaType::Double:
    case QMetaType::Float:
    case QMetaType::Short:
    case QMetaType::UShort:
    case QMetaType::Long:
    case QMetaType::ULong:
    case QMetaType::QVariantMap:
    case QMetaType::QVariantHash:
    case QMetaType::QVariantList:
    case QMetaType::QStringList:
        return QJsonValue::fromVariant(payload);
    default:
        return std::nullopt;
    }
}

static QString typeNameOf(const IpmbMessage &message)
{
    const QByteArray name = message.payloadTypeName();
    return name.isEmpty() ? u"null"_s : QString::fromLatin1(name);
}

// Any other type: its toString() if it has one, else its type and size in QDataStream's form.
static QString otherText(const QVariant &payload, const QString &typeName)
{
    if (payload.canConvert<QString>()) {
        const QString text = payload.toString();
        if (!text.isEmpty())
            return oneLine(text);
    }
    QByteArray bytes;
    QDataStream stream(&bytes, QIODevice::WriteOnly);
    if (payload.isValid() && payload.metaType().save(stream, payload.constData()))
        return u"<%1, %2 bytes>"_s.arg(typeName).arg(bytes.size());
    return u"<%1>"_s.arg(typeName);
}

static QString unreadableText(const IpmbMessage &message)
{
    return u"<unreadable %1: %2>"_s.arg(typeNameOf(message), message.payloadErrorString());
}

// One rendering for both layouts: `pretty` keeps line breaks, indents JSON and dumps bytes that
// are not text in hex; otherwise everything fits on one line.
static QString renderedPayload(const IpmbMessage &message, bool pretty)
{
    if (message.payloadStatus() != IpmbMessage::PayloadOk)
        return unreadableText(message);
    const QVariant payload = message.payload();
    if (!payload.isValid())
        return u"null"_s;
    if (payload.typeId() == QMetaType::QString)
        return pretty ? payload.toString() : oneLine(payload.toString());
    if (payload.typeId() == QMetaType::QByteArray) {
        const QByteArray bytes = payload.toByteArray();
        if (const std::optional<QString> text = utf8Text(bytes))
            return pretty ? *text : oneLine(*text);
        return pretty ? hexDump(bytes) : u"base64:"_s + QString::fromLatin1(bytes.toBase64());
    }
    if (const std::optional<QJsonValue> json = jsonForm(payload)) {
        if (pretty && json->isObject())
            return QString::fromUtf8(QJsonDocument(json->toObject()).toJson(QJsonDocument::Indented));
        if (pretty && json->isArray())
            return QString::fromUtf8(QJsonDocument(json->toArray()).toJson(QJsonDocument::Indented));
        return compactJson(*json);
    }
    return otherText(payload, typeNameOf(message));
}

QString payloadText(const IpmbMessage &message)
{
    return renderedPayload(message, false);
}

QString hexDump(QByteArrayView bytes, qsizetype maxBytes)
{
    const qsizetype shown = qMin(bytes.size(), maxBytes);
    QString dump;
    dump.reserve(shown / 16 * 80 + 80);
    for (qsizetype line = 0; line < shown; line += 16) {
        QString hex, ascii;
        for (qsizetype i = line; i < line + 16; ++i) {
            if (i < shown) {
                const uchar byte = uchar(bytes.at(i));
                hex += u"%1 "_s.arg(byte, 2, 16, QLatin1Char('0'));
                ascii += byte >= 0x20 && byte < 0x7f ? QChar(QLatin1Char(char(byte))) : QChar(u'.');
            } else {
                hex += u"   "_s;
            }
            if (i - line == 7)
                hex += u' ';
        }
        dump += u"%1  %2 %3\n"_s.arg(line, 8, 16, QLatin1Char('0')).arg(hex, ascii);
    }
    if (shown < bytes.size())
        dump += u"... %1 more bytes\n"_s.arg(bytes.size() - shown);
    return dump;
}

QString payloadPrettyText(const IpmbMessage &message)
{
    return renderedPayload(message, true);
}

static QString modeName(const IpmbMessage &message)
{
    if (message.isRequest())
        return u"request"_s;
    return message.selector().mode() == IpmbSelector::Multicast ? u"multicast"_s : u"unicast"_s;
}

QString messageLine(const IpmbMessage &message, const QDateTime &received)
{
    return u"%1 from %2 [%3] pid %4 %5 '%6' %7: %8"_s.arg(
            received.toLocalTime().toString(u"hh:mm:ss.zzz"_s), QString::number(message.senderId()),
            message.senderLabel().toStringList().join(u','), QString::number(message.senderPid()),
            modeName(message), message.selector().labelOp().toString(), typeNameOf(message), payloadText(message));
}

QJsonObject messageJson(const IpmbMessage &message, const QDateTime &received)
{
    QJsonObject json {
        {u"time"_s, received.toUTC().toString(Qt::ISODateWithMs)},
        {u"sender"_s, QJsonObject {
                {u"id"_s, qint64(message.senderId())},
                {u"pid"_s, message.senderPid()},
                {u"uid"_s, message.senderUid()},
                {u"label"_s, QJsonArray::fromStringList(message.senderLabel().toStringList())},
        }},
        {u"mode"_s, message.selector().mode() == IpmbSelector::Multicast ? u"multicast"_s : u"unicast"_s},
        {u"to"_s, message.selector().labelOp().toString()},
        {u"request"_s, message.isRequest()},
        {u"type"_s, typeNameOf(message)},
    };
    const QVariant payload = message.payload();
    if (message.payloadStatus() != IpmbMessage::PayloadOk) {
        json.insert(u"payload"_s, QJsonValue::Null);
        json.insert(u"error"_s, message.payloadErrorString());
    } else if (payload.typeId() == QMetaType::QString) {
        json.insert(u"payload"_s, payload.toString());
    } else if (payload.typeId() == QMetaType::QByteArray) {
        const QByteArray bytes = payload.toByteArray();
        if (const std::optional<QString> text = utf8Text(bytes)) {
            json.insert(u"payload"_s, *text);
        } else {
            json.insert(u"payload"_s, QString::fromLatin1(bytes.toBase64()));
            json.insert(u"encoding"_s, u"base64"_s);
        }
    } else if (const std::optional<QJsonValue> value = jsonForm(payload)) {
        json.insert(u"payload"_s, *value);
    } else if (!payload.isValid()) {
        json.insert(u"payload"_s, QJsonValue::Null);
    } else {
        json.insert(u"payload"_s, otherText(payload, typeNameOf(message)));
        json.insert(u"encoding"_s, u"text"_s);
    }
    return json;
}
