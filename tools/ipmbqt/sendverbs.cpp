// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt send and ipmbqt request: the verbs that send one message (doc/tools.md).
#include "common.h"
#include "payloads.h"
#include "verbs.h"

#include <QtCore/qfuturewatcher.h>
#include <QtCore/qjsondocument.h>

using namespace Qt::StringLiterals;

// The options and checks that send and request share.
struct Outgoing
{
    IpmbLabelOp op;
    QString opText; // as the user typed it, for messages
    qint64 ttl = 0;
    QVariant payload;
};

static void addOutgoingOptions(QCommandLineParser &parser)
{
    parser.addOption({u"to"_s, u"Send to the endpoints whose label matches this label op (required)."_s,
                      u"LABEL-OP"_s});
    parser.addOption({u"ttl"_s, u"Let the bus keep the message up to MS milliseconds for a receiver (default 0)."_s,
                      u"MS"_s});
    addPayloadOptions(parser);
}

static std::optional<Outgoing> outgoingFromOptions(const QCommandLineParser &parser, const QString &verb)
{
    const std::optional<IpmbLabelOp> op = labelOpOption(parser, verb, u"to"_s);
    if (!op)
        return std::nullopt;
    const std::optional<qint64> ttl = numberOption(parser, verb, u"ttl"_s, 0);
    if (!ttl)
        return std::nullopt;
    const std::optional<QVariant> payload = payloadFromOptions(parser, verb);
    if (!payload)
        return std::nullopt;
    return Outgoing {*op, parser.value(u"to"_s), *ttl, *payload};
}

// The label op to send with: `op`, but never to this command's own endpoint (`ownName` is a label
// name only it has), which would otherwise take a unicast to "!worker" itself.
static IpmbLabelOp notToSelf(const IpmbLabelOp &op, const IpmbEndpoint &endpoint, const QString &ownName)
{
    return op.matches(endpoint.label()) ? op && !IpmbLabelOp(ownName) : op;
}

static void writeAll(IpmbEndpoint &endpoint)
{
    while (endpoint.bytesToWrite() > 0 && endpoint.waitForBytesWritten(endpoint.joinTimeout()))
        ;
}

int runSend(const QStringList &arguments)
{
    const QString verb = arguments.value(0);
    QCommandLineParser parser;
    addBusOptions(parser, u"Join with these label names (comma-separated; default: ipmbqt-send)."_s);
    addOutgoingOptions(parser);
    parser.addOption({u"multicast"_s, u"Send to every endpoint that matches, not to one of them."_s});
    const VerbHelp help {u"--bus ID --to LABEL-OP (--text T | --json J | --file F) [options]"_s,
                         u"Send one message to an endpoint whose label matches LABEL-OP, or to all of\n"
                         u"them with --multicast. Exits with status 1 if it reached nobody: without\n"
                         u"--ttl, if nothing matched when it was sent; with --ttl, if nothing matched\n"
                         u"within MS milliseconds (the command waits until one does)."_s};
    if (const int exit = parseVerbArguments(parser, arguments, help); exit >= 0)
        return exit;
    const std::optional<Outgoing> outgoing = outgoingFromOptions(parser, verb);
    if (!outgoing)
        return ExitUsage;

    IpmbEndpoint endpoint;
    ControllerRoundTrip roundTrip(endpoint);
    // With a ttl the command waits for a receiver that matches, which it sees in its peer list.
    endpoint.setWatchingPeers(outgoing->ttl > 0);
    if (!joinBus(parser, verb, endpoint, {u"ipmbqt-send"_s}, roundTrip.name()))
        return ExitFailure;
    const IpmbLabelOp op = notToSelf(outgoing->op, endpoint, roundTrip.name());
    const IpmbSelector selector(parser.isSet(u"multicast"_s) ? IpmbSelector::Multicast : IpmbSelector::Unicast, op,
                                std::chrono::milliseconds(outgoing->ttl));

    quint64 id = 0;
    std::optional<IpmbEndpoint::Error> notice;
    EventWait *waitingForReceiver = nullptr;
    QObject::connect(&endpoint, &IpmbEndpoint::undeliverable, [&](quint64 messageId, IpmbEndpoint::Error reason) {
        if (messageId != id)
            return;
        notice = reason;
        if (waitingForReceiver)
            waitingForReceiver->finish();
    });
    if (!endpoint.send(IpmbMessage(selector, outgoing->payload), &id)) {
        printError(verb, endpoint.errorString());
        return ExitFailure;
    }
    writeAll(endpoint);
    // The controller answers a message that matches nobody before it passes on the round trip.
    if (!roundTrip.run(endpoint.joinTimeout())) {
        printError(verb, roundTrip.errorString());
        return ExitFailure;
    }
    // Nothing matched, and the controller keeps it for its ttl: wait until an endpoint that
    // matches joins (and gets it), or the ttl runs out (and the notice comes). Not waiting would
    // lose the message where this process hosts the controller.
    if (!notice && outgoing->ttl > 0 && endpoint.peers(op).isEmpty()) {
        EventWait wait(int(qMin<qint64>(outgoing->ttl + endpoint.joinTimeout(), std::numeric_limits<int>::max())));
        waitingForReceiver = &wait;
        const QMetaObject::Connection joined =
                QObject::connect(&endpoint, &IpmbEndpoint::peerJoined, [&](const IpmbPeer &peer) {
                    if (op.matches(peer.label()))
                        wait.finish();
                });
        const bool answered = wait.exec() != EventWait::TimedOut;
        QObject::disconnect(joined);
        waitingForReceiver = nullptr;
        if (!answered) {
            printError(verb, u"no word from the bus about the message within %1 ms"_s.arg(outgoing->ttl + endpoint.joinTimeout()));
            return ExitFailure;
        }
        if (!notice && !roundTrip.run(endpoint.joinTimeout())) { // a late QueueFullError
            printError(verb, roundTrip.errorString());
            return ExitFailure;
        }
    }
    if (notice) {
        const QString within = outgoing->ttl > 0 ? u" within %1 ms"_s.arg(outgoing->ttl) : QString();
        printError(verb, *notice == IpmbEndpoint::NoRouteError
                           ? u"no endpoint matches '%1'%2"_s.arg(outgoing->opText, within)
                           : u"the bus dropped the message to '%1': every endpoint that matches is stuck, or the "
                             u"controller's ttl buffer is full"_s.arg(outgoing->opText));
        return ExitFailure;
    }
    return ExitOk;
}

int runRequest(const QStringList &arguments)
{
    const QString verb = arguments.value(0);
    QCommandLineParser parser;
    addBusOptions(parser, u"Join with these label names (comma-separated; default: ipmbqt-request)."_s);
    addOutgoingOptions(parser);
    parser.addOption({u"timeout"_s, u"Wait at most MS milliseconds for the reply (default 30000)."_s, u"MS"_s});
    parser.addOption({u"json-output"_s, u"Print the reply as one JSON object, as 'ipmbqt listen --json' does."_s});
    const VerbHelp help {u"--bus ID --to LABEL-OP (--text T | --json J | --file F) [options]"_s,
                         u"Send a request to one endpoint whose label matches LABEL-OP, and print the\n"
                         u"payload of its reply as 'ipmbqt listen' prints a payload. Exits with status\n"
                         u"1 if no reply came: no endpoint matched, the one that got it left before it\n"
                         u"replied, or the timeout ran out."_s};
    if (const int exit = parseVerbArguments(parser, arguments, help); exit >= 0)
        return exit;
    const std::optional<Outgoing> outgoing = outgoingFromOptions(parser, verb);
    const std::optional<qint64> timeout = numberOption(parser, verb, u"timeout"_s, 30000);
    if (!outgoing || !timeout)
        return ExitUsage;

    IpmbEndpoint endpoint;
    ControllerRoundTrip roundTrip(endpoint); // only for its label name: not to itself
    if (!joinBus(parser, verb, endpoint, {u"ipmbqt-request"_s}, roundTrip.name()))
        return ExitFailure;
    const IpmbSelector selector(IpmbSelector::Unicast, notToSelf(outgoing->op, endpoint, roundTrip.name()),
                                std::chrono::milliseconds(outgoing->ttl));
    QFutureWatcher<IpmbMessage> watcher;
    // The request fails by itself at its timeout; the margin only guards against a bus that
    // never answers at all.
    EventWait wait(int(qMin<qint64>(*timeout + endpoint.joinTimeout(), std::numeric_limits<int>::max())));
    QObject::connect(&watcher, &QFutureWatcherBase::finished, [&] { wait.finish(); });
    const QFuture<IpmbMessage> future = endpoint.request(selector, outgoing->payload, int(*timeout));
    watcher.setFuture(future);
    if (future.isFinished())
        wait.finish();
    if (wait.exec() == EventWait::TimedOut) {
        printError(verb, u"no reply within %1 ms"_s.arg(*timeout));
        return ExitFailure;
    }
    IpmbMessage reply;
    try {
        reply = future.result();
    } catch (const IpmbRequestError &error) {
        switch (error.error()) {
        case IpmbEndpoint::TimeoutError:
            printError(verb, u"no reply within %1 ms"_s.arg(*timeout));
            break;
        case IpmbEndpoint::NoRouteError:
            printError(verb, u"no endpoint matches '%1'"_s.arg(outgoing->opText));
            break;
        case IpmbEndpoint::PeerLeftError:
            printError(verb, u"the endpoint that got the request left before it replied"_s);
            break;
        default:
            printError(verb, error.errorString());
            break;
        }
        return ExitFailure;
    }
    if (parser.isSet(u"json-output"_s))
        printLine(QString::fromUtf8(QJsonDocument(messageJson(reply, QDateTime::currentDateTime()))
                                            .toJson(QJsonDocument::Compact)));
    else
        printLine(payloadText(reply));
    return ExitOk;
}
