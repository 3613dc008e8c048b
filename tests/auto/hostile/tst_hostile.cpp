// SPDX-License-Identifier: BSD-3-Clause
// The bus attacked from outside: by a process of another user, and by raw peers of the same user
// that speak the wire protocol (this test process). Each test reproduces one hole that an outside
// check found (the issue "Trust") and checks that the offender gets nothing and the bus goes on.

#include "ipmbtestpeer.h"

#include <IpmbQt/IpmbEndpoint>

#include "ipmbplatform_p.h"
#include "ipmbprotocol_p.h"
#include "ipmbselectorcodec_p.h"

#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qdir.h>
#include <QtTest/qtest.h>

#include <cstring>

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
        const QString bus = uniqueBusName();
        Peer a, b, c, squatter;
        QVERIFY(a.join(bus, QStringLiteral("a")));
        QVERIFY(a.isController());
        QVERIFY(b.join(bus, QStringLiteral("b")));
        QVERIFY(c.join(bus, QStringLiteral("c")));
        nobody.start(squatter, {QStringLiteral("--squat-loop"), QString::fromUtf8(squatAddress(bus))});
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

// A raw endpoint: connected, Hello sent and Welcome read. InvalidSocket on failure.
static IpmbPlatform::Socket rawJoin(const QString &bus, const QString &label)
{
    const IpmbPlatform::Socket socket = connectRaw(bus);
    if (socket == IpmbPlatform::InvalidSocket)
        return socket;
    QByteArray hello;
    IpmbProtocol::appendHello(hello, QByteArray(), IpmbLabel{label});
    const IpmbPlatform::IoSlice slice {hello.constData(), hello.size()};
    IpmbPlatform::write(socket, &slice, 1);
    QByteArray welcome;
    const bool ok = QTest::qWaitFor([&] {
        char buffer[256];
        const IpmbPlatform::IoResult r = IpmbPlatform::read(socket, buffer, sizeof(buffer));
        if (r.status == IpmbPlatform::IoStatus::Ok)
            welcome.append(buffer, r.bytes);
        return welcome.size() >= IpmbProtocol::HeaderSize + 12;
    }, 10000);
    if (!ok) {
        IpmbPlatform::closeSocket(socket);
        return IpmbPlatform::InvalidSocket;
    }
    return socket;
}

// Writes all of `bytes` (and `handles` with the first byte), waiting for room; false if the peer
// closed the connection first.
static bool writeAll(IpmbPlatform::Socket socket, QByteArrayView bytes, const QList<qintptr> &handles = {})
{
    qsizetype done = 0;
    bool handlesSent = handles.isEmpty();
    QDeadlineTimer deadline(60000);
    while (done < bytes.size() && !deadline.hasExpired()) {
        const IpmbPlatform::IoSlice slice {bytes.data() + done, bytes.size() - done};
        const IpmbPlatform::IoResult r = handlesSent ? IpmbPlatform::write(socket, &slice, 1)
                                                     : IpmbPlatform::write(socket, &slice, 1, handles.constData(),
                                                                           int(handles.size()));
        if (r.status == IpmbPlatform::IoStatus::Ok) {
            done += qsizetype(r.bytes);
            handlesSent = true;
        } else if (r.status == IpmbPlatform::IoStatus::WouldBlock) {
            IpmbPlatform::PollEntry entry {socket, false, true, false, false};
            IpmbPlatform::poll(&entry, 1, 100);
        } else {
            return false;
        }
    }
    return done == bytes.size();
}

// Whether the controller closed `socket` (reading and discarding what it sends until then).
static bool closedByPeer(IpmbPlatform::Socket socket, int msecs = 10000)
{
    return QTest::qWaitFor([&] {
        char buffer[4096];
        return IpmbPlatform::read(socket, buffer, sizeof(buffer)).status == IpmbPlatform::IoStatus::Closed;
    }, msecs);
}

// A Message frame as an endpoint writes it, with a QByteArray payload whose section is
// `payloadSection` bytes long.
static QByteArray messageFrame(const IpmbSelector &selector, qint64 payloadSection)
{
    QByteArray selectorBytes;
    IpmbSelectorCodec::appendSelector(selectorBytes, selector);
    IpmbProtocol::Header header;
    header.type = IpmbProtocol::FrameType::Message;
    header.selectorLength = quint32(selectorBytes.size());
    header.bodyLength = quint32(selectorBytes.size() + payloadSection);
    QByteArray frame(IpmbProtocol::HeaderSize + header.bodyLength, '\0');
    IpmbProtocol::writeHeader(frame.data(), header);
    std::memcpy(frame.data() + IpmbProtocol::HeaderSize, selectorBytes.constData(), size_t(selectorBytes.size()));
    std::memcpy(frame.data() + IpmbProtocol::HeaderSize + selectorBytes.size(), "\x0aQByteArray", 11);
    return frame;
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
    QTest::addRow("largest payload") << qint64(IpmbProtocol::MaxPayload) << true;
}

void tst_Hostile::largestMessage()
{
    QFETCH(qint64, payloadSection);
    QFETCH(bool, delivered);
    const QString bus = uniqueBusName();
    // The large message goes to `big`; the messages of a well-behaved sender to both.
    Peer controller, receiver, big, sender;
    QVERIFY(controller.join(bus, QStringLiteral("ctl")));
    QVERIFY(receiver.join(bus, QStringLiteral("r")));
    QVERIFY(big.join(bus, QStringLiteral("big")));
    QVERIFY(sender.join(bus, QStringLiteral("s")));
    const IpmbPlatform::Socket raw = rawJoin(bus, QStringLiteral("raw"));
    QVERIFY(raw != IpmbPlatform::InvalidSocket);

    const IpmbSelector toReceiver = IpmbSelector::unicast(IpmbLabelOp("big"));
    QByteArray selectorBytes;
    IpmbSelectorCodec::appendSelector(selectorBytes, toReceiver);
    if (payloadSection < 0)
        payloadSection = IpmbProtocol::MaxMessageBody - selectorBytes.size();
    const QByteArray frame = messageFrame(toReceiver, payloadSection);
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

QTEST_MAIN(tst_Hostile)
#include "tst_hostile.moc"
