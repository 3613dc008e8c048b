// SPDX-License-Identifier: BSD-3-Clause
// The bridge benchmark (doc/scale.md, "What it costs"): a mosquitto on a loopback port, two buses
// with a bridge process each, and the same traffic through two plain libmosquitto clients as the
// baseline, in one run:
//   throughput  N messages of 16 B and 4 KiB, bus A -> bridge A -> broker -> bridge B -> bus B,
//               at most `window` not yet received (the bridges' backlog is bounded);
//               baseline: client P -> broker -> client Q, the same window, the same QoS.
//   round trip  one message A -> B and its echo B -> A (each way through both bridges and the
//               broker); baseline: P -> broker -> Q, Q publishes from its callback -> broker -> P.
// Prints a table and writes JSON (--output, default bridge-results.json).
//
//   ipmbqt_bench_bridge [--quick] [--qos 0|1|2] [--output FILE]

#include <IpmbQt/IpmbEndpoint>

#include <QtCore/qcommandlineparser.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qdatetime.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qfile.h>
#include <QtCore/qjsonarray.h>
#include <QtCore/qjsondocument.h>
#include <QtCore/qjsonobject.h>
#include <QtCore/qprocess.h>
#include <QtCore/qtemporarydir.h>
#include <QtCore/quuid.h>
#include <QtNetwork/qtcpserver.h>
#include <QtNetwork/qtcpsocket.h>
#include <QtTest/qtest.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

using namespace Qt::StringLiterals;

namespace {

qint64 nowNs()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
}

struct Latency
{
    double p50Us = 0;
    double p99Us = 0;
};

Latency percentiles(std::vector<qint64> samples)
{
    std::sort(samples.begin(), samples.end());
    if (samples.empty())
        return {};
    return {samples[samples.size() / 2] / 1000.0, samples[std::min(samples.size() - 1, samples.size() * 99 / 100)] / 1000.0};
}

// The broker and the bridges, ended by fail() too: std::exit() runs no QProcess destructor.
std::vector<QProcess *> children;

void fail(const char *what)
{
    std::fprintf(stderr, "ipmbqt_bench_bridge: %s\n", what);
    for (QProcess *child : children) {
        child->kill();
        child->waitForFinished(5000);
    }
    std::exit(1);
}

// A libmosquitto client with its own network thread; received messages counted or echoed.
class PlainClient
{
public:
    explicit PlainClient(int qos) : m_qos(qos)
    {
        m_mosq = mosquitto_new(nullptr, true, this);
        mosquitto_int_option(m_mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
        mosquitto_int_option(m_mosq, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_message_v5_callback_set(m_mosq, [](mosquitto *, void *self, const mosquitto_message *m,
                                                     const mosquitto_property *) {
            static_cast<PlainClient *>(self)->received(m);
        });
        mosquitto_subscribe_v5_callback_set(m_mosq, [](mosquitto *, void *self, int, int, const int *,
                                                       const mosquitto_property *) {
            auto *c = static_cast<PlainClient *>(self);
            std::lock_guard<std::mutex> locker(c->m_mutex);
            c->m_subscribed = true;
            c->m_condition.notify_all();
        });
    }
    ~PlainClient()
    {
        mosquitto_disconnect(m_mosq);
        mosquitto_loop_stop(m_mosq, false);
        mosquitto_destroy(m_mosq);
    }
    void connect(int port, const QByteArray &subscription)
    {
        if (mosquitto_connect(m_mosq, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS)
            fail("a plain client cannot connect");
        mosquitto_loop_start(m_mosq);
        if (!subscription.isEmpty()) {
            mosquitto_subscribe_v5(m_mosq, nullptr, subscription.constData(), m_qos, MQTT_SUB_OPT_NO_LOCAL, nullptr);
            std::unique_lock<std::mutex> locker(m_mutex);
            if (!m_condition.wait_for(locker, std::chrono::seconds(10), [this] { return m_subscribed; }))
                fail("no SUBACK");
        }
    }
    void publish(const QByteArray &topic, const QByteArray &payload)
    {
        while (mosquitto_publish_v5(m_mosq, nullptr, topic.constData(), int(payload.size()), payload.constData(),
                                    m_qos, false, nullptr)
               != MOSQ_ERR_SUCCESS) { }
    }
    // Echo: what arrives is published again on this topic, from the network thread.
    void setEcho(const QByteArray &topic) { m_echo = topic; }
    quint64 received() const { return m_received.load(); }
    bool waitForReceived(quint64 n, int msecs)
    {
        std::unique_lock<std::mutex> locker(m_mutex);
        return m_condition.wait_for(locker, std::chrono::milliseconds(msecs), [&] { return m_received >= n; });
    }

private:
    void received(const mosquitto_message *m)
    {
        if (!m_echo.isEmpty())
            mosquitto_publish_v5(m_mosq, nullptr, m_echo.constData(), m->payloadlen, m->payload, m_qos, false, nullptr);
        std::lock_guard<std::mutex> locker(m_mutex);
        ++m_received;
        m_condition.notify_all();
    }

    mosquitto *m_mosq = nullptr;
    int m_qos;
    QByteArray m_echo;
    std::atomic<quint64> m_received {0};
    std::mutex m_mutex;
    std::condition_variable m_condition;
    bool m_subscribed = false;
};

struct Row
{
    QString path;
    qint64 size = 0;
    double messagesPerSecond = 0;
    double mibPerSecond = 0;
};

double rate(quint64 n, qint64 ns) { return ns > 0 ? double(n) * 1e9 / double(ns) : 0; }

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCommandLineParser parser;
    parser.addOptions({{u"quick"_s, u"Fewer messages and round trips."_s},
                       {u"qos"_s, u"MQTT QoS (default 1)."_s, u"N"_s, u"1"_s},
                       {u"output"_s, u"JSON file."_s, u"FILE"_s, u"bridge-results.json"_s}});
    parser.addHelpOption();
    parser.process(app);
    const bool quick = parser.isSet(u"quick"_s);
    const int qos = parser.value(u"qos"_s).toInt();
    const quint64 messages = quick ? 5000 : 20000;
    const int roundTrips = quick ? 500 : 2000;
    const quint64 window = 500;

    // The broker.
    QTemporaryDir dir;
    quint16 port = 0;
    {
        QTcpServer probe;
        probe.listen(QHostAddress::LocalHost, 0);
        port = probe.serverPort();
    }
    QFile config(dir.filePath(u"mosquitto.conf"_s));
    config.open(QIODevice::WriteOnly);
    config.write("listener " + QByteArray::number(port) + " 127.0.0.1\nallow_anonymous true\npersistence false\n"
                 "max_queued_messages 100000\nset_tcp_nodelay true\n");
    config.close();
    QProcess broker;
    broker.start(u"/usr/sbin/mosquitto"_s, {u"-c"_s, config.fileName()});
    children.push_back(&broker);
    if (!QTest::qWaitFor([&] {
            QTcpSocket socket;
            socket.connectToHost(QHostAddress::LocalHost, port);
            return socket.waitForConnected(200);
        }, 10000))
        fail("mosquitto did not start");
    const QString mqtt = u"127.0.0.1:%1"_s.arg(port);

    // Two buses: this process has an endpoint on each; a bridge process on each.
    const QString run = QUuid::createUuid().toString(QUuid::WithoutBraces);
    const QString busA = u"ipmbqt.bench.a."_s + run, busB = u"ipmbqt.bench.b."_s + run;
    const QString topicA = u"bench/"_s + run + u"/a"_s, topicB = u"bench/"_s + run + u"/b"_s;
    IpmbEndpoint a, b;
    a.setIdentifier(busA);
    a.setLabel(IpmbLabel{u"back"_s}); // what bus B sends to "back" arrives here
    b.setIdentifier(busB);
    b.setLabel(IpmbLabel{u"remote"_s}); // imported messages keep their label op
    a.join();
    b.join();
    if (!a.waitForJoined(10000) || !b.waitForJoined(10000))
        fail("cannot join the buses");
    QProcess bridgeA, bridgeB;
    children.push_back(&bridgeA);
    children.push_back(&bridgeB);
    for (auto [process, bus, exported, topic, import] :
         {std::tuple{&bridgeA, busA, u"remote"_s, topicA, topicB}, std::tuple{&bridgeB, busB, u"back"_s, topicB, topicA}}) {
        process->setProcessChannelMode(QProcess::ForwardedErrorChannel);
        process->start(QStringLiteral(IPMBQT_TOOL),
                       {u"bridge"_s, u"--bus"_s, bus, u"--mqtt"_s, mqtt, u"--export"_s, exported, u"--topic"_s,
                        topic, u"--import"_s, import, u"--qos"_s, QString::number(qos)});
        if (!QTest::qWaitFor([&] { return process->canReadLine() && process->readLine().startsWith("bridge ready"); },
                             15000))
            fail("a bridge did not start");
    }

    // Bus B's endpoint counts, or echoes to "back" (round trips).
    quint64 sunk = 0;
    bool echo = false;
    QObject::connect(&b, &IpmbEndpoint::messageReceived, [&](const IpmbMessage &m) {
        ++sunk;
        if (echo)
            b.send(IpmbSelector::unicast(IpmbLabelOp(u"back"_s)), m.payload());
    });
    quint64 echoed = 0;
    QObject::connect(&a, &IpmbEndpoint::messageReceived, [&](const IpmbMessage &) { ++echoed; });

    std::vector<Row> rows;
    QJsonArray latencies;
    std::printf("ipmbqt bridge benchmark, %s, QoS %d, %llu messages per size, window %llu, %d round trips\n",
                qPrintable(QDateTime::currentDateTimeUtc().toString(Qt::ISODate)), qos,
                static_cast<unsigned long long>(messages), static_cast<unsigned long long>(window), roundTrips);

    const IpmbSelector toRemote = IpmbSelector::unicast(IpmbLabelOp(u"remote"_s));
    for (const qint64 size : {qint64(16), qint64(4096)}) {
        const QByteArray payload(size, 'x');
        // Warm-up, then the measured run, through the bridges.
        for (const quint64 n : {quint64(200), messages}) {
            sunk = 0;
            const qint64 t0 = nowNs();
            quint64 sent = 0;
            QElapsedTimer stall;
            stall.start();
            while (sunk < n) {
                while (sent < n && sent - sunk < window) {
                    if (!a.send(toRemote, payload))
                        break;
                    ++sent;
                }
                QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 50);
                if (stall.hasExpired(60000))
                    fail("the bridged run stalled (messages lost?)");
            }
            if (n == messages) {
                const qint64 ns = nowNs() - t0;
                rows.push_back({u"bus -> bridge -> mosquitto -> bridge -> bus"_s, size, rate(n, ns),
                                rate(n, ns) * double(size) / (1024.0 * 1024.0)});
            }
        }
        // The baseline: plain clients, the same window.
        PlainClient publisher(qos), subscriber(qos);
        const QByteArray plainTopic = (u"plain/"_s + run).toUtf8();
        subscriber.connect(port, plainTopic);
        publisher.connect(port, QByteArray());
        const qint64 t0 = nowNs();
        for (quint64 sent = 0; sent < messages;) {
            if (sent - subscriber.received() < window) {
                publisher.publish(plainTopic, payload);
                ++sent;
            } else {
                subscriber.waitForReceived(sent - window + 1, 10000);
            }
        }
        if (!subscriber.waitForReceived(messages, 60000))
            fail("the plain run lost messages");
        const qint64 ns = nowNs() - t0;
        rows.push_back({u"libmosquitto -> mosquitto -> libmosquitto"_s, size, rate(messages, ns),
                        rate(messages, ns) * double(size) / (1024.0 * 1024.0)});
    }

    // Round trips, 16 B.
    const QByteArray ping(16, 'p');
    std::vector<qint64> bridged, plain;
    echo = true;
    for (int i = 0; i < roundTrips + 50; ++i) {
        const quint64 before = echoed;
        const qint64 t0 = nowNs();
        a.send(toRemote, ping);
        QElapsedTimer stall;
        stall.start();
        while (echoed == before) {
            QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 50);
            if (stall.hasExpired(10000))
                fail("a round trip was lost");
        }
        if (i >= 50)
            bridged.push_back(nowNs() - t0);
    }
    {
        PlainClient pinger(qos), echoer(qos);
        const QByteArray there = (u"ping/"_s + run).toUtf8(), back = (u"pong/"_s + run).toUtf8();
        echoer.setEcho(back);
        echoer.connect(port, there);
        pinger.connect(port, back);
        for (int i = 0; i < roundTrips + 50; ++i) {
            const quint64 before = pinger.received();
            const qint64 t0 = nowNs();
            pinger.publish(there, ping);
            if (!pinger.waitForReceived(before + 1, 10000))
                fail("a plain round trip was lost");
            if (i >= 50)
                plain.push_back(nowNs() - t0);
        }
    }
    const Latency bridgedLatency = percentiles(bridged), plainLatency = percentiles(plain);

    std::printf("\n%-46s %8s %12s %10s\n", "throughput", "size", "msgs/s", "MiB/s");
    QJsonArray throughput;
    for (const Row &row : rows) {
        std::printf("%-46s %8lld %12.0f %10.2f\n", qPrintable(row.path), static_cast<long long>(row.size),
                    row.messagesPerSecond, row.mibPerSecond);
        throughput.append(QJsonObject{{u"path"_s, row.path}, {u"size"_s, row.size},
                                      {u"messagesPerSecond"_s, row.messagesPerSecond},
                                      {u"mibPerSecond"_s, row.mibPerSecond}});
    }
    std::printf("\n%-46s %10s %10s\n", "round trip, 16 B", "p50 us", "p99 us");
    std::printf("%-46s %10.0f %10.0f\n", "bus -> 2 bridges + broker, and back", bridgedLatency.p50Us, bridgedLatency.p99Us);
    std::printf("%-46s %10.0f %10.0f\n", "libmosquitto -> broker -> libmosquitto, and back", plainLatency.p50Us,
                plainLatency.p99Us);
    latencies.append(QJsonObject{{u"path"_s, u"bridged"_s}, {u"p50Us"_s, bridgedLatency.p50Us},
                                 {u"p99Us"_s, bridgedLatency.p99Us}});
    latencies.append(QJsonObject{{u"path"_s, u"plain"_s}, {u"p50Us"_s, plainLatency.p50Us},
                                 {u"p99Us"_s, plainLatency.p99Us}});

    QFile output(parser.value(u"output"_s));
    if (output.open(QIODevice::WriteOnly)) {
        output.write(QJsonDocument(QJsonObject{{u"date"_s, QDateTime::currentDateTimeUtc().toString(Qt::ISODate)},
                                               {u"qos"_s, qos},
                                               {u"messages"_s, qint64(messages)},
                                               {u"window"_s, qint64(window)},
                                               {u"roundTrips"_s, roundTrips},
                                               {u"throughput"_s, throughput},
                                               {u"roundTrip"_s, latencies}})
                             .toJson());
        std::printf("\nwritten to %s\n", qPrintable(output.fileName()));
    }

    for (QProcess *process : {&bridgeA, &bridgeB}) {
        process->terminate();
        process->waitForFinished(5000);
    }
    a.leave();
    b.leave();
    broker.terminate();
    broker.waitForFinished(5000);
    return 0;
}
