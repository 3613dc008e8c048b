// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt_bench_qlocalsocket: what a Qt application writes without a bus. QLocalServer/QLocalSocket
// (abstract namespace), frames of u32 length + payload, everything in the Qt event loop; the sender
// keeps at most Window bytes in the socket's write buffer and refills on bytesWritten().
//   recv --name N --size S --warmup W
//   send --name N --size S --warmup W --duration MS
//   pong --name N
//   ping --name N --rounds R --warmup W
// And the two ways an endpoint's thread can learn of a message (doc/concepts.md, "Threads"), on
// a plain AF_UNIX stream socket with 16 B messages, so that nothing else differs:
//   wake-pong --name N --reader notifier|thread
//   wake-ping --name N --reader notifier|thread --rounds R --warmup W
// notifier: a QSocketNotifier in the event loop's thread reads, as QLocalSocket does; thread: a
// thread of its own polls and reads, and hands each message to the event loop's thread with a
// queued call, as the bus's I/O thread does. Either way the event loop's thread writes the answer.
#include "benchqt.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qelapsedtimer.h>
#include <QtNetwork/qlocalserver.h>
#include <QtCore/qsocketnotifier.h>
#include <QtNetwork/qlocalsocket.h>

#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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
    const QByteArray message = frame(QByteArray(16, 'p'));
    PingLoop loop(&app, args, [&] { socket.write(message); });
    FrameReader reader;
    QObject::connect(&socket, &QLocalSocket::readyRead, &app, [&] {
        reader.read(&socket, [&](const QByteArray &) {
            loop.arrived();
            return true;
        });
    });
    say("ready");
    return app.exec();
}

static constexpr size_t WakeMessage = 16;

// One 16 B message from a blocking socket (the reader waited for it to be readable).
static void readMessage(int fd, char *message)
{
    size_t got = 0;
    while (got < WakeMessage) {
        const ssize_t n = ::read(fd, message + got, WakeMessage - got);
        if (n <= 0)
            std::_Exit(0);  // the other side has gone: the run is over
        got += size_t(n);
    }
}

static void writeMessage(int fd, const char *message)
{
    if (::write(fd, message, WakeMessage) != ssize_t(WakeMessage))
        fail("write: %s", std::strerror(errno));
}

// Calls onMessage in the event loop's thread for each message that arrives on fd, read there or
// in a thread of its own.
static void readMessages(QCoreApplication &app, int fd, const Args &args, std::function<void()> onMessage)
{
    const std::string reader = args.text("reader");
    if (reader == "notifier") {
        auto *notifier = new QSocketNotifier(qintptr(fd), QSocketNotifier::Read, &app);
        QObject::connect(notifier, &QSocketNotifier::activated, &app, [fd, onMessage] {
            char message[WakeMessage];
            readMessage(fd, message);
            onMessage();
        });
    } else if (reader == "thread") {
        std::thread([&app, fd, onMessage] {
            for (;;) {
                pollfd entry {fd, POLLIN, 0};
                if (::poll(&entry, 1, -1) < 0)
                    continue;
                char message[WakeMessage];
                readMessage(fd, message);
                QMetaObject::invokeMethod(&app, onMessage, Qt::QueuedConnection);
            }
        }).detach();
    } else {
        fail("--reader is notifier or thread");
    }
}

static int wakePong(QCoreApplication &app, const Args &args)
{
    const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address;
    const socklen_t length = abstractAddress(serverName(args).toStdString(), &address);
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr *>(&address), length) != 0 || ::listen(listener, 1) != 0)
        fail("listen: %s", std::strerror(errno));
    say("ready");
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
        fail("accept: %s", std::strerror(errno));
    const char answer[WakeMessage] = "pong";
    readMessages(app, fd, args, [fd, &answer] { writeMessage(fd, answer); });
    quitOnEndOfInput(app);
    return app.exec();
}

static int wakePing(QCoreApplication &app, const Args &args)
{
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address;
    const socklen_t length = abstractAddress(serverName(args).toStdString(), &address);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr *>(&address), length) != 0)
        fail("connect: %s", std::strerror(errno));
    const char message[WakeMessage] = "ping";
    PingLoop loop(&app, args, [&] { writeMessage(fd, message); });
    readMessages(app, fd, args, [&] { loop.arrived(); });
    say("ready");
    return app.exec();
}

int main(int argc, char **argv)
{
    return runHelper(argc, argv, {{"recv", receiver}, {"send", sender}, {"pong", pong}, {"ping", ping},
                                  {"wake-pong", wakePong}, {"wake-ping", wakePing}});
}
