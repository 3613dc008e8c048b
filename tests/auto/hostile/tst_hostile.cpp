// SPDX-License-Identifier: BSD-3-Clause
// The bus attacked from outside: by a process of another user, and by raw peers of the same user
// that speak the wire protocol (this test process). Each test reproduces one hole that an outside
// check found (the issue "Trust") and checks that the offender gets nothing and the bus goes on.

#include "ipmbprocstatus.h"
#include "ipmbtestpeer.h"

#include <IpmbQt/IpmbEndpoint>

#include "ipmbconnection_p.h"
#include "ipmbmemoryregion_p.h"
#include "ipmbpayloadcodec_p.h"
#include "ipmbplatform_p.h"
#include "ipmbprotocol_p.h"
#include "ipmbselectorcodec_p.h"

#include <QtCore/qdatastream.h>
#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qdir.h>
#include <QtCore/qeasingcurve.h>
#include <QtCore/qfile.h>
#include <QtCore/qtemporarydir.h>
#include <QtTest/qtest.h>

#include <vector>

#include <cstring>
#include <limits>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace IpmbTest;

class tst_Hostile : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void otherUserRacesTheElection();
    void unsafeBusDirectory_data();
    void unsafeBusDirectory();
    void largestMessage_data();
    void largestMessage();
    void manyIdleConnections();
    void handlesWithoutFrames();
    void largeFramesBeforeHello();
    void unfinishedFrames_data();
    void unfinishedFrames();
    void manyUnknownTypes();
    void hostilePayloads_data();
    void hostilePayloads();
    void stoppedReceiverMemory_data();
    void stoppedReceiverMemory();
    void regionCountNearItsLimit();
    void garbageOnAChannel();
};

// The address a squatter aims at: the one this user's endpoints use for `bus`.
static QByteArray squatAddress(const QString &bus)
{
    return busAddressOf(bus);
}

// Hole 1: another user binds the bus address while the controller is dead, and the bus never
// comes back. Here a process of uid 65534 tries to bind it in a tight loop while the controller is
// killed; the survivors must elect one of themselves every time.
void tst_Hostile::otherUserRacesTheElection()
{
    if (::geteuid() != 0)
        QSKIP("needs root to run a helper as another uid (setpriv --reuid=65534)");
    OtherUser nobody;
    QVERIFY2(nobody.isValid(), "setpriv (util-linux) is missing, or no temporary directory");
    constexpr int Trials = 20;
    for (int trial = 0; trial < Trials; ++trial) {
        Bus bus;
        Peer a, b, c, squatter;
        QVERIFY(bus.join(a, QStringLiteral("a")));
        QVERIFY(a.isController());
        QVERIFY(bus.join({{b, "b"}, {c, "c"}}));
        nobody.start(squatter, {QStringLiteral("--squat-loop"), QString::fromUtf8(squatAddress(bus.name))});
        QVERIFY(!squatter.waitFor("squatting").isEmpty());
        a.kill();
        const QByteArray rejoinedB = b.waitFor("joined", 10000);
        const QByteArray rejoinedC = c.waitFor("joined", 10000);
        QVERIFY2(!squatter.hasPrinted("won"), qPrintable(QStringLiteral("trial %1: uid 65534 won the address").arg(trial)));
        QVERIFY2(!rejoinedB.isEmpty() && !rejoinedC.isEmpty(),
                 qPrintable(QStringLiteral("trial %1: a survivor did not rejoin").arg(trial)));
        QCOMPARE(int(field(rejoinedB, "controller") == "1") + int(field(rejoinedC, "controller") == "1"), 1);
        b.command("send unicast c 0 str trial-" + QByteArray::number(trial));
        QCOMPARE(field(c.waitFor("received"), "value"), "trial-" + QByteArray::number(trial));
    }
}

// The bus directory is where hole 1 was closed: anything but a directory of ours, closed to others,
// is refused with a PermissionError that says what is wrong, and nothing is created through it.
void tst_Hostile::unsafeBusDirectory_data()
{
    QTest::addColumn<QString>("kind");
    QTest::addColumn<QByteArray>("reason");
    QTest::addRow("open to others") << QStringLiteral("mode0755") << QByteArray("is open to other users (mode 0755");
    QTest::addRow("a symbolic link") << QStringLiteral("symlink") << QByteArray("is a symbolic link");
    QTest::addRow("a file") << QStringLiteral("file") << QByteArray("is not a directory");
    if (::geteuid() == 0) // only root can give a directory away
        QTest::addRow("another user's") << QStringLiteral("foreign") << QByteArray("belongs to uid 65534");
}

void tst_Hostile::unsafeBusDirectory()
{
    QFETCH(QString, kind);
    QFETCH(QByteArray, reason);
    QTemporaryDir runtime;
    QVERIFY(runtime.isValid());
    const QString directory = runtime.filePath(QStringLiteral("ipmbqt"));
    const QByteArray path = QFile::encodeName(directory);
    if (kind == QLatin1String("mode0755")) {
        QVERIFY(::mkdir(path.constData(), 0755) == 0 && ::chmod(path.constData(), 0755) == 0);
    } else if (kind == QLatin1String("symlink")) {
        QVERIFY(::mkdir(QFile::encodeName(runtime.filePath(QStringLiteral("elsewhere"))).constData(), 0700) == 0);
        QVERIFY(QFile::link(runtime.filePath(QStringLiteral("elsewhere")), directory));
    } else if (kind == QLatin1String("file")) {
        QFile file(directory);
        QVERIFY(file.open(QIODevice::WriteOnly));
    } else {
        QVERIFY(::mkdir(path.constData(), 0700) == 0 && ::chown(path.constData(), 65534, 65534) == 0);
    }
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("XDG_RUNTIME_DIR"), runtime.path());
    Peer peer;
    peer.start({QStringLiteral("--bus"), uniqueBusName(), QStringLiteral("--label"), QStringLiteral("p")},
               QStringLiteral(IPMBQT_PEER), env);
    const QByteArray line = peer.waitFor("error");
    QVERIFY2(line.startsWith("error PermissionError The bus directory " + path + ' ' + reason), line.constData());
    QVERIFY(!peer.waitFor("state UnjoinedState").isEmpty());
    QCOMPARE(QDir(runtime.filePath(QStringLiteral("elsewhere"))).entryList(QDir::NoDotAndDotDot | QDir::AllEntries),
             QStringList());
}

// The payload section of a QByteArray of `size` - 11 zero bytes.
static QByteArray byteArrayPayload(qint64 size)
{
    QByteArray bytes(size, '\0');
    std::memcpy(bytes.data(), "\x0aQByteArray", 11);
    return bytes;
}

// Hole 2: a message of the largest size the controller accepted grew over the limit when the
// controller put the sender block in front, and every receiver dropped its connection, losing the
// messages behind it. Now the sections are limited one by one, so that whatever the controller
// accepts fits the receivers' limit, and a frame over them costs its sender its connection only.
void tst_Hostile::largestMessage_data()
{
    QTest::addColumn<qint64>("payloadSection");
    QTest::addColumn<bool>("delivered");
    QTest::addRow("body of the largest frame") << qint64(-1) << false;
    QTest::addRow("largest payload") << qint64(IpmbLimits::MaxPayload) << true;
}

void tst_Hostile::largestMessage()
{
    QFETCH(qint64, payloadSection);
    QFETCH(bool, delivered);
    Bus bus;
    // The large message goes to `big`; the messages of a well-behaved sender to both.
    Peer controller, receiver, big, sender;
    QVERIFY(bus.join({{controller, "ctl"}, {receiver, "r"}, {big, "big"}, {sender, "s"}}));
    const IpmbPlatform::Socket raw = rawJoin(bus.name, QStringLiteral("raw"));
    QVERIFY(raw != IpmbPlatform::InvalidSocket);

    const IpmbSelector toReceiver = IpmbSelector::unicast(IpmbLabelOp("big"));
    QByteArray selectorBytes;
    IpmbSelectorCodec::appendSelector(selectorBytes, toReceiver);
    if (payloadSection < 0)
        payloadSection = IpmbLimits::MaxMessageBody - selectorBytes.size();
    const QByteArray frame = messageFrame(toReceiver, byteArrayPayload(payloadSection));
    // The controller may close the connection before it has read everything.
    const bool written = writeAll(raw, frame);
    sender.command("flood unicast r 100 16");
    receiver.command("expect 100");
    QVERIFY(!receiver.waitFor("got 100").isEmpty());
    if (delivered) {
        QVERIFY(written);
        const QByteArray line = big.waitFor("received");
        QVERIFY2(line.startsWith("received type=QByteArray status=PayloadOk value=bytes:"
                                 + QByteArray::number(payloadSection - 11)), line.constData());
    } else {
        QVERIFY(closedByPeer(raw));
    }
    sender.command("send unicast big 0 str after");
    QCOMPARE(field(big.waitFor("received"), "value"), QByteArray("after"));
    QVERIFY2(!receiver.hasPrinted("state ReconnectingState"), "a receiver lost its connection");
    QVERIFY2(!big.hasPrinted("state ReconnectingState"), "the large message's receiver lost its connection");
    QVERIFY(!controller.hasPrinted("state ReconnectingState"));
    IpmbPlatform::closeSocket(raw);
}

// Sanitizers hold freed memory in a quarantine and map shadow memory: the memory figures of a
// sanitizer build say nothing about the code, so the tests check them only in a plain build.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
static constexpr bool MemoryFiguresMeaningful = false;
#else
static constexpr bool MemoryFiguresMeaningful = true;
#endif

// Hole 6: IpmbPlatform::poll() ignored every entry past 1,024, so about 1,019 joined idle
// connections made every new endpoint time out. Now a bus takes as many as the controller has
// descriptors for.
void tst_Hostile::manyIdleConnections()
{
    IpmbPlatform::raiseHandleLimit();
    constexpr int Connections = 1100;
    QVERIFY2(IpmbPlatform::handleLimit() > Connections + 64, "this test needs more open files (ulimit -n)");
    Bus bus;
    Peer controller, early;
    QVERIFY(bus.join({{controller, "ctl"}, {early, "early"}}));
    std::vector<IpmbPlatform::Socket> idle;
    for (int i = 0; i < Connections; ++i) {
        const IpmbPlatform::Socket socket = rawJoin(bus.name, QStringLiteral("idle"));
        QVERIFY2(socket != IpmbPlatform::InvalidSocket, qPrintable(QStringLiteral("connection %1 was not welcomed").arg(i)));
        idle.push_back(socket);
    }
    Peer late;
    QVERIFY2(bus.join(late, QStringLiteral("late")), "an endpoint could not join a bus with 1,100 idle endpoints");
    early.command("send unicast late 0 str hello-late");
    QCOMPARE(field(late.waitFor("received"), "value"), QByteArray("hello-late"));
    for (IpmbPlatform::Socket socket : idle)
        IpmbPlatform::closeSocket(socket);
}

// Hole 7: a peer sent descriptors without frames to claim them (79 writes of 253 each), the
// controller kept them all until it ran out of descriptors, and then lost a legitimate endpoint's.
// Now a reader holds at most MaxHandlesAhead descriptors that no complete frame claims, and drops
// a peer that sends more.
void tst_Hostile::handlesWithoutFrames()
{
    Bus bus;
    Peer controller, sender, receiver;
    QVERIFY(bus.join({{controller, "ctl"}, {sender, "s"}, {receiver, "r"}}));
    controller.command("fdcount");
    const int baseline = controller.waitFor("fdcount").mid(8).toInt();
    const IpmbPlatform::Socket raw = rawJoin(bus.name, QStringLiteral("hoarder"));
    QVERIFY(raw != IpmbPlatform::InvalidSocket);

    // The header of a frame that never ends, then one byte of it with each batch of descriptors.
    QVERIFY(writeAll(raw, messageHeader(1024 * 1024)));
    int pipe[2];
    QVERIFY(::pipe2(pipe, O_CLOEXEC) == 0);
    const QList<qintptr> batch(IpmbLimits::MaxHandlesPerIo, qintptr(pipe[0]));
    int sent = 0;
    for (int i = 0; i < 79; ++i) {
        if (!writeAll(raw, "x", batch))
            break;
        ++sent;
    }
    ::close(pipe[0]);
    ::close(pipe[1]);
    // Until the controller drops the connection, count its descriptors now and then.
    const QString fds = QStringLiteral("/proc/%1/fd").arg(controller.pid());
    qsizetype most = 0;
    const bool closed = QTest::qWaitFor([&] {
        most = qMax(most, QDir(fds).entryList(QDir::NoDotAndDotDot | QDir::AllEntries | QDir::System).size());
        char buffer[4096];
        return IpmbPlatform::read(raw, buffer, sizeof(buffer)).status == IpmbPlatform::IoStatus::Closed;
    }, 10000);
    QVERIFY2(closed, qPrintable(QStringLiteral("the controller kept a connection that sent %1 descriptors "
                                               "without frames").arg(sent * IpmbLimits::MaxHandlesPerIo)));
    QVERIFY2(most <= baseline + 2 * IpmbLimits::MaxHandlesPerIo + 16,
             qPrintable(QStringLiteral("the controller held %1 descriptors (%2 before)").arg(most).arg(baseline)));
    IpmbPlatform::closeSocket(raw);
    // The controller let go of them, and a well-behaved sender's descriptors still arrive.
    QTRY_VERIFY_WITH_TIMEOUT(([&] {
                                 controller.command("fdcount");
                                 return controller.waitFor("fdcount").mid(8).toInt() <= baseline;
                             }()),
                             10000);
    sender.command("sendfds unicast r 0 8 1");
    QCOMPARE(receiver.waitFor("fds"), QByteArray("fds ok=1 n=8"));
    Peer late;
    QVERIFY(bus.join(late, QStringLiteral("late")));
}

// Hole 8, first half: the reader allocated the length a header declared as soon as the header
// arrived, before the Hello: 40 connections reserved 10 GB of the controller's address space.
// Now nothing larger than a Hello may come before the Hello, and a large frame's buffer grows
// with the bytes that arrive.
void tst_Hostile::largeFramesBeforeHello()
{
    Bus bus;
    Peer controller, a, b;
    QVERIFY(bus.join({{controller, "ctl"}, {a, "a"}, {b, "b"}}));
    const qint64 before = procStatusKiB(controller.pid(), "VmSize");
    // A valid Message header, after a Hello, and some of its body.
    const QByteArray bytes = messageHeader(200 * 1024 * 1024) + QByteArray(64 * 1024, '\0');
    std::vector<IpmbPlatform::Socket> sockets;
    for (int i = 0; i < 40; ++i) {
        sockets.push_back(connectRaw(bus.name));
        QVERIFY(sockets.back() != IpmbPlatform::InvalidSocket);
        QVERIFY(writeAll(sockets.back(), bytes));
    }
    // A message through the controller: it has read what the 40 sent by then.
    a.command("send unicast b 0 str after");
    QCOMPARE(field(b.waitFor("received"), "value"), QByteArray("after"));
    const qint64 grown = procStatusKiB(controller.pid(), "VmSize") - before;
    QVERIFY2(!MemoryFiguresMeaningful || grown < 256 * 1024, qPrintable(QStringLiteral("the controller's address space grew by %1 MiB").arg(grown / 1024)));
    for (IpmbPlatform::Socket socket : sockets) {
        QVERIFY(closedByPeer(socket));
        IpmbPlatform::closeSocket(socket);
    }
}

// Hole 8, second half: nothing timed out a frame left unfinished after the Hello (a few bytes of a
// header, or all but one byte of a large frame), so peers held the controller's memory as long as
// they liked. Now a frame must end within HelloTimeoutMsecs plus its length at 16 MiB/s of the
// time the controller reads its sender, and the memory goes back.
void tst_Hostile::unfinishedFrames_data()
{
    QTest::addColumn<int>("connections");
    QTest::addColumn<qint64>("frameLength");   // 0: a few bytes of a header
    QTest::addRow("a few bytes of a header") << 50 << qint64(0);
    QTest::addRow("all but a byte of 64 MiB") << 3 << qint64(64 * 1024 * 1024);
}

void tst_Hostile::unfinishedFrames()
{
    QFETCH(int, connections);
    QFETCH(qint64, frameLength);
    Bus bus;
    Peer controller, a, b;
    QVERIFY(bus.join({{controller, "ctl"}, {a, "a"}, {b, "b"}}));
    const qint64 before = procStatusKiB(controller.pid(), "VmRSS");
    QByteArray bytes;
    if (frameLength == 0) {
        bytes = QByteArray("IPMB\x02\x00\x04");
    } else {
        bytes = messageFrame(IpmbSelector::unicast(IpmbLabelOp("b")), byteArrayPayload(frameLength));
        bytes.chop(1);
    }
    std::vector<IpmbPlatform::Socket> sockets;
    for (int i = 0; i < connections; ++i) {
        sockets.push_back(rawJoin(bus.name, QStringLiteral("slow")));
        QVERIFY(sockets.back() != IpmbPlatform::InvalidSocket);
        QVERIFY(writeAll(sockets.back(), bytes));
    }
    a.command("send unicast b 0 str meanwhile");
    QCOMPARE(field(b.waitFor("received"), "value"), QByteArray("meanwhile"));
    for (IpmbPlatform::Socket socket : sockets) {
        QVERIFY2(closedByPeer(socket, 30000), "an unfinished frame kept its connection open");
        IpmbPlatform::closeSocket(socket);
    }
    // The memory they held is given back.
    a.command("send unicast b 0 str after");
    QCOMPARE(field(b.waitFor("received"), "value"), QByteArray("after"));
    const qint64 grown = procStatusKiB(controller.pid(), "VmRSS") - before;
    QVERIFY2(!MemoryFiguresMeaningful || grown < 32 * 1024, qPrintable(QStringLiteral("the controller's RSS grew by %1 MiB").arg(grown / 1024)));
}

// Hole 9, first half: a receiver kept every undecodable type name it had warned about, and
// warned about each: 200,000 made-up names cost it 70 MB and 128 MB of log. Now it remembers the
// first 64 and peer-caused warnings are rate-limited.
void tst_Hostile::manyUnknownTypes()
{
    Bus bus;
    Peer controller, receiver;
    QVERIFY(bus.join(controller, QStringLiteral("ctl")));
    receiver.captureErrors();
    QVERIFY(bus.join(receiver, QStringLiteral("r")));
    const IpmbPlatform::Socket raw = rawJoin(bus.name, QStringLiteral("inventor"));
    QVERIFY(raw != IpmbPlatform::InvalidSocket);
    constexpr int Names = 20000;
    QByteArray frames;
    for (int i = 0; i < Names; ++i) {
        const QByteArray name = "made.up.Type" + QByteArray::number(i);
        frames += messageFrame(IpmbSelector::unicast(IpmbLabelOp("r")), char(name.size()) + name);
    }
    QVERIFY(writeAll(raw, frames));
    const QByteArray last = receiver.waitFor("received type=made.up.Type" + QByteArray::number(Names - 1), 60000);
    QVERIFY2(last.contains("status=PayloadUnknownType"), last.constData());
    const qsizetype warnings = receiver.errorOutput().count("undecodable payload");
    QVERIFY2(warnings <= 100, qPrintable(QStringLiteral("%1 warnings for %2 unknown types").arg(warnings).arg(Names)));
    IpmbPlatform::closeSocket(raw);
}

// Hole 9, second half: a region's reference count is in memory its sender can write, and adding
// to a count near its limit overflowed an int in the controller (UBSan aborted it; this test is
// meant for ./dev.sh asan). Now the sum is computed wide and an out-of-range count is only logged.
void tst_Hostile::regionCountNearItsLimit()
{
    Bus bus;
    Peer controller, a, b;
    QVERIFY(bus.join({{controller, "ctl"}, {a, "r,a"}, {b, "r,b"}}));
    const IpmbPlatform::Socket raw = rawJoin(bus.name, QStringLiteral("forger"));
    QVERIFY(raw != IpmbPlatform::InvalidSocket);
    IpmbMemoryRegion region = IpmbMemoryRegion::create(4096);
    QVERIFY(!region.isNull());
    std::memcpy(region.data(), "from-sender", 12);
    IpmbMemoryRegionPrivate::addReferences(region, std::numeric_limits<qint32>::max() - 1);  // what a forger writes
    QByteArray payload;
    QVERIFY(IpmbPayloadCodec::encode(QStringLiteral("region"), payload));
    const QByteArray frame = messageFrame(IpmbSelector::multicast(IpmbLabelOp("r")), payload,
                                          QByteArray(1, char(IpmbProtocol::AttachmentKind::MemoryRegion)));
    QVERIFY(writeAll(raw, frame, {region.nativeHandle().handle()}));
    QVERIFY(!a.waitFor("region ok=1").isEmpty());
    QVERIFY(!b.waitFor("region ok=1").isEmpty());
    a.command("send unicast b 0 str after");
    QCOMPARE(field(b.waitFor("received"), "value"), QByteArray("after"));
    QVERIFY(!controller.hasPrinted("state ReconnectingState"));
    IpmbPlatform::closeSocket(raw);
}

// A payload section as the codec writes one, with the value bytes written by `write` on a stream
// set up as the codec's (doc/payloads.md, "Wire format").
template <typename Write>
static QByteArray payloadSection(const QByteArray &typeName, Write write)
{
    QByteArray bytes;
    bytes.append(char(typeName.size()));
    bytes.append(typeName);
    QByteArray value;
    QDataStream stream(&value, QIODevice::WriteOnly);
    stream.setVersion(QDataStream::Qt_6_4);
    stream.setByteOrder(QDataStream::LittleEndian);
    write(stream);
    return bytes + value;
}

// Holes 3, 4 and 5, across processes: a multicast of one hostile payload reached every receiver.
// A QDateTime whose time-zone id led to a named pipe hung each receiver's I/O thread in open();
// a QEasingCurve made the receiver call a function pointer from the bytes; a count from the
// bytes became an allocation of tens of GB. Now each receiver reports the payload as unreadable
// (or, for the curve, uses its own function) and goes on.
void tst_Hostile::hostilePayloads_data()
{
    QTest::addColumn<QByteArray>("payload");
    QTest::addColumn<QByteArray>("expected");  // start of the "received" line
    static QTemporaryDir fifoDir;               // outlives the rows
    const QByteArray fifo = QFile::encodeName(fifoDir.filePath(QStringLiteral("zone")));
    ::mkfifo(fifo.constData(), 0600);
    QTest::addRow("time zone id leading to a fifo")
            << payloadSection("QDateTime", [&](QDataStream &out) {
                   out << qint64(2460000) << quint32(0) << qint8(Qt::TimeZone)
                       << QString::fromUtf8("../../../../../../.." + fifo);
               })
            << QByteArray("received type=QDateTime status=PayloadMalformed");
    QTest::addRow("easing curve with a function pointer")
            << payloadSection("QEasingCurve", [](QDataStream &out) {
                   out << quint8(QEasingCurve::InQuad) << quint64(0x414141414141) << false;
               })
            << QByteArray("received type=QEasingCurve status=PayloadOk value=curve:0.25");
    QTest::addRow("easing curve claiming 4G points")
            << payloadSection("QEasingCurve", [](QDataStream &out) {
                   out << quint8(QEasingCurve::BezierSpline) << quint64(0) << true << 0.3 << 1.0 << 1.70158
                       << quint32(0xFFFFFFFF);
               })
            << QByteArray("received type=QEasingCurve status=PayloadMalformed");
}

void tst_Hostile::hostilePayloads()
{
    QFETCH(QByteArray, payload);
    QFETCH(QByteArray, expected);
    Bus bus;
    Peer controller, sender;
    Peer receivers[3];
    QVERIFY(bus.join({{controller, "ctl"}, {sender, "s"}, {receivers[0], "r"}, {receivers[1], "r"}, {receivers[2], "r"}}));
    const IpmbPlatform::Socket raw = rawJoin(bus.name, QStringLiteral("hostile"));
    QVERIFY(raw != IpmbPlatform::InvalidSocket);
    QVERIFY(writeAll(raw, messageFrame(IpmbSelector::multicast(IpmbLabelOp("r")), payload)));
    for (Peer &receiver : receivers) {
        const QByteArray line = receiver.waitFor("received", 10000);
        QVERIFY2(line.startsWith(expected), line.constData());
    }
    sender.command("send multicast r 0 str after");
    for (Peer &receiver : receivers)
        QCOMPARE(field(receiver.waitFor("received", 10000), "value"), QByteArray("after"));
    IpmbPlatform::closeSocket(raw);
}

// Hole 12: with one receiver stopped under a flood, the controller's process peaked at 53-59 MiB
// and stayed at 45-54 MiB after the episode, against the documented 16 MiB plus one message per
// stuck receiver. The controller keeps to that bound; the endpoint that shares its process has an
// inbox of its own, which the documentation now counts; and both give freed memory back to the
// system once the episode is over (the 4 KiB row kept 21 MiB before).
void tst_Hostile::stoppedReceiverMemory_data()
{
    QTest::addColumn<int>("size");
    QTest::addColumn<int>("count");     // four times the controller's queue limit, or more
    QTest::addColumn<QByteArray>("to");
    QTest::addColumn<int>("bound");     // MiB over the baseline at the peak
    // The sender, whose channels hold the queues (doc/protocol.md, "Direct channels"): 16 MiB per
    // receiver that does not keep up, plus one message, plus slack.
    QTest::addColumn<int>("senderBound");
    // The controller's process after the episode, over its baseline: 12 MiB, as a full parallel
    // ctest run once left 8.x MiB (heap fragments malloc_trim cannot return).
    QTest::addColumn<int>("afterBound");
    // The controller: 16 MiB for the stopped receiver, plus one message, plus slack.
    QTest::addRow("16 B") << 16 << 1000000 << QByteArray("unicast stuck") << 24 << 24 << 12;
    QTest::addRow("4 KiB") << 4096 << 16000 << QByteArray("unicast stuck") << 24 << 24 << 12;
    // The endpoint in the controller's process ("ctl") receives too, and its inbox holds what its
    // thread has not taken yet: 100,000 messages or 64 MiB at most, which at 16 B is 20-50 MiB
    // of bookkeeping, depending on how far behind a loaded machine lets that thread fall. Once
    // that backlog is taken, the endpoint's heap keeps fragments malloc_trim cannot return: up
    // to 18 MiB after a +32 MiB peak in a parallel ctest run (2026-12-02), where alone it keeps
    // 0-3 MiB. Still far below the 45-54 MiB the controller alone kept before the fix.
    QTest::addRow("16 B, with the controller's endpoint") << 16 << 1000000 << QByteArray("multicast stuck||ctl") << 96 << 40 << 24;
    QTest::addRow("4 KiB, with the controller's endpoint") << 4096 << 16000 << QByteArray("multicast stuck||ctl") << 96 << 40 << 24;
}

void tst_Hostile::stoppedReceiverMemory()
{
    QFETCH(int, size);
    QFETCH(int, count);
    QFETCH(QByteArray, to);
    QFETCH(int, bound);
    QFETCH(int, senderBound);
    QFETCH(int, afterBound);
    Bus bus;
    Peer controller, stuck, sender;
    QVERIFY(bus.join({{controller, "ctl"}, {stuck, "stuck"}, {sender, "sender"}}));
    // A first, smaller flood that the receiver takes: the baseline includes whatever an ordinary
    // flood leaves allocated.
    stuck.command("expect 20000");
    sender.command("flood unicast stuck 20000 " + QByteArray::number(size));
    QVERIFY(!stuck.waitFor("got 20000", 60000).isEmpty());
    QVERIFY(!sender.waitFor("sent").isEmpty());
    const qint64 baseline = procStatusKiB(controller.pid(), "VmRSS");
    // With direct channels (doc/protocol.md) the stopped receiver's queue is the sender's.
    const qint64 senderBaseline = procStatusKiB(sender.pid(), "VmRSS");
    stuck.signal(SIGSTOP);
    sender.command("flood " + to + ' ' + QByteArray::number(count) + ' ' + QByteArray::number(size));
    qint64 peak = 0;
    qint64 senderPeak = 0;
    QVERIFY(QTest::qWaitFor([&] {
        peak = qMax(peak, procStatusKiB(controller.pid(), "VmRSS"));
        senderPeak = qMax(senderPeak, procStatusKiB(sender.pid(), "VmRSS"));
        return sender.hasPrinted("sent");
    }, 120000));
    stuck.signal(SIGCONT);
    QVERIFY(!stuck.waitFor("dropped", 30000).isEmpty());
    sender.command("send unicast stuck 0 str after");
    QTRY_VERIFY_WITH_TIMEOUT(stuck.hasPrinted("received"), 30000);
    // Back to the baseline within a bound far below the 45-54 MiB kept before the fix.
    qint64 after = 0;
    const bool returned = QTest::qWaitFor([&] {
        after = procStatusKiB(controller.pid(), "VmRSS");
        return after - baseline <= afterBound * 1024;
    }, 20000);  // the endpoint there takes its backlog first: at one hop, more of it under load
    qInfo("controller RSS: %lld MiB before, %+lld MiB at the peak, %+lld MiB after; sender RSS: %lld MiB before, "
          "%+lld MiB at the peak", baseline / 1024, (peak - baseline) / 1024, (after - baseline) / 1024,
          senderBaseline / 1024, (senderPeak - senderBaseline) / 1024);
    if (!MemoryFiguresMeaningful)
        return;
    QVERIFY2(senderPeak - senderBaseline <= senderBound * 1024,
             qPrintable(QStringLiteral("the sender peaked %1 MiB over its baseline").arg((senderPeak - senderBaseline) / 1024)));
    QVERIFY2(peak - baseline <= bound * 1024,
             qPrintable(QStringLiteral("the peak was %1 MiB over the baseline").arg((peak - baseline) / 1024)));
    QVERIFY2(returned, qPrintable(QStringLiteral("%1 MiB over the baseline after the episode").arg((after - baseline) / 1024)));
}

// The payload section of a QString message.
static QByteArray stringPayload(const QString &text)
{
    QByteArray payload;
    IpmbPayloadCodec::encode(text, payload);
    return payload;
}

// A peer that got a direct channel (doc/protocol.md, "Direct channels") and writes garbage on it:
// the receiver closes that channel, with a logged reason, and goes on with everything else.
void tst_Hostile::garbageOnAChannel()
{
    Bus bus;
    Peer controller, receiver;
    QVERIFY(bus.join(controller, QStringLiteral("ctl")));
    receiver.captureErrors();
    QVERIFY(bus.join(receiver, QStringLiteral("r")));
    const auto fdcount = [&] {
        receiver.command("fdcount");
        return receiver.waitFor("fdcount").mid(8).toInt();
    };
    const int before = fdcount();
    const IpmbPlatform::Socket raw = rawJoin(bus.name, QStringLiteral("intruder"));
    QVERIFY(raw != IpmbPlatform::InvalidSocket);
    IpmbConnection connection(raw);
    QByteArray introduce;
    IpmbProtocol::appendIntroduce(introduce, receiver.id());
    QVERIFY(writeAll(raw, introduce));
    IpmbNativeHandle socket;
    QVERIFY(QTest::qWaitFor([&] {
        connection.readFrames([&](const IpmbConnection::Frame &frame) {
            if (frame.header.type == IpmbProtocol::FrameType::Channel && !frame.handles.isEmpty())
                socket = frame.handles.at(0);
            return IpmbConnection::Action::Consumed;
        });
        return !socket.isNull();
    }, 10000));
    const IpmbPlatform::Socket channel = IpmbPlatform::Socket(socket.handle());
    // What the channel is for works: the receiver names this process as the sender.
    QVERIFY(writeAll(channel, messageFrame(IpmbSelector::unicast(IpmbLabelOp("r")), stringPayload(QStringLiteral("direct")))));
    const QByteArray direct = receiver.waitFor("received");
    QCOMPARE(field(direct, "value"), QByteArray("direct"));
    QCOMPARE(field(direct, "from"), QByteArray::number(QCoreApplication::applicationPid()));
    QCOMPARE(fdcount(), before + 1);
    // Then a header that is not one: the receiver closes the channel (and only that).
    QVERIFY(writeAll(channel, QByteArray(IpmbProtocol::HeaderSize, 'X')));
    QVERIFY(closedByPeer(channel));
    QTRY_COMPARE_WITH_TIMEOUT(fdcount(), before, 10000);
    QTRY_VERIFY_WITH_TIMEOUT(receiver.errorOutput().contains("closing the channel of endpoint"), 10000);
    QVERIFY(writeAll(raw, messageFrame(IpmbSelector::unicast(IpmbLabelOp("r")), stringPayload(QStringLiteral("relayed")))));
    QCOMPARE(field(receiver.waitFor("received"), "value"), QByteArray("relayed"));
}

QTEST_MAIN(tst_Hostile)
#include "tst_hostile.moc"
