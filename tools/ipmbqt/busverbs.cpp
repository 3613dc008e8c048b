// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt peers and ipmbqt listen: the verbs that look at a bus (doc/tools.md).
#include "common.h"
#include "payloads.h"
#include "verbs.h"

#include "ipmbtoolsupport_p.h"

#include <QtCore/qjsonarray.h>
#include <QtCore/qjsondocument.h>

using namespace Qt::StringLiterals;

static QString compact(const QJsonObject &object)
{
    return QString::fromUtf8(QJsonDocument(object).toJson(QJsonDocument::Compact));
}

int runPeers(const QStringList &arguments)
{
    const QString verb = arguments.value(0);
    QCommandLineParser parser;
    addBusOptions(parser, u"Join with these label names (comma-separated; default: ipmbqt-peers)."_s);
    parser.addOption({u"json"_s, u"Print one JSON array of objects instead of a table."_s});
    parser.addOption({u"no-header"_s, u"Print the table without its header line."_s});
    const VerbHelp help {u"--bus ID [options]"_s,
                         u"List the endpoints on a bus: id, pid, uid, whether its process hosts the\n"
                         u"controller, when it joined, and its label. This command's own endpoint is\n"
                         u"not listed."_s};
    if (const int exit = parseVerbArguments(parser, arguments, help); exit >= 0)
        return exit;

    IpmbEndpoint endpoint;
    ControllerRoundTrip roundTrip(endpoint);
    endpoint.setWatchingPeers(true); // the Hello asks for the list
    // A mistyped bus name is an error, not an empty bus that this command would start.
    IpmbToolSupport::setJoinsExistingBusOnly(&endpoint, true);
    if (!joinBus(parser, verb, endpoint, {u"ipmbqt-peers"_s}, roundTrip.name()))
        return ExitFailure;
    // The list ends before anything the controller sends after it: once the round trip is back,
    // peers() is the whole membership.
    if (!roundTrip.run(endpoint.joinTimeout())) {
        printError(verb, u"no peer list: %1"_s.arg(roundTrip.errorString()));
        return ExitFailure;
    }
    const QList<IpmbPeer> peers = endpoint.peers();

    if (parser.isSet(u"json"_s)) {
        QJsonArray list;
        for (const IpmbPeer &peer : peers) {
            list.append(QJsonObject {
                    {u"id"_s, qint64(peer.endpointId())},
                    {u"pid"_s, peer.pid()},
                    {u"uid"_s, peer.uid()},
                    {u"controller"_s, peer.isController()},
                    {u"joinedAt"_s, peer.joinedAt().toUTC().toString(Qt::ISODateWithMs)},
                    {u"label"_s, QJsonArray::fromStringList(peer.label().toStringList())},
            });
        }
        printLine(QString::fromUtf8(QJsonDocument(list).toJson(QJsonDocument::Compact)));
        return ExitOk;
    }

    QList<QStringList> rows;
    if (!parser.isSet(u"no-header"_s))
        rows.append({u"ID"_s, u"PID"_s, u"UID"_s, u"CONTROLLER"_s, u"JOINED"_s, u"LABEL"_s});
    for (const IpmbPeer &peer : peers) {
        rows.append({QString::number(peer.endpointId()), QString::number(peer.pid()), QString::number(peer.uid()),
                     peer.isController() ? u"yes"_s : u"no"_s,
                     peer.joinedAt().toLocalTime().toString(u"yyyy-MM-dd hh:mm:ss"_s),
                     peer.label().toStringList().join(u',')});
    }
    QList<qsizetype> widths(rows.value(0).size(), 0);
    for (const QStringList &row : std::as_const(rows)) {
        for (qsizetype column = 0; column < row.size(); ++column)
            widths[column] = qMax(widths[column], row.at(column).size());
    }
    for (const QStringList &row : std::as_const(rows)) {
        QString line;
        for (qsizetype column = 0; column < row.size() - 1; ++column)
            line += row.at(column).leftJustified(widths[column]) + u"  "_s;
        printLine(line + row.constLast());
    }
    return ExitOk;
}

int runListen(const QStringList &arguments)
{
    const QString verb = arguments.value(0);
    QCommandLineParser parser;
    addBusOptions(parser, u"Join with these label names (comma-separated; required): the messages whose label op they match are printed."_s);
    parser.addOption({u"json"_s, u"Print each message as one JSON object per line (NDJSON)."_s});
    parser.addOption({u"count"_s, u"Exit after N messages."_s, u"N"_s});
    parser.addOption({u"timeout"_s,
                      u"Exit after MS milliseconds: with status 1 if fewer than N messages (--count, or 1) arrived."_s,
                      u"MS"_s});
    parser.addOption({u"reply-text"_s, u"Answer each request with the text T."_s, u"T"_s});
    parser.addOption({u"echo"_s, u"Answer each request with its own payload."_s});
    const VerbHelp help {u"--bus ID --label L[,L2] [options]"_s,
                         u"Join a bus with a label and print each message that arrives, one line each:\n"
                         u"time, sender id, label and pid, selector, payload type and payload. Requests\n"
                         u"are printed as such, and answered only with --reply-text or --echo."_s};
    if (const int exit = parseVerbArguments(parser, arguments, help); exit >= 0)
        return exit;
    if (parser.value(u"label"_s).split(u',', Qt::SkipEmptyParts).isEmpty()) {
        printError(verb, u"--label L[,L2] is required (see '%1 --help')"_s.arg(verb));
        return ExitUsage;
    }
    if (parser.isSet(u"reply-text"_s) && parser.isSet(u"echo"_s)) {
        printError(verb, u"--reply-text and --echo exclude each other"_s);
        return ExitUsage;
    }
    const std::optional<qint64> count = numberOption(parser, verb, u"count"_s, 0);
    const std::optional<qint64> timeout = numberOption(parser, verb, u"timeout"_s, -1);
    if (!count || !timeout)
        return ExitUsage;
    const bool json = parser.isSet(u"json"_s);
    const bool echo = parser.isSet(u"echo"_s);
    const bool replying = echo || parser.isSet(u"reply-text"_s);
    const QString replyText = parser.value(u"reply-text"_s);

    IpmbEndpoint endpoint;
    EventWait wait {int(*timeout)};
    qint64 received = 0;
    // Connected before join(): nothing that arrives right after joining is missed.
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, [&](const IpmbMessage &message) {
        if (*count > 0 && received >= *count)
            return; // arrived while the process exits
        const QDateTime now = QDateTime::currentDateTime();
        printLine(json ? compact(messageJson(message, now)) : messageLine(message, now));
        if (message.isRequest() && replying
            && !endpoint.reply(message, echo ? message.payload() : QVariant(replyText)))
            printError(verb, u"could not reply: %1"_s.arg(endpoint.errorString()));
        if (++received == *count)
            wait.finish(ExitOk);
    });
    QObject::connect(&endpoint, &IpmbEndpoint::stateChanged, [&](IpmbEndpoint::State state) {
        if (state == IpmbEndpoint::UnjoinedState && endpoint.error() != IpmbEndpoint::NoError) {
            printError(verb, u"left the bus: %1"_s.arg(endpoint.errorString()));
            wait.finish(ExitFailure);
        }
    });
    if (!joinBus(parser, verb, endpoint, {}))
        return ExitFailure;
    int exit = wait.exec();
    if (exit == EventWait::TimedOut) {
        const qint64 wanted = qMax<qint64>(*count, 1);
        exit = received >= wanted ? ExitOk : ExitFailure;
        if (exit == ExitFailure)
            printError(verb, u"timed out after %1 ms with %2 of %3 messages"_s.arg(*timeout).arg(received).arg(wanted));
    }
    // Replies go out before the process does.
    while (endpoint.bytesToWrite() > 0 && endpoint.waitForBytesWritten(endpoint.joinTimeout()))
        ;
    return exit;
}
