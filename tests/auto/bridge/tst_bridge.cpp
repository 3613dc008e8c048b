// SPDX-License-Identifier: BSD-3-Clause
// `ipmbqt bridge` (doc/scale.md): a mosquitto broker on a loopback port, two buses with
// identifiers of their own standing for two machines, test peers on each (the multi-process
// helper), and a bridge process on each bus. Messages cross both ways with their payloads and type
// names (a user type the bridge process does not know included), once; what cannot leave the
// machine is refused; hostile publishes on the import topic are dropped and reported; the bridges
// reconnect when the broker comes back.

#include "ipmbtestpeer.h"

#include <QtCore/qtemporarydir.h>
#include <QtNetwork/qtcpserver.h>
#include <QtNetwork/qtcpsocket.h>
#include <QtTest/qtest.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <optional>

using namespace Qt::StringLiterals;
using IpmbTest::ChildProcess;
using IpmbTest::Peer;
using IpmbTest::PeerOutput;

namespace {

const QString MosquittoPath = u"/usr/sbin/mosquitto"_s;

// A mosquitto on 127.0.0.1 and a port that was free, with a configuration of its own.
class Broker
{
public:
    bool start()
    {
        if (m_port == 0) {
            QTcpServer probe;
            if (!probe.listen(QHostAddress::LocalHost, 0))
                return false;
            m_port = probe.serverPort();
        }
        QFile config(m_dir.filePath(u"mosquitto.conf"_s));
        if (!config.open(QIODevice::WriteOnly))
            return false;
        config.write("listener " + QByteArray::number(m_port) + " 127.0.0.1\n"
                     "allow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n");
        config.close();
        m_process = std::make_unique<ChildProcess>();
        m_process->start(MosquittoPath, {u"-c"_s, config.fileName()});
        if (!m_process->waitForStarted(5000))
            return false;
        // Ready once it accepts a connection (the port may still be taken by the last run's
        // connections in TIME_WAIT for a moment: mosquitto retries nothing, so neither do we).
        return QTest::qWaitFor([this] {
            if (m_process->state() != QProcess::Running)
                return true;
            QTcpSocket socket;
            socket.connectToHost(QHostAddress::LocalHost, m_port);
            return socket.waitForConnected(200);
        }, 10000) && m_process->state() == QProcess::Running;
    }
    void kill()
    {
        m_process->kill();
        m_process->waitForFinished(5000);
    }
    quint16 port() const { return m_port; }
    QString address() const { return u"127.0.0.1:%1"_s.arg(m_port); }

private:
    QTemporaryDir m_dir;
    quint16 m_port = 0;
    std::unique_ptr<ChildProcess> m_process;
};

// One `ipmbqt bridge` process: its stdout read line by line, its stderr kept for the checks.
class BridgeProcess
{
public:
    BridgeProcess() : m_output(&m_process) { m_process.setProcessChannelMode(QProcess::SeparateChannels); }
    ~BridgeProcess()
    {
        if (QTest::currentTestFailed())
            qWarning("bridge stderr: %s", errors().constData());
    }
    // Starts it and waits for its "bridge ready" line; the line, or empty.
    QByteArray start(const QStringList &arguments)
    {
        m_process.start(QStringLiteral(IPMBQT_TOOL), QStringList{u"bridge"_s} + arguments);
        return waitFor("bridge ready");
    }
    QByteArray waitFor(const QByteArray &prefix, int msecs = 20000) { return m_output.waitForLine(prefix, msecs); }
    QByteArray errors() { return m_errors += m_process.readAllStandardError(); }
    // SIGTERM, then its summary line; empty unless it exited with 0.
    QByteArray terminate()
    {
        ::kill(pid_t(m_process.processId()), SIGTERM);
        const QByteArray summary = waitFor("bridge summary");
        // waitForFinished() is false for a process that has ended already (while waitFor() ran).
        if ((m_process.state() != QProcess::NotRunning && !m_process.waitForFinished(10000))
            || m_process.exitStatus() != QProcess::NormalExit
            || m_process.exitCode() != 0) {
            qWarning("bridge ended with status %d code %d, summary %s", int(m_process.exitStatus()), m_process.exitCode(), summary.constData());
            return {};
        }
        return summary;
    }
    // Waits until stderr has a line containing `text`.
    bool waitForError(const QByteArray &text, int msecs = 10000)
    {
        return QTest::qWaitFor([&] { return errors().contains(text); }, msecs);
    }
    ChildProcess &process() { return m_process; }

private:
    ChildProcess m_process;
    PeerOutput m_output;
    QByteArray m_errors;
};

quint64 count(const QByteArray &summary, const QByteArray &key)
{
    return IpmbTest::countField(summary, key);
}

// Two buses ("machines"), each with one peer and one bridge, through one broker. Bus A's peer
// has the label "kiosk"; bus B's has "wall". Bridge A exports "wall", bridge B exports "kiosk";
// both import the whole run's topic tree, their own export topic included, which no-local and the
// bridge label keep from looping.
struct TwoMachines
{
    Broker broker;
    IpmbTest::Bus busA;
    IpmbTest::Bus busB;
    Peer kiosk;
    Peer wall;
    BridgeProcess bridgeA;
    BridgeProcess bridgeB;
    const QString prefix = u"ipmbqt-test/"_s + QUuid::createUuid().toString(QUuid::WithoutBraces);

    QString topicA() const { return prefix + u"/a"_s; }
    QString topicB() const { return prefix + u"/b"_s; }

    bool start(const QStringList &extra = {})
    {
        if (!broker.start())
            return false;
        if (!busA.join(kiosk, u"kiosk"_s) || !busB.join(wall, u"wall"_s))
            return false;
        const QStringList common {u"--mqtt"_s, broker.address(), u"--import"_s, prefix + u"/#"_s};
        return !bridgeA.start(QStringList{u"--bus"_s, busA.name, u"--export"_s, u"wall"_s, u"--topic"_s, topicA(),
                                          u"--client-id"_s, u"bridge-a"_s} + common + extra).isEmpty()
                && !bridgeB.start(QStringList{u"--bus"_s, busB.name, u"--export"_s, u"kiosk"_s, u"--topic"_s,
                                              topicB(), u"--client-id"_s, u"bridge-b"_s} + common + extra).isEmpty();
    }
};

// A plain MQTT v5 client, for publishes no bridge would make.
class RawClient
{
public:
    RawClient() { mosquitto_lib_init(); }
    ~RawClient()
    {
        if (m_mosq) {
            mosquitto_disconnect(m_mosq);
            mosquitto_destroy(m_mosq);
        }
        mosquitto_lib_cleanup();
    }
    bool connect(quint16 port)
    {
        m_mosq = mosquitto_new(nullptr, true, this);
        mosquitto_int_option(m_mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
        mosquitto_publish_v5_callback_set(m_mosq, [](mosquitto *, void *self, int, int, const mosquitto_property *) {
            ++static_cast<RawClient *>(self)->m_acknowledged;
        });
        return mosquitto_connect_bind_v5(m_mosq, "127.0.0.1", port, 30, nullptr, nullptr) == MOSQ_ERR_SUCCESS;
    }
    // Publishes with QoS 1 and waits for the broker's acknowledgement.
    bool publish(const QString &topic, const QByteArray &payload, const QByteArray &contentType,
                 const QList<std::pair<QByteArray, QByteArray>> &properties)
    {
        mosquitto_property *list = nullptr;
        if (!contentType.isEmpty())
            mosquitto_property_add_string(&list, MQTT_PROP_CONTENT_TYPE, contentType.constData());
        for (const auto &[key, value] : properties)
            mosquitto_property_add_string_pair(&list, MQTT_PROP_USER_PROPERTY, key.constData(), value.constData());
        const int rc = mosquitto_publish_v5(m_mosq, nullptr, topic.toUtf8().constData(), int(payload.size()),
                                            payload.constData(), 1, false, list);
        mosquitto_property_free_all(&list);
        if (rc != MOSQ_ERR_SUCCESS)
            return false;
        ++m_published;
        return QTest::qWaitFor([this] {
            mosquitto_loop(m_mosq, 10, 1);
            return m_acknowledged >= m_published;
        }, 5000);
    }

private:
    mosquitto *m_mosq = nullptr;
    int m_published = 0;
    int m_acknowledged = 0;
};

// A QString payload in the wire format of doc/payloads.md: its type name, then UTF-16LE.
QByteArray encodedString(const QString &text)
{
    QByteArray bytes;
    bytes.append(char(7)).append("QString");
    for (const QChar c : text)
        bytes.append(char(c.unicode() & 0xFF)).append(char(c.unicode() >> 8));
    return bytes;
}

using Properties = QList<std::pair<QByteArray, QByteArray>>;

Properties goodProperties(const QByteArray &op = "wall", const QByteArray &type = "QString")
{
    return {{"ipmbqt-format", "1"}, {"ipmbqt-mode", "unicast"}, {"ipmbqt-op", op},
            {"ipmbqt-ttl", "0"}, {"ipmbqt-type", type}, {"ipmbqt-origin", "test"}};
}

} // namespace

class tst_Bridge : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void usageErrors_data();
    void usageErrors();
    void crossesBothWays();
    void refusesHandlesAndRequests();
    void hostilePublishesAreDropped();
    void reconnectsAfterBrokerRestart();
};

void tst_Bridge::initTestCase()
{
    if (!QFileInfo(MosquittoPath).isExecutable())
        QSKIP("no /usr/sbin/mosquitto (Debian: apt-get install mosquitto; ./dev.sh installs it)");
}

void tst_Bridge::usageErrors_data()
{
    QTest::addColumn<QStringList>("arguments");
    QTest::addColumn<int>("exitCode");
    QTest::addColumn<QString>("message");
    const QString bus = IpmbTest::uniqueBusName();
    QTest::newRow("help") << QStringList{u"--help"_s} << 0 << QString();
    QTest::newRow("no --mqtt") << QStringList{u"--bus"_s, bus, u"--export"_s, u"a"_s} << 2
                               << u"--mqtt HOST:PORT is required"_s;
    QTest::newRow("bad port") << QStringList{u"--bus"_s, bus, u"--mqtt"_s, u"localhost:99999"_s, u"--export"_s, u"a"_s}
                              << 2 << u"--mqtt wants HOST:PORT"_s;
    QTest::newRow("label op as --export")
            << QStringList{u"--bus"_s, bus, u"--mqtt"_s, u"127.0.0.1:1"_s, u"--export"_s, u"a && !b"_s} << 2
            << u"--export takes label names, not a label op"_s;
    QTest::newRow("bad filter")
            << QStringList{u"--bus"_s, bus, u"--mqtt"_s, u"127.0.0.1:1"_s, u"--import"_s, u"a/#/b"_s} << 2
            << u"is not an MQTT topic filter"_s;
    QTest::newRow("wildcard topic")
            << QStringList{u"--bus"_s, bus, u"--mqtt"_s, u"127.0.0.1:1"_s, u"--export"_s, u"a"_s, u"--topic"_s, u"a/+"_s}
            << 2 << u"'+' and '#' are for filters"_s;
    QTest::newRow("qos 3") << QStringList{u"--bus"_s, bus, u"--mqtt"_s, u"127.0.0.1:1"_s, u"--export"_s, u"a"_s,
                                          u"--qos"_s, u"3"_s}
                           << 2 << u"--qos wants a whole number from 0 to 2"_s;
    QTest::newRow("nothing to do") << QStringList{u"--bus"_s, bus, u"--mqtt"_s, u"127.0.0.1:1"_s} << 2
                                   << u"nothing to bridge"_s;
    QTest::newRow("session without id")
            << QStringList{u"--bus"_s, bus, u"--mqtt"_s, u"127.0.0.1:1"_s, u"--export"_s, u"a"_s,
                           u"--session-expiry"_s, u"60"_s}
            << 2 << u"--session-expiry needs --client-id"_s;
    // Port 1 on loopback: nobody listens, the connection is refused at once.
    QTest::newRow("no broker") << QStringList{u"--bus"_s, bus, u"--mqtt"_s, u"127.0.0.1:1"_s, u"--export"_s, u"a"_s}
                               << 1 << u"cannot connect to the MQTT broker 127.0.0.1:1"_s;
}

void tst_Bridge::usageErrors()
{
    QFETCH(QStringList, arguments);
    QFETCH(int, exitCode);
    QFETCH(QString, message);
    QProcess process;
    process.start(QStringLiteral(IPMBQT_TOOL), QStringList{u"bridge"_s} + arguments);
    QVERIFY(process.waitForFinished(15000));
    QCOMPARE(process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(process.exitCode(), exitCode);
    const QString errors = QString::fromUtf8(process.readAllStandardError());
    if (message.isEmpty()) {
        QVERIFY(errors.isEmpty());
        QVERIFY(process.readAllStandardOutput().startsWith("Usage: ipmbqt bridge --bus ID --mqtt HOST:PORT"));
    } else {
        QVERIFY2(errors.startsWith(u"ipmbqt bridge: "_s) && errors.contains(message), qPrintable(errors));
    }
}

void tst_Bridge::crossesBothWays()
{
    TwoMachines machines;
    QVERIFY(machines.start());

    // A to B: text, a user type that only the peers register (the bridges' process has never
    // heard of TestPoint), and a payload large enough to travel in shared memory on each bus.
    machines.kiosk.command("send unicast wall 0 str hello-from-a");
    QByteArray line = machines.wall.waitFor("received");
    QCOMPARE(IpmbTest::field(line, "type"), "QString");
    QCOMPARE(IpmbTest::field(line, "status"), "PayloadOk");
    QCOMPARE(IpmbTest::field(line, "value"), "hello-from-a");
    // On bus B the sender is bridge B (the bus fills in senders; the original one is in MQTT's
    // user properties).
    QVERIFY(IpmbTest::field(line, "label").split(',').contains("ipmbqt-bridge"));

    machines.kiosk.command("send multicast wall 0 gadget 3,4,point");
    line = machines.wall.waitFor("received");
    QCOMPARE(IpmbTest::field(line, "type"), "TestPoint");
    QCOMPARE(IpmbTest::field(line, "status"), "PayloadOk");
    QCOMPARE(IpmbTest::field(line, "value"), "3,4,point");

    machines.kiosk.command("send unicast wall 0 blob 100000");
    line = machines.wall.waitFor("received");
    QCOMPARE(IpmbTest::field(line, "type"), "QByteArray");
    QCOMPARE(IpmbTest::field(line, "value"), "bytes:100000");

    // B to A, and back again with a ttl that the receiving bus keeps.
    machines.wall.command("send multicast kiosk 0 int 42");
    line = machines.kiosk.waitFor("received");
    QCOMPARE(IpmbTest::field(line, "type"), "int");
    QCOMPARE(IpmbTest::field(line, "status"), "PayloadOk");
    QCOMPARE(IpmbTest::field(line, "value"), "42");
    machines.kiosk.command("send unicast wall 5000 str and-back");
    QCOMPARE(IpmbTest::field(machines.wall.waitFor("received"), "value"), "and-back");

    // Each message crossed once: every bridge also imports its own topic and the other's exports,
    // so a loop would show up in these counts (and as more "received" lines).
    const QByteArray summaryA = machines.bridgeA.terminate();
    const QByteArray summaryB = machines.bridgeB.terminate();
    QVERIFY2(!summaryA.isEmpty() && !summaryB.isEmpty(), machines.bridgeA.errors() + machines.bridgeB.errors());
    QCOMPARE(count(summaryA, "exported"), 4u);
    QCOMPARE(count(summaryA, "acknowledged"), 4u);
    QCOMPARE(count(summaryA, "imported"), 1u);
    QCOMPARE(count(summaryB, "exported"), 1u);
    QCOMPARE(count(summaryB, "imported"), 4u);
    QCOMPARE(count(summaryA, "import-dropped") + count(summaryB, "import-dropped"), 0u);
    QCOMPARE(count(summaryA, "own") + count(summaryB, "own"), 0u);
    QCOMPARE(machines.wall.printed("received").size(), 4);
    QCOMPARE(machines.kiosk.printed("received").size(), 1);
}

void tst_Bridge::refusesHandlesAndRequests()
{
    TwoMachines machines;
    QVERIFY(machines.start());
    // A descriptor and a shared-memory region cannot leave the machine: refused, said, counted.
    machines.kiosk.command("sendfds unicast wall 0 1 1");
    QVERIFY(machines.bridgeA.waitForError("kernel handles"));
    machines.kiosk.command("sendregion unicast wall 0 4096");
    QVERIFY(machines.bridgeA.waitForError("1 shared-memory regions"));
    // What follows still crosses, and is the first thing bus B's peer sees.
    machines.kiosk.command("send unicast wall 0 str after-the-refusals");
    QCOMPARE(IpmbTest::field(machines.wall.waitFor("received"), "value"), "after-the-refusals");
    const QByteArray summary = machines.bridgeA.terminate();
    QCOMPARE(count(summary, "refused-handles"), 2u);
    QCOMPARE(count(summary, "exported"), 1u);
    QCOMPARE(machines.wall.printed("received").size(), 1);
}

void tst_Bridge::hostilePublishesAreDropped()
{
    TwoMachines machines;
    QVERIFY(machines.start());
    RawClient raw;
    QVERIFY(raw.connect(machines.broker.port()));
    const QByteArray type = "application/x-ipmbqt-payload";
    const QByteArray hello = encodedString(u"hello"_s);
    struct Case
    {
        QByteArray payload;
        QByteArray contentType;
        Properties properties;
        QByteArray reason; // in bridge B's warning
    };
    auto with = [](Properties properties, const QByteArray &key, const QByteArray &value) {
        for (auto &[k, v] : properties) {
            if (k == key)
                v = value;
        }
        return properties;
    };
    Properties twice = goodProperties();
    twice.append(std::pair<QByteArray, QByteArray>("ipmbqt-mode", "multicast"));
    Properties missing = goodProperties();
    missing.removeIf([](const auto &p) { return p.first == "ipmbqt-op"; });
    const QList<Case> cases {
            {hello, {}, goodProperties(), "no content type"},
            {hello, "text/plain", goodProperties(), "content type 'text/plain'"},
            {hello, type, {}, "property ipmbqt-format missing"},
            {hello, type, missing, "property ipmbqt-op missing"},
            {hello, type, twice, "property ipmbqt-mode given twice"},
            {hello, type, with(goodProperties(), "ipmbqt-format", "2"), "format '2'"},
            {hello, type, with(goodProperties(), "ipmbqt-mode", "broadcast"), "mode 'broadcast'"},
            {hello, type, with(goodProperties(), "ipmbqt-ttl", "-1"), "ttl '-1'"},
            {hello, type, with(goodProperties(), "ipmbqt-ttl", "99999999999"), "ttl '99999999999'"},
            {hello, type, with(goodProperties(), "ipmbqt-op", "wall &&"), "label op 'wall &&' does not parse"},
            {hello, type, with(goodProperties(), "ipmbqt-op", QByteArray(200, '!') + "wall"), "does not parse"},
            {{}, type, goodProperties(), "empty payload"},
            {QByteArray("\xC8QStr", 5), type, goodProperties(), "shorter than its type name"},
            {QByteArray("\x03Q\x01t", 4), type, goodProperties(), "not printable ASCII"},
            {hello, type, goodProperties("wall", "QByteArray"), "says 'QByteArray' but the payload is a 'QString'"},
    };
    for (const Case &c : cases)
        QVERIFY(raw.publish(machines.topicA(), c.payload, c.contentType, c.properties));
    // Garbage that is well-formed as far as the bridge can tell goes on, and the receiver's
    // library judges it as it judges any payload: an odd number of bytes is no QString.
    QVERIFY(raw.publish(machines.topicA(), hello + 'x', type, goodProperties()));
    QByteArray line = machines.wall.waitFor("received");
    QCOMPARE(IpmbTest::field(line, "status"), "PayloadMalformed");
    // Then a good one: the bridge is alive and still forwards.
    QVERIFY(raw.publish(machines.topicA(), hello, type, goodProperties()));
    line = machines.wall.waitFor("received");
    QCOMPARE(IpmbTest::field(line, "status"), "PayloadOk");
    QCOMPARE(IpmbTest::field(line, "value"), "hello");

    const QByteArray errors = machines.bridgeB.errors();
    for (const Case &c : cases)
        QVERIFY2(errors.contains(c.reason), c.reason.constData());
    const QByteArray summary = machines.bridgeB.terminate();
    QCOMPARE(count(summary, "import-dropped"), quint64(cases.size()));
    QCOMPARE(count(summary, "imported"), 2u);
}

void tst_Bridge::reconnectsAfterBrokerRestart()
{
    TwoMachines machines;
    QVERIFY(machines.start({u"--reconnect-max"_s, u"1"_s}));
    machines.kiosk.command("send unicast wall 0 str before");
    QCOMPARE(IpmbTest::field(machines.wall.waitFor("received"), "value"), "before");

    machines.broker.kill();
    QVERIFY(!machines.bridgeA.waitFor("mqtt disconnected").isEmpty());
    QVERIFY(!machines.bridgeB.waitFor("mqtt disconnected").isEmpty());
    QVERIFY(machines.broker.start()); // the same port
    QVERIFY(!machines.bridgeA.waitFor("mqtt connected").isEmpty());
    QVERIFY(!machines.bridgeB.waitFor("mqtt connected").isEmpty());

    machines.kiosk.command("send unicast wall 0 str after");
    QCOMPARE(IpmbTest::field(machines.wall.waitFor("received"), "value"), "after");
    machines.wall.command("send unicast kiosk 0 str and-back");
    QCOMPARE(IpmbTest::field(machines.kiosk.waitFor("received"), "value"), "and-back");
    const QByteArray summary = machines.bridgeA.terminate();
    QCOMPARE(count(summary, "disconnects"), 1u);
    QCOMPARE(count(summary, "connects"), 2u);
}

QTEST_GUILESS_MAIN(tst_Bridge)
#include "tst_bridge.moc"
