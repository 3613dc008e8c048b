// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt monitor: a live tap of a bus's traffic (doc/tools.md; the protocol side is
// doc/protocol.md, "Monitors"). The endpoint joins as a monitor: it is never a receiver and in
// nobody's peer list, so watching a bus changes nothing on it.
#include "common.h"
#include "payloads.h"
#include "verbs.h"

#include "ipmbtoolsupport_p.h"

#include <QtCore/qhash.h>
#include <QtCore/qjsonarray.h>
#include <QtCore/qjsondocument.h>

using namespace Qt::StringLiterals;

// More than a copy's 4 KiB prefix can hold: JSON output shows all of it.
constexpr qsizetype MonitorPrefixChars = 4096;

namespace {

// What the monitor shows of a payload: all of it when the copy has all of it, else the start of a
// string's or byte array's text (at most `maxChars` of it), else its type and size.
QString payloadShown(const IpmbMessage &message, const IpmbObservation &o, qsizetype maxChars, bool *truncated)
{
    *truncated = false;
    if (o.payloadPrefix.size() == o.payloadSize && !o.payloadInRegion)
        return payloadText(message);
    *truncated = true;
    const QString size = u"%1 bytes"_s.arg(o.payloadSize);
    if (o.payloadInRegion)
        return u"<%1 in shared memory>"_s.arg(size);
    const QString start = IpmbToolSupport::payloadPrefixText(o.payloadPrefix);
    if (!start.isNull())
        return start.left(maxChars).replace(u'\n', u"\\n"_s) + QChar(0x2026);  // …
    return u"<%1, %2>"_s.arg(QString::fromLatin1(message.payloadTypeName()), size);
}

QString kindOf(const IpmbObservation &o, const IpmbMessage &message)
{
    if (o.reply)
        return u"reply"_s;
    const QString mode = message.selector().mode() == IpmbSelector::Multicast ? u"multicast"_s : u"unicast"_s;
    return o.request ? u"request"_s : mode;
}

} // namespace

int runMonitor(const QStringList &arguments)
{
    const QString verb = arguments.value(0);
    QCommandLineParser parser;
    addBusOptions(parser, u"Join with these label names (comma-separated; default: ipmbqt-monitor); a monitor is never a "
                          u"receiver, whatever its label."_s);
    parser.addOption({u"filter"_s, u"Show only messages from or to endpoints whose label matches OP."_s, u"OP"_s});
    parser.addOption({u"json"_s, u"Print one JSON object per message (NDJSON) instead of a line of text."_s});
    parser.addOption({u"count"_s, u"Exit (0) after N messages."_s, u"N"_s});
    parser.addOption({u"timeout"_s, u"Exit (0) after MS milliseconds."_s, u"MS"_s});
    const VerbHelp help {u"--bus ID [options]"_s,
                         u"Show the messages on a bus as they go: time, sender, receiver, selector,\n"
                         u"payload type and size, and the payload (the first 4 KiB of it). The bus's\n"
                         u"controller sends a copy of each message to monitors of its own user; a\n"
                         u"monitor changes nothing for anyone else, and one that falls behind loses\n"
                         u"copies (said on stderr), never the bus's messages. Runs until interrupted."_s};
    if (const int exit = parseVerbArguments(parser, arguments, help); exit >= 0)
        return exit;
    std::optional<IpmbLabelOp> filter;
    if (parser.isSet(u"filter"_s) && !(filter = labelOpOption(parser, verb, u"filter"_s)))
        return ExitUsage;
    const std::optional<qint64> count = numberOption(parser, verb, u"count"_s, 0);
    const std::optional<qint64> timeout = numberOption(parser, verb, u"timeout"_s, -1);
    if (!count || !timeout)
        return ExitUsage;
    const bool json = parser.isSet(u"json"_s);

    IpmbEndpoint endpoint;
    IpmbToolSupport::setMonitor(&endpoint, true);
    endpoint.setWatchingPeers(true);  // the receivers' labels
    QHash<quint32, IpmbLabel> labels;
    QObject::connect(&endpoint, &IpmbEndpoint::peerJoined, &endpoint,
                     [&labels](const IpmbPeer &peer) { labels.insert(peer.endpointId(), peer.label()); });
    QObject::connect(&endpoint, &IpmbEndpoint::peerLeft, &endpoint,
                     [&labels](const IpmbPeer &peer) { labels.remove(peer.endpointId()); });

    EventWait wait {int(*timeout)};
    qint64 shown = 0;
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, &endpoint, [&](const IpmbMessage &message) {
        const std::optional<IpmbObservation> o = IpmbToolSupport::observation(message);
        if (!o)
            return;  // not a copy: nothing is routed to a monitor, but a reply to nothing could come
        const bool oneReceiver = o->target != 0;
        const IpmbLabel targetLabel = labels.value(o->target);
        if (filter && !filter->matches(message.senderLabel()) && !(oneReceiver && filter->matches(targetLabel)))
            return;
        const QDateTime now = QDateTime::currentDateTime();
        bool truncated;
        const QString payload = payloadShown(message, *o, json ? MonitorPrefixChars : 200, &truncated);
        const QString path = o->path == IpmbObservation::OnChannel ? u"channel"_s : u"controller"_s;
        if (json) {
            QJsonObject line = messageJson(message, now);
            line.insert(u"kind"_s, kindOf(*o, message));
            line.insert(u"tracked"_s, o->tracked && !o->request);
            line.insert(u"path"_s, path);
            line.insert(u"target"_s, oneReceiver ? QJsonValue(QJsonObject {
                    {u"id"_s, qint64(o->target)},
                    {u"label"_s, QJsonArray::fromStringList(targetLabel.toStringList())}}) : QJsonValue());
            line.insert(u"deliveries"_s, o->deliveries == IpmbObservation::KeptForTtl ? QJsonValue(u"kept"_s)
                                                                                     : QJsonValue(qint64(o->deliveries)));
            line.insert(u"size"_s, o->payloadSize);
            line.insert(u"handles"_s, o->handleCount);
            line.insert(u"regions"_s, o->regionCount);
            if (truncated) {
                line.insert(u"payload"_s, payload);
                line.insert(u"truncated"_s, true);
            }
            printLine(QString::fromUtf8(QJsonDocument(line).toJson(QJsonDocument::Compact)));
        } else {
            const QString to = oneReceiver ? u"%1 [%2]"_s.arg(o->target).arg(targetLabel.toStringList().join(u','))
                    : o->deliveries == IpmbObservation::KeptForTtl ? u"(kept for its ttl)"_s
                    : o->deliveries == 0 ? u"(nobody)"_s
                    : u"(%1 endpoints)"_s.arg(o->deliveries);
            const QString selector = o->reply ? QString() : u" '%1'"_s.arg(message.selector().labelOp().toString());
            const QString type = message.payloadTypeName().isEmpty() && !o->payloadInRegion
                    ? u"null"_s : QString::fromLatin1(message.payloadTypeName());
            printLine(u"%1 %2 [%3] -> %4 %5%6 via %7: %8 %9 B%10: %11"_s.arg(
                    now.toString(u"hh:mm:ss.zzz"_s), QString::number(message.senderId()),
                    message.senderLabel().toStringList().join(u','), to,
                    kindOf(*o, message) + (o->tracked && !o->request ? u" tracked"_s : QString()), selector, path,
                    type.isEmpty() ? u"?"_s : type, QString::number(o->payloadSize),
                    o->handleCount ? u" +%1 handles"_s.arg(o->handleCount) : QString(), payload));
        }
        if (*count > 0 && ++shown >= *count)
            wait.finish(ExitOk);
    });
    QObject::connect(&endpoint, &IpmbEndpoint::messagesDropped, &endpoint, [&](quint64 dropped) {
        printError(verb, u"%1 messages not shown: this monitor fell behind"_s.arg(dropped));
    });
    if (!joinBus(parser, verb, endpoint, {u"ipmbqt-monitor"_s}))
        return ExitFailure;
    // As tcpdump says "listening on": on stderr, so that stdout holds only messages.
    printError(verb, u"watching bus '%1'"_s.arg(endpoint.identifier()));
    const SignalsEnd signalsEnd([&wait] { wait.finish(ExitOk); });
    const int code = wait.exec();
    return code == EventWait::TimedOut ? ExitOk : code;
}
