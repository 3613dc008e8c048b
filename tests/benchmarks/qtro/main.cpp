// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt_bench_qtro: Qt Remote Objects over local:, what a Qt user would otherwise pick. The sender
// hosts a source (bench.rep) and emits data(QByteArray) per message; the receiving replica acks
// with a slot call every window/4 messages, and the source keeps at most a window unacknowledged.
//   send --name N --size S --warmup W --duration MS     (source; start it first)
//   recv --name N --size S --warmup W                   (replica)
//   pong --name N                                       (source: ping() slot -> pong() signal)
//   ping --name N --rounds R --warmup W                 (replica)
#include "benchqt.h"
#include "rep_bench_merged.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qurl.h>
#include <QtRemoteObjects/qremoteobjectnode.h>

#include <functional>
#include <memory>

using namespace Bench;

class Pipe : public BenchPipeSimpleSource
{
public:
    std::function<void(qint64)> onAck;

    void ack(qint64 count) override
    {
        if (onAck)
            onAck(count);
    }
    void ping(QByteArray payload) override { Q_EMIT pong(payload); }
};

// Messages in flight: about 8 MiB, at least 2, at most 1024.
static qint64 windowFor(qint64 size)
{
    return std::clamp<qint64>((8 * 1024 * 1024) / std::max<qint64>(size, 1), 2, 1024);
}

static QUrl url(const Args &args)
{
    return QUrl(QStringLiteral("local:") + QString::fromStdString(args.text("name")));
}

static void host(QRemoteObjectHost &host, Pipe &pipe, const Args &args)
{
    if (!host.setHostUrl(url(args)) || !host.enableRemoting(&pipe))
        fail("cannot host the source: error %d", int(host.lastError()));
}

static std::unique_ptr<BenchPipeReplica> acquire(QRemoteObjectNode &node, const Args &args)
{
    if (!node.connectToNode(url(args)))
        fail("cannot connect to the source: error %d", int(node.lastError()));
    std::unique_ptr<BenchPipeReplica> replica(node.acquire<BenchPipeReplica>());
    if (!replica->waitForSource(5000))
        fail("the source did not appear within 5 s");
    return replica;
}

static void quitOnEndOfInput(QCoreApplication &app)
{
    watchCommands(&app, [&app](const QByteArray &line) {
        if (line.isEmpty())
            app.quit();
    });
}

static int sender(QCoreApplication &app, const Args &args)
{
    Pipe pipe;
    QRemoteObjectHost node;
    host(node, pipe, args);
    const qint64 size = args.number("size");
    const qint64 window = windowFor(size);
    const int64_t duration = args.number("duration") * 1000000;
    const QByteArray warm = makePayload(size, Warm);
    const QByteArray data = makePayload(size, Data);
    SendSchedule schedule(args.number("warmup"), duration);
    qint64 emitted = 0;
    qint64 acked = 0;
    auto pump = [&] {
        while (emitted - acked < window) {
            switch (schedule.next()) {
            case Warm:
                Q_EMIT pipe.data(warm);
                break;
            case Data:
                Q_EMIT pipe.data(data);
                break;
            case End:
                Q_EMIT pipe.data(makePayload(size, End));
                return;
            default:
                return;
            }
            ++emitted;
        }
    };
    pipe.onAck = [&](qint64 count) {
        acked = count;
        pump();
    };
    schedule.watchCommands(&app, pump);
    say("ready");
    return app.exec();
}

static int receiver(QCoreApplication &app, const Args &args)
{
    QRemoteObjectNode node;
    const std::unique_ptr<BenchPipeReplica> replica = acquire(node, args);
    const qint64 ackEvery = qMax<qint64>(1, windowFor(args.number("size")) / 4);
    qint64 received = 0;
    say("ready");
    ReceiveCounter counter(args.number("warmup"));
    QObject::connect(replica.get(), &BenchPipeReplica::data, &app, [&](const QByteArray &payload) {
        if (counter.take(payload.constData(), size_t(payload.size()))) {
            app.quit();
            return;
        }
        if (++received % ackEvery == 0)
            replica->ack(received);
    });
    quitOnEndOfInput(app);
    return app.exec();
}

static int pong(QCoreApplication &app, const Args &args)
{
    Pipe pipe;
    QRemoteObjectHost node;
    host(node, pipe, args);
    quitOnEndOfInput(app);
    say("ready");
    return app.exec();
}

static int ping(QCoreApplication &app, const Args &args)
{
    QRemoteObjectNode node;
    const std::unique_ptr<BenchPipeReplica> replica = acquire(node, args);
    const QByteArray message(16, 'p');
    PingLoop loop(&app, args, [&] { replica->ping(message); });
    QObject::connect(replica.get(), &BenchPipeReplica::pong, &app, [&](const QByteArray &) { loop.arrived(); });
    say("ready");
    return app.exec();
}

int main(int argc, char **argv)
{
    return runHelper(argc, argv, {{"send", sender}, {"recv", receiver}, {"pong", pong}, {"ping", ping}});
}
