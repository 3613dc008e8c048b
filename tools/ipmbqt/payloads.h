// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQT_TOOL_PAYLOADS_H
#define IPMBQT_TOOL_PAYLOADS_H

#include <IpmbQt/IpmbMessage>

#include <QtCore/qcommandlineparser.h>
#include <QtCore/qdatetime.h>
#include <QtCore/qjsonobject.h>

#include <optional>

// Payloads on the command line and on stdout (doc/tools.md, "Payloads" and "JSON output").

// The options of the verbs that send: --text T, --json J, --file F (exactly one).
void addPayloadOptions(QCommandLineParser &parser);
// The payload they give: a QString, a QJsonObject/QJsonArray/QJsonValue, or a QByteArray with a
// file's bytes (`-`: stdin). Empty, with the usage error printed, when none or several are given,
// the JSON does not parse, or the file cannot be read.
std::optional<QVariant> payloadFromOptions(const QCommandLineParser &parser, const QString &verb);

// A received payload as one line of text: a string as it is (control characters escaped), bytes
// as text if they are UTF-8 text and as "base64:..." if not, JSON-like values as compact JSON,
// other types by QVariant::toString() or as "<TypeName, N bytes>", an unreadable one as
// "<unreadable TypeName: why>".
QString payloadText(const IpmbMessage &message);

// A received payload for reading in a pane, on as many lines as it takes (the inspector's detail
// view): JSON-like values as indented JSON, a string as it is, bytes as their text if they are
// UTF-8 text and as a hex dump if not, other types as payloadText() shows them.
QString payloadPrettyText(const IpmbMessage &message);
// Bytes as a hex dump: 16 a line, offset, hex and printable ASCII, at most `maxBytes` of them.
QString hexDump(QByteArrayView bytes, qsizetype maxBytes = 4096);

// A received message as one line for a human: time, sender, selector, payload type, payload.
QString messageLine(const IpmbMessage &message, const QDateTime &received);
// ... and as one JSON object (one line of NDJSON once compact).
QJsonObject messageJson(const IpmbMessage &message, const QDateTime &received);

#endif // IPMBQT_TOOL_PAYLOADS_H
