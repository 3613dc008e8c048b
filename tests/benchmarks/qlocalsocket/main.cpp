// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt_bench_qlocalsocket: what a Qt application writes without a bus. QLocalServer/QLocalSocket
// (abstract namespace), frames of u32 length + payload, everything in the Qt event loop; the sender
// keeps at most Window bytes in the socket's write buffer and refills on bytesWritten().
//   recv --name N --size S --warmup W
//   send --name N --size S --warmup W --duration MS
//   pong --name N
//   ping --name N --rounds R --warmup W
#include "benchqt.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qelapsedtimer.h>
#include <QtNetwork/qlocalserver.h>
#include <QtNetwork/qlocalsocket.h>

using namespace Bench;

static constexpr qint64 Window = 4 * 1024 * 1024;

static QByteArray frame(const QByteArray &payload)
{
    const quint32 length = quint32(payload.size());
    QByteArray bytes(reinterpret_cast<const char *>(&length), sizeof(length));
    return bytes + payload;
}

// Reads whole frames as they become available.
class FrameReader
{
public:
    template <typename Handler>
    void read(QLocalSocket *socket, Handler handler)
    {
        for (;;) {
            if (m_need < 0) {
                if (socket->bytesAvailable() < qint64(sizeof(quint32)))
                    return;
                quint32 length;
                socket->read(reinterpret_cast<char *>(&length), sizeof(length));
                m_need = length;
            }
            if (socket->bytesAvailable() < m_need)
                return;
            const QByteArray payload = socket->read(m_need);
            m_need = -1;
            if (!handler(payload))
                return;
        }
    }

private:
    qint64 m_need = -1;
};

static QString serverName(const Args &args)
{
    return QString::fromStdString(args.text("name"));
}

// Calls onConnection for the first client.
template <typename OnConnection>
static void listen(QLocalServer &server, const Args &args, OnConnection onConnection)
{
    server.setSocketOptions(QLocalServer::AbstractNamespaceOption);
    if (!server.listen(serverName(args)))
        fail("listen: %s", qPrintable(server.errorString()));
    QObject::connect(&server, &QLocalServer::newConnection, &server, [&server, onConnection] {
        if (QLocalSocket *socket = server.nextPendingConnection())
            onConnection(socket);
    });
    say("ready");
}

static void connectTo(QLocalSocket &socket, const Args &args)
{
    socket.setSocketOptions(QLocalSocket::AbstractNamespaceOption);
    socket.connectToServer(serverName(args));
    if (!socket.waitForConnected(5000))
        fail("connect: %s", qPrintable(socket.errorString()));
}

static void quitOnEndOfInput(QCoreApplication &app)
{
    watchCommands(&app, [&app](const QByteArray &line) {
        if (line.isEmpty())
            app.quit();
    });
}

static int receiver(QCoreApplication &app, const Args &args)
{
    QLocalServer server;
    ReceiveCounter *counter = nullptr;
    FrameReader reader;
    listen(server, args, [&](QLocalSocket *socket) {
        counter = new ReceiveCounter(args.number("warmup"));
        QObject::connect(socket, &QLocalSocket::readyRead, &app, [&, socket] {
            reader.read(socket, [&](const QByteArray &payload) {
                if (!counter->take(payload.constData(), size_t(payload.size())))
                    return true;
                app.quit();
                return false;
            });
        });
    });
    quitOnEndOfInput(app);
    const int result = app.exec();
    delete counter;
    return result;
}

static int sender(QCoreApplication &app, const Args &args)
{
    QLocalSocket socket;
    connectTo(socket, args);
    const qsizetype size = qsizetype(args.number("size"));
    const int64_t duration = args.number("duration") * 1000000;
    const QByteArray warm = frame(makePayload(size, Warm));
    const QByteArray data = frame(makePayload(size, Data));
    SendSchedule schedule(args.number("warmup"), duration);
    auto pump = [&] {
        while (socket.bytesToWrite() < Window) {
            switch (schedule.next()) {
            case Warm:
                socket.write(warm);
                break;
            case Data:
                socket.write(data);
                break;
            case End:
                socket.write(frame(makePayload(size, End)));
                return;
            default:
                return;
            }
        }
    };
    QObject::connect(&socket, &QLocalSocket::bytesWritten, &app, pump);
    QObject::connect(&socket, &QLocalSocket::disconnected, &app, [&] {
        if (!schedule.isDone())
            fail("the receiver went away");
    });
    schedule.watchCommands(&app, pump);
    say("ready");
    return app.exec();
}

static int pong(QCoreApplication &app, const Args &args)
{
    QLocalServer server;
    FrameReader reader;
    listen(server, args, [&](QLocalSocket *socket) {
        QObject::connect(socket, &QLocalSocket::readyRead, &app, [&, socket] {
            reader.read(socket, [&](const QByteArray &payload) {
                socket->write(frame(payload));
                return true;
            });
        });
    });
    quitOnEndOfInput(app);
    return app.exec();
}

static int ping(QCoreApplication &app, const Args &args)
{
    QLocalSocket socket;
    connectTo(socket, args);
    const int64_t rounds = args.number("rounds");
    int64_t i = -args.number("warmup");
    const QByteArray message = frame(QByteArray(16, 'p'));
    std::vector<int64_t> samples;
    samples.reserve(size_t(rounds));
    QElapsedTimer timer;
    FrameReader reader;
    QObject::connect(&socket, &QLocalSocket::readyRead, &app, [&] {
        reader.read(&socket, [&](const QByteArray &) {
            if (i++ >= 0)
                samples.push_back(timer.nsecsElapsed());
            if (i == rounds) {
                reportLatency(samples);
                app.quit();
                return false;
            }
            timer.start();
            socket.write(message);
            return true;
        });
    });
    watchCommands(&app, [&](const QByteArray &line) {
        if (line.isEmpty()) {
            app.quit();
        } else if (line == "go") {
            timer.start();
            socket.write(message);
        }
    });
    say("ready");
    return app.exec();
}

int main(int argc, char **argv)
{
    return runHelper(argc, argv, {{"recv", receiver}, {"send", sender}, {"pong", pong}, {"ping", ping}});
}
