// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt_bench_bus: one IpmbEndpoint per process, as an application would use it.
//   controller --bus B                          join first and only route (label "controller")
//   recv  --bus B --label L --delivery receive|signal --size S --warmup W [--controller 0|1]
//   send  --bus B --to L --mode unicast|multicast --size S --warmup W --duration MS [--controller 0|1]
//   pong  --bus B --delivery receive|signal|request [--controller 0|1]     label "pong", answers to "ping"
//   ping  --bus B --delivery receive|signal|request --rounds N --warmup W  label "ping", asks "pong"
//         (request: ping waits on request()'s future, pong reply()s from a receive() loop)
//   fleet --bus B --count N --label L          N endpoints in this process, labelled {L, "L-i"};
//         says "ready" when they exist, joins them all on "join" (then "joined t0=<ns> t1=<ns>":
//         the first join() call and the last joined()), and for every "fan:<r>" message prints
//         "got r=<r> t1=<ns>" once each of the N has it (messageReceived, in this thread); on
//         "send <r>" its first endpoint multicasts "fan:<r>" to --to (prints "sent r=<r> t0=<ns>")
//   monitor --bus B [--leave 1]                a monitor (doc/protocol.md, "Monitors") that counts
//         the copies it gets; with --leave it leaves again before it says "ready" (the bus was
//         monitored once, and is not now)
// --controller checks the topology: 1 = this endpoint must host the controller, 0 = must not.
// --flavour watch (send and recv): the endpoint watches peers; tracked (send): send(message, &id).
// --attach fd|region (send and recv): every message also carries a file descriptor (a dup() of
// /dev/null), or a region of --size bytes from an IpmbMemoryRegistry with a 16-byte payload; the
// receiver then reads one byte of every page of the region, which is what makes its bytes usable.
#include "benchqt.h"

#include <IpmbQt/IpmbEndpoint>
#include <IpmbQt/IpmbMemoryRegistry>

#include "ipmbtoolsupport_p.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qhash.h>
#include <QtCore/qtimer.h>

#include <chrono>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>

using namespace Bench;

static QString qs(const std::string &text)
{
    return QString::fromStdString(text);
}

static void joinBus(IpmbEndpoint &endpoint, const Args &args, const QString &label)
{
    endpoint.setIdentifier(qs(args.text("bus")));
    endpoint.setLabel({label});
    endpoint.setWatchingPeers(args.text("flavour", "") == "watch");
    endpoint.join();
    if (!endpoint.waitForJoined(10000))
        fail("join: %s", qPrintable(endpoint.errorString()));
    const int64_t expected = args.number("controller", "-1");
    if (expected >= 0 && int64_t(endpoint.isController()) != expected)
        fail("topology: isController() is %d, expected %lld", int(endpoint.isController()), (long long)expected);
    say("ready controller=%d", int(endpoint.isController()));
}

static void sendOrWait(IpmbEndpoint &endpoint, const IpmbMessage &message, bool tracked = false)
{
    quint64 id;
    while (!endpoint.send(message, tracked ? &id : nullptr)) {
        if (endpoint.error() != IpmbEndpoint::QueueFullError)
            fail("send: %s", qPrintable(endpoint.errorString()));
        endpoint.clearError();
        endpoint.waitForBytesWritten(1000);
    }
}

static void sendOrWait(IpmbEndpoint &endpoint, const IpmbSelector &selector, const QVariant &payload)
{
    sendOrWait(endpoint, IpmbMessage(selector, payload));
}

// Builds the messages of a sender: plain, with a descriptor, or with a pooled region.
class Attacher
{
public:
    Attacher(const Args &args, IpmbEndpoint &endpoint, const IpmbSelector &selector)
        : m_endpoint(endpoint), m_selector(selector), m_size(qsizetype(args.number("size"))),
          m_tracked(args.text("flavour", "") == "tracked")
    {
        const std::string attach = args.text("attach", "none");
        if (attach == "fd") {
            m_mode = Fd;
            rlimit limit; // as the controller does: descriptors in transit are open files
            if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
                limit.rlim_cur = limit.rlim_max;
                ::setrlimit(RLIMIT_NOFILE, &limit);
            }
            m_devNull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (m_devNull < 0)
                fail("open /dev/null: %s", std::strerror(errno));
        } else if (attach == "region") {
            m_mode = Region;
        } else if (attach != "none") {
            fail("bad --attach %s", attach.c_str());
        }
    }

    void send(Kind kind)
    {
        switch (m_mode) {
        case None:
            sendOrWait(m_endpoint, IpmbMessage(m_selector, payload(kind)), m_tracked);
            return;
        case Fd: {
            QString why;
            IpmbNativeHandle handle = IpmbNativeHandle::duplicate(m_devNull, &why);
            if (handle.isNull() && errno == EMFILE) { // our queued messages hold the descriptors
                m_endpoint.waitForBytesWritten(1000);
                handle = IpmbNativeHandle::duplicate(m_devNull, &why);
            }
            if (handle.isNull())
                fail("%s", qPrintable(why));
            IpmbMessage message(m_selector, payload(kind));
            message.addHandle(handle);
            sendOrWait(m_endpoint, message);
            return;
        }
        case Region: {
            // A producer keeps a bounded number of frames in flight: it waits for the receiver to
            // release the oldest before taking the next from the pool.
            if (m_inFlight.size() >= RegionsInFlight) {
                if (!m_inFlight.front().waitForReleased(10000))
                    fail("a region was not released within 10 s");
                m_inFlight.pop_front();
            }
            IpmbMemoryRegion region = m_registry.alloc(m_size, QStringLiteral("bench"));
            if (region.isNull())
                fail("alloc: %s", qPrintable(m_registry.errorString()));
            static_cast<char *>(region.data())[0] = kind;
            IpmbMessage message(m_selector, payload(kind));
            message.addRegion(region);
            sendOrWait(m_endpoint, message);
            m_inFlight.push_back(region);
            return;
        }
        }
    }

private:
    // Built once per kind, as an application would reuse its buffers.
    const QVariant &payload(Kind kind)
    {
        QVariant &payload = m_payloads[kind];
        if (!payload.isValid())
            payload = QVariant(makePayload(m_mode == Region ? 16 : m_size, kind));
        return payload;
    }

    static constexpr int RegionsInFlight = 8;
    enum Mode { None, Fd, Region } m_mode = None;
    IpmbEndpoint &m_endpoint;
    IpmbSelector m_selector;
    qsizetype m_size;
    bool m_tracked;
    QVariant m_payloads[128];
    int m_devNull = -1;
    IpmbMemoryRegistry m_registry;
    std::deque<IpmbMemoryRegion> m_inFlight;   // sent regions, oldest first
};

// True once the driver closed our stdin (checked without blocking).
static bool driverGone()
{
    pollfd entry {STDIN_FILENO, POLLIN, 0};
    if (::poll(&entry, 1, 0) <= 0)
        return false;
    char c;
    return ::read(STDIN_FILENO, &c, 1) <= 0;
}

// payload() shares the decoded QByteArray: no copy of the bytes here. Regions are read in place,
// one byte per page, and the first byte must be the message's kind.
static bool take(ReceiveCounter &counter, const IpmbMessage &message)
{
    const QByteArray bytes = message.payload().toByteArray();
    for (const IpmbMemoryRegion &region : message.regions()) {
        const auto *data = static_cast<const volatile char *>(region.constData());
        if (!data || region.size() < 1 || bytes.isEmpty() || data[0] != bytes[0])
            fail("bad region attached to a message");
        char sum = 0;
        for (qsizetype i = 0; i < region.size(); i += 4096)
            sum = char(sum + data[i]);
        Q_UNUSED(sum);
    }
    return counter.take(bytes.constData(), size_t(bytes.size()));
}

static int controller(QCoreApplication &app, const Args &args)
{
    IpmbEndpoint endpoint;
    joinBus(endpoint, args, QStringLiteral("controller"));
    if (!endpoint.isController())
        fail("another process hosts the controller");
    watchCommands(&app, [&](const QByteArray &line) {
        if (line.isEmpty())
            app.quit();
    });
    return app.exec();
}

static int monitor(QCoreApplication &app, const Args &args)
{
    IpmbEndpoint endpoint;
    IpmbToolSupport::setMonitor(&endpoint, true);
    quint64 copies = 0;
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, &endpoint, [&copies] { ++copies; });
    joinBus(endpoint, args, QStringLiteral("monitor"));
    if (args.number("leave", "0") == 1)
        endpoint.leave();
    watchCommands(&app, [&](const QByteArray &line) {
        if (line.isEmpty())
            app.quit();
    });
    const int code = app.exec();
    std::fprintf(stderr, "monitor: %llu copies, %llu dropped\n", (unsigned long long)copies,
                 (unsigned long long)endpoint.droppedMessageCount());
    return code;
}

static int receiver(QCoreApplication &app, const Args &args)
{
    IpmbEndpoint endpoint;
    joinBus(endpoint, args, qs(args.text("label", "rx")));
    ReceiveCounter counter(args.number("warmup"));
    if (args.text("delivery") == "receive") {
        for (;;) {
            const std::optional<IpmbMessage> message = endpoint.receive(200);
            if (message && take(counter, *message))
                return 0;
            if (!message && driverGone())
                return 0;
        }
    }
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, &app, [&](const IpmbMessage &message) {
        if (take(counter, message))
            app.quit();
    });
    watchCommands(&app, [&](const QByteArray &line) {
        if (line.isEmpty())
            app.quit();
    });
    return app.exec();
}

static int sender(QCoreApplication &, const Args &args)
{
    IpmbEndpoint endpoint;
    joinBus(endpoint, args, QStringLiteral("tx"));
    const IpmbLabelOp to(qs(args.text("to", "rx")));
    const IpmbSelector selector = args.text("mode", "unicast") == "multicast" ? IpmbSelector::multicast(to)
                                                                              : IpmbSelector::unicast(to);
    Attacher attacher(args, endpoint, selector);
    const int64_t duration = args.number("duration") * 1000000;
    expectCommand("warm");
    for (int64_t i = args.number("warmup"); i > 0; --i)
        attacher.send(Warm);
    expectCommand("go");
    int64_t sent = 0;
    const int batch = args.number("size") < 4096 ? 32 : 1;
    const int64_t t0 = nowNs();
    do {
        for (int i = 0; i < batch; ++i)
            attacher.send(Data);
        sent += batch;
    } while (nowNs() - t0 < duration);
    attacher.send(End);
    say("sent n=%lld t0=%lld", (long long)sent, (long long)t0);
    std::string line;
    while (readCommand(&line)) { }
    return 0;
}

static int pong(QCoreApplication &app, const Args &args)
{
    IpmbEndpoint endpoint;
    joinBus(endpoint, args, QStringLiteral("pong"));
    const IpmbSelector toPing = IpmbSelector::unicast(IpmbLabelOp("ping"));
    if (args.text("delivery") == "request") {
        for (;;) {
            const std::optional<IpmbMessage> message = endpoint.receive(200);
            if (message && !endpoint.reply(*message, message->payload()))
                fail("reply: %s", qPrintable(endpoint.errorString()));
            if (!message && driverGone())
                return 0;
        }
    }
    if (args.text("delivery") == "receive") {
        for (;;) {
            const std::optional<IpmbMessage> message = endpoint.receive(200);
            if (message)
                sendOrWait(endpoint, toPing, message->payload());
            else if (driverGone())
                return 0;
        }
    }
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, &app, [&](const IpmbMessage &message) {
        sendOrWait(endpoint, toPing, message.payload());
    });
    watchCommands(&app, [&](const QByteArray &line) {
        if (line.isEmpty())
            app.quit();
    });
    return app.exec();
}

static int ping(QCoreApplication &app, const Args &args)
{
    IpmbEndpoint endpoint;
    joinBus(endpoint, args, QStringLiteral("ping"));
    const IpmbSelector toPong = IpmbSelector::unicast(IpmbLabelOp("pong"));
    const int64_t rounds = args.number("rounds");
    const int64_t warmups = args.number("warmup");
    const QVariant message(QByteArray(16, 'p'));
    std::vector<int64_t> samples;
    samples.reserve(size_t(rounds));
    QElapsedTimer timer;
    if (args.text("delivery") == "request") {
        // The blocking way: result() waits on the future, fulfilled by the thread that reads.
        expectCommand("go");
        for (int64_t i = -warmups; i < rounds; ++i) {
            timer.start();
            QFuture<IpmbMessage> reply = endpoint.request(toPong, message, 10000);
            try {
                reply.waitForFinished();
            } catch (const IpmbRequestError &e) {
                fail("request: %s", qPrintable(e.errorString()));
            }
            if (i >= 0)
                samples.push_back(timer.nsecsElapsed());
        }
        reportLatency(samples);
        return 0;
    }
    if (args.text("delivery") == "receive") {
        expectCommand("go");
        for (int64_t i = -warmups; i < rounds; ++i) {
            timer.start();
            sendOrWait(endpoint, toPong, message);
            if (!endpoint.receive(10000))
                fail("no answer within 10 s");
            if (i >= 0)
                samples.push_back(timer.nsecsElapsed());
        }
        reportLatency(samples);
        return 0;
    }
    PingLoop loop(&app, args, [&] { sendOrWait(endpoint, toPong, message); });
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, &app, [&](const IpmbMessage &) { loop.arrived(); });
    return app.exec();
}

static int fleet(QCoreApplication &app, const Args &args)
{
    // Four descriptors per endpoint (its socket, three eventfds): raise the descriptor limit as an
    // application with many endpoints would (join() does too, but this says when it is not enough).
    rlimit limit;
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    const int count = int(args.number("count"));
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
        && limit.rlim_cur < rlim_t(4 * count + 64)) {
        fail("the descriptor limit %llu is too low for %d endpoints", (unsigned long long)limit.rlim_cur, count);
    }
    const QString label = qs(args.text("label"));
    std::vector<std::unique_ptr<IpmbEndpoint>> endpoints;
    std::vector<int64_t> lastRound(size_t(count), 0);
    QHash<int64_t, int> reached;  // round -> endpoints that have it
    int joined = 0;
    int64_t t0 = 0;
    for (int i = 0; i < count; ++i) {
        auto endpoint = std::make_unique<IpmbEndpoint>();
        endpoint->setIdentifier(qs(args.text("bus")));
        endpoint->setLabel({label, label + QLatin1Char('-') + QString::number(i)});
        endpoint->setJoinTimeout(60000);
        QObject::connect(endpoint.get(), &IpmbEndpoint::joined, &app, [&] {
            if (++joined == count)
                say("joined t0=%lld t1=%lld", (long long)t0, (long long)nowNs());
        });
        QObject::connect(endpoint.get(), &IpmbEndpoint::errorOccurred, &app, [&, i](IpmbEndpoint::Error error) {
            if (error != IpmbEndpoint::NoError)
                fail("endpoint %d: %s", i, qPrintable(endpoints[size_t(i)]->errorString()));
        });
        QObject::connect(endpoint.get(), &IpmbEndpoint::messageReceived, &app, [&, i](const IpmbMessage &message) {
            const QByteArray text = message.payload().toByteArray();
            if (!text.startsWith("fan:"))
                fail("unexpected message of %lld bytes", (long long)text.size());
            const int64_t round = text.mid(4).toLongLong();
            if (round <= lastRound[size_t(i)])
                fail("endpoint %d got round %lld after round %lld", i, (long long)round, (long long)lastRound[size_t(i)]);
            lastRound[size_t(i)] = round;
            if (++reached[round] == count) {
                say("got r=%lld t1=%lld", (long long)round, (long long)nowNs());
                reached.remove(round);
            }
        });
        endpoints.push_back(std::move(endpoint));
    }
    const IpmbSelector selector = IpmbSelector::multicast(IpmbLabelOp(qs(args.text("to", "rx"))));
    watchCommands(&app, [&](const QByteArray &line) {
        if (line.isEmpty()) {
            app.quit();
        } else if (line == "join") {
            t0 = nowNs();
            for (const auto &endpoint : endpoints)
                endpoint->join();
        } else if (line.startsWith("send ")) {
            const QByteArray payload = "fan:" + line.mid(5);
            const int64_t sent = nowNs();
            sendOrWait(*endpoints.front(), selector, payload);
            say("sent r=%s t0=%lld", line.mid(5).constData(), (long long)sent);
        }
    });
    say("ready");
    return app.exec();
}

int main(int argc, char **argv)
{
    return runHelper(argc, argv, {{"controller", controller}, {"recv", receiver}, {"send", sender},
                                  {"pong", pong}, {"ping", ping}, {"fleet", fleet}, {"monitor", monitor}});
}
