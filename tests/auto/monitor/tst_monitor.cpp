// SPDX-License-Identifier: BSD-3-Clause
// Monitors (doc/protocol.md, "Monitors"): a copy of every message, whichever path it took, and
// nothing changed for anyone else.

#include "ipmbtestpeer.h"
#include "ipmbtoolsupport_p.h"

#include <QtCore/qelapsedtimer.h>
#include <QtCore/qendian.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

#include <csignal>

using namespace IpmbTest;

class tst_Monitor : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void seesBothPathsInOrder();
    void neverARouteNorAPeer();
    void largePayloadsAreSummarised();
    void endpointsHearWhetherTheBusIsMonitored();
    void slowMonitorLosesCopiesNotSenders();
    void malformedReportDropsItsSender();
    void nobodyToMonitor();
    void monitorFollowsFailover();
};

namespace {

// A monitor endpoint in this process that keeps every copy it gets.
struct Monitor
{
    IpmbEndpoint endpoint;
    QList<IpmbMessage> copies;

    explicit Monitor(const QString &bus)
    {
        endpoint.setIdentifier(bus);
        endpoint.setLabel(IpmbLabel{QStringLiteral("mon")});
        IpmbToolSupport::setMonitor(&endpoint, true);
        QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, &endpoint,
                         [this](const IpmbMessage &message) { copies.append(message); });
    }
    bool join()
    {
        endpoint.join();
        return endpoint.waitForJoined(10000);
    }
    QList<IpmbMessage> from(quint32 sender) const
    {
        QList<IpmbMessage> result;
        for (const IpmbMessage &m : copies) {
            if (m.senderId() == sender)
                result.append(m);
        }
        return result;
    }
};

quint64 sequenceOf(const IpmbMessage &message)
{
    const QByteArray bytes = message.payload().toByteArray();
    return bytes.size() >= 12 ? qFromLittleEndian<quint64>(bytes.constData() + 4) : ~quint64(0);
}

// Reads frames from a raw connection until `wanted` says stop; false on timeout or end of stream.
bool readFrames(IpmbPlatform::Socket socket, QByteArray &buffer,
                const std::function<bool(const IpmbProtocol::Header &, QByteArrayView)> &wanted, int msecs = 20000)
{
    return QTest::qWaitFor([&] {
        char chunk[65536];
        const IpmbPlatform::IoResult r = IpmbPlatform::read(socket, chunk, sizeof(chunk));
        if (r.status == IpmbPlatform::IoStatus::Ok)
            buffer.append(chunk, qsizetype(r.bytes));
        while (buffer.size() >= IpmbProtocol::HeaderSize) {
            const std::optional<IpmbProtocol::Header> header = IpmbProtocol::parseHeader(buffer.constData(), nullptr);
            if (!header || buffer.size() < header->frameLength())
                return false;
            const bool done = wanted(*header, QByteArrayView(buffer).sliced(IpmbProtocol::HeaderSize, header->bodyLength));
            buffer.remove(0, header->frameLength());
            if (done)
                return true;
        }
        return false;
    }, msecs);
}

// A raw endpoint with Hello `features`; InvalidSocket unless welcomed.
IpmbPlatform::Socket rawJoinWith(const QString &bus, const QString &label, quint32 features, QByteArray *rest)
{
    const IpmbPlatform::Socket socket = connectRaw(bus);
    if (socket == IpmbPlatform::InvalidSocket)
        return socket;
    IpmbProtocol::Hello hello = IpmbProtocol::Hello::first(QByteArray(), IpmbLabel{label});
    hello.features = features;
    QByteArray frame;
    IpmbProtocol::appendHello(frame, hello);
    if (!writeAll(socket, frame))
        return IpmbPlatform::InvalidSocket;
    bool welcomed = false;
    readFrames(socket, *rest, [&](const IpmbProtocol::Header &header, QByteArrayView) {
        welcomed = header.type == IpmbProtocol::FrameType::Welcome;
        return true;
    });
    if (!welcomed) {
        IpmbPlatform::closeSocket(socket);
        return IpmbPlatform::InvalidSocket;
    }
    return socket;
}

} // namespace

// A fresh sender's flood starts through the controller and moves to a channel while it runs
// (tst_channels): the monitor gets every message once, in order, and the receiver gets all.
void tst_Monitor::seesBothPathsInOrder()
{
    Bus bus;
    Peer controller, receiver, sender;
    QVERIFY(bus.join({{controller, "ctl"}, {receiver, "b"}}));
    Monitor monitor(bus.name);
    QVERIFY(monitor.join());
    QVERIFY(bus.join(sender, QStringLiteral("a")));

    // Floods of 1,000 until one has gone on a channel (at once, unless the machine is busy).
    int count = 0;
    const auto sawChannel = [&] {
        for (const IpmbMessage &copy : monitor.from(sender.id())) {
            if (IpmbToolSupport::observation(copy)->path == IpmbObservation::OnChannel)
                return true;
        }
        return false;
    };
    while (count < 20000 && !sawChannel()) {
        sender.command("flood unicast b 1000 16 " + QByteArray::number(count));
        QVERIFY(!sender.waitFor("sent").isEmpty());
        count += 1000;
        QTRY_COMPARE_WITH_TIMEOUT(monitor.from(sender.id()).size(), count, 20000);
    }
    QTRY_COMPARE(field(receiver.counts(), "n").toInt(), count);
    const QList<IpmbMessage> copies = monitor.from(sender.id());
    int throughController = 0, onChannel = 0;
    for (int i = 0; i < count; ++i) {
        const IpmbMessage &copy = copies.at(i);
        QCOMPARE(sequenceOf(copy), quint64(i));
        const std::optional<IpmbObservation> observation = IpmbToolSupport::observation(copy);
        QVERIFY(observation);
        QCOMPARE(observation->target, receiver.id());
        QCOMPARE(observation->deliveries, 1u);
        QCOMPARE(observation->payloadSize, qint64(1 + 10 + 16)); // "QByteArray" and 16 bytes
        QCOMPARE(copy.senderLabel(), IpmbLabel{QStringLiteral("a")});
        QCOMPARE(copy.selector().labelOp().toString(), QStringLiteral("b"));
        (observation->path == IpmbObservation::OnChannel ? onChannel : throughController)++;
    }
    QVERIFY2(throughController > 0 && onChannel > 0,
             qPrintable(QStringLiteral("%1 through the controller, %2 on a channel").arg(throughController).arg(onChannel)));
    QCOMPARE(field(receiver.counts(), "inorder"), QByteArray("1"));
    QCOMPARE(monitor.endpoint.droppedMessageCount(), 0u);
}

void tst_Monitor::neverARouteNorAPeer()
{
    Bus bus;
    Peer controller, watcher;
    QVERIFY(bus.join({{controller, "ctl"}, {watcher, "w", {QStringLiteral("--watch-peers")}}}));
    Monitor monitor(bus.name);
    QVERIFY(monitor.join());
    watcher.command("peers");
    QCOMPARE(field(watcher.waitFor("peers"), "n"), QByteArray("1")); // the controller's host only

    // To the monitor's own label: nobody gets it, and the monitor sees that nobody did.
    watcher.command("send unicast mon 0 str hello");
    QTRY_COMPARE(monitor.from(watcher.id()).size(), 1);
    const IpmbMessage copy = monitor.from(watcher.id()).constFirst();
    QCOMPARE(copy.payload(), QVariant(QStringLiteral("hello")));
    QCOMPARE(IpmbToolSupport::observation(copy)->deliveries, 0u);
    QCOMPARE(IpmbToolSupport::observation(copy)->target, 0u);
    QVERIFY(!watcher.hasPrinted("received"));
    QVERIFY(!watcher.hasPrinted("peer-joined"));

    // A multicast to everyone reaches the two others, not the monitor, and the monitor sees
    // that: one copy that went to two, or (routed by the sender) one copy per receiver.
    watcher.command("send multicast true 0 int 7");
    QVERIFY(!controller.waitFor("received").isEmpty());
    QVERIFY(!watcher.waitFor("received").isEmpty());
    const auto deliveries = [&] {
        quint32 sum = 0;
        for (const IpmbMessage &copy : monitor.from(watcher.id()).mid(1))
            sum += IpmbToolSupport::observation(copy)->deliveries;
        return sum;
    };
    QTRY_COMPARE(deliveries(), 2u);
    for (const IpmbMessage &copy : monitor.from(watcher.id()).mid(1))
        QCOMPARE(copy.payload(), QVariant(7));
}

// Copies carry at most 4 KiB of a payload; a payload in shared memory none.
void tst_Monitor::largePayloadsAreSummarised()
{
    Bus bus;
    Peer controller, receiver, sender;
    QVERIFY(bus.join({{controller, "ctl"}, {receiver, "b"}, {sender, "a"}}));
    Monitor monitor(bus.name);
    QVERIFY(monitor.join());

    sender.command("send unicast b 0 smileys 3000");  // 6,000 bytes of UTF-16
    sender.command("send unicast b 0 blob 100000");   // in a region
    QTRY_COMPARE(monitor.from(sender.id()).size(), 2);
    const IpmbMessage text = monitor.from(sender.id()).at(0);
    const std::optional<IpmbObservation> textObservation = IpmbToolSupport::observation(text);
    QCOMPARE(textObservation->payloadSize, qint64(1 + 7 + 6000));
    QCOMPARE(textObservation->payloadPrefix.size(), 4096);
    QVERIFY(!text.payload().isValid());
    QCOMPARE(text.payloadTypeName(), QByteArray("QString"));
    QCOMPARE(IpmbToolSupport::payloadPrefixText(textObservation->payloadPrefix), QString(2044, QChar(0x263A)));  // the peer's "smileys"

    const std::optional<IpmbObservation> blob = IpmbToolSupport::observation(monitor.from(sender.id()).at(1));
    QVERIFY(blob->payloadInRegion);
    QCOMPARE(blob->payloadSize, qint64(1 + 10 + 100000));
    QVERIFY(blob->payloadPrefix.isEmpty());
    QCOMPARE(blob->regionCount, quint16(1));
    QTRY_COMPARE(receiver.printed("received").size(), 2);
}

// Monitoring frames: 1 when the first monitor joins, 0 when the last leaves; a newcomer's Welcome
// says it (doc/protocol.md, "Monitors").
void tst_Monitor::endpointsHearWhetherTheBusIsMonitored()
{
    Bus bus;
    Peer controller;
    QVERIFY(bus.join({{controller, "ctl"}}));
    QByteArray buffer;
    const IpmbPlatform::Socket raw = rawJoinWith(bus.name, QStringLiteral("raw"), 0, &buffer);
    QVERIFY(raw != IpmbPlatform::InvalidSocket);
    const auto monitoring = [&](quint32 expected) {
        quint32 seen = ~0u;
        const bool ok = readFrames(raw, buffer, [&](const IpmbProtocol::Header &header, QByteArrayView body) {
            if (header.type != IpmbProtocol::FrameType::Monitoring)
                return false;
            seen = IpmbProtocol::parseMonitoring(body, nullptr).value_or(~0u);
            return true;
        });
        return ok && seen == expected;
    };
    {
        Monitor first(bus.name), second(bus.name);
        QVERIFY(first.join());
        QVERIFY(monitoring(1));
        QVERIFY(second.join());
        QByteArray later;
        const IpmbPlatform::Socket newcomer = rawJoinWith(bus.name, QStringLiteral("new"), 0, &later);
        QVERIFY(newcomer != IpmbPlatform::InvalidSocket);
        IpmbPlatform::closeSocket(newcomer);
        first.endpoint.leave();
    }
    QVERIFY(monitoring(0));  // once, when the second left
    IpmbPlatform::closeSocket(raw);
}

// A monitor that reads nothing: its copies are dropped at its budget, the traffic goes on at full
// speed, and it hears the count once it reads again.
void tst_Monitor::slowMonitorLosesCopiesNotSenders()
{
    Bus bus;
    Peer controller, receiver, sender;
    QVERIFY(bus.join({{controller, "ctl"}, {receiver, "b"}, {sender, "a"}}));
    QByteArray buffer;
    const IpmbPlatform::Socket stalled = rawJoinWith(bus.name, QStringLiteral("mon"), IpmbProtocol::IsMonitor, &buffer);
    QVERIFY(stalled != IpmbPlatform::InvalidSocket);

    const int count = 200000;  // 200,000 copies of ~100 bytes: beyond the 4 MiB budget
    receiver.command("expect " + QByteArray::number(count));
    sender.command("flood unicast b " + QByteArray::number(count) + " 16");
    QVERIFY(!receiver.waitFor("got", 60000).isEmpty());
    quint64 dropped = 0;
    QVERIFY(readFrames(stalled, buffer, [&](const IpmbProtocol::Header &header, QByteArrayView body) {
        if (header.type == IpmbProtocol::FrameType::Dropped)
            dropped = IpmbProtocol::parseDropped(body, nullptr).value_or(0);
        return dropped > 0;
    }, 30000));
    QVERIFY2(dropped > 0 && dropped < quint64(count), qPrintable(QString::number(dropped)));
    IpmbPlatform::closeSocket(stalled);
}

// An endpoint's report is checked like any frame: one that breaks the rules costs its sender its
// connection, and nothing reaches the monitor.
void tst_Monitor::malformedReportDropsItsSender()
{
    Bus bus;
    Peer controller;
    QVERIFY(bus.join({{controller, "ctl"}}));
    Monitor monitor(bus.name);
    QVERIFY(monitor.join());
    QByteArray buffer;
    const IpmbPlatform::Socket raw = rawJoinWith(bus.name, QStringLiteral("raw"), 0, &buffer);
    QVERIFY(raw != IpmbPlatform::InvalidSocket);

    QByteArray selector;
    IpmbSelectorCodec::appendSelector(selector, IpmbSelector::unicast(IpmbLabelOp(QStringLiteral("x"))));
    // Well formed: passed on with the raw endpoint's sender block.
    IpmbProtocol::Observation report;
    report.path = IpmbProtocol::Observation::OnChannel;
    report.target = 42;
    report.deliveries = 1;
    report.payloadLength = 1 + 7 + 4;
    QByteArray frame;
    IpmbProtocol::appendObserved(frame, report, {}, selector, QByteArrayView("\x07QString\x68\x00\x69\x00", 12));
    QVERIFY(writeAll(raw, frame));
    QTRY_COMPARE(monitor.copies.size(), 1);
    QCOMPARE(monitor.copies.constFirst().payload(), QVariant(QStringLiteral("hi")));
    QCOMPARE(monitor.copies.constFirst().senderLabel(), IpmbLabel{QStringLiteral("raw")});

    // A prefix longer than the payload it claims to be the start of.
    report.payloadLength = 3;
    frame.clear();
    IpmbProtocol::appendObserved(frame, report, {}, selector, QByteArrayView("\x07QString\x68\x00\x69\x00", 12));
    QVERIFY(writeAll(raw, frame));
    QVERIFY(closedByPeer(raw));
    IpmbPlatform::closeSocket(raw);
    QCOMPARE(monitor.copies.size(), 1);
}

// A monitor never hosts the controller: on a bus nobody is on (a mistyped name) it says so.
void tst_Monitor::nobodyToMonitor()
{
    Monitor monitor(uniqueBusName());
    QElapsedTimer clock;
    clock.start();
    monitor.endpoint.join();
    QVERIFY(!monitor.endpoint.waitForJoined(10000));
    QCOMPARE(monitor.endpoint.error(), IpmbEndpoint::NoRouteError);
    QVERIFY2(monitor.endpoint.errorString().contains(QStringLiteral("Nobody is on the bus")),
             qPrintable(monitor.endpoint.errorString()));
    QVERIFY2(clock.elapsed() < 5000, qPrintable(QString::number(clock.elapsed())));
    QVERIFY(!monitor.endpoint.isController());
}

// The controller's process dies: another endpoint takes over, the monitor joins it and goes on.
void tst_Monitor::monitorFollowsFailover()
{
    Bus bus;
    Peer controller, receiver, sender;
    QVERIFY(bus.join({{controller, "ctl"}, {receiver, "b"}, {sender, "a"}}));
    Monitor monitor(bus.name);
    QVERIFY(monitor.join());
    QSignalSpy states(&monitor.endpoint, &IpmbEndpoint::stateChanged);
    ::kill(pid_t(controller.pid()), SIGKILL);
    QTRY_VERIFY_WITH_TIMEOUT(states.size() >= 2 && monitor.endpoint.state() == IpmbEndpoint::JoinedState, 20000);
    QCOMPARE(states.first().first().value<IpmbEndpoint::State>(), IpmbEndpoint::ReconnectingState);
    QVERIFY(!monitor.endpoint.isController());
    // Joined again once one of the others hosts the new controller; then it sees their traffic.
    QTRY_VERIFY_WITH_TIMEOUT([&] {
        sender.command("send unicast b 0 str after");
        return !monitor.from(sender.id()).isEmpty();
    }(), 20000);
    QCOMPARE(monitor.from(sender.id()).constLast().payload(), QVariant(QStringLiteral("after")));
}

QTEST_GUILESS_MAIN(tst_Monitor)
#include "tst_monitor.moc"
