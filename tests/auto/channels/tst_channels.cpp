// SPDX-License-Identifier: BSD-3-Clause
// Direct channels across real processes (doc/protocol.md, "Direct channels"): every process is the
// multi-process helper (tests/auto/multiprocess/peer); the first to join hosts the controller.
// A channel shows as one descriptor more at each of its ends ("fdcount"), which is how these
// tests see that one was opened, and closed. A sender's first message always goes through the
// controller (the sender has no membership yet), so a flood from a fresh sender switches from the
// relayed path to the direct one while it runs.

#include "ipmbtestpeer.h"

#include <QtCore/qelapsedtimer.h>
#include <QtTest/qtest.h>

#include <csignal>
#include <memory>
#include <vector>

using namespace IpmbTest;

class tst_Channels : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void orderAcrossTheSwitch();
    void controllerKilledMidFlood();
    void unicastFairAmongThree();
    void multicastToEight();
    void peerDeathClosesTheChannel();
    void rejoinTakesEffectForNewSends();
    void idleChannelCloses();
    void capOf256Channels();
};

namespace {

int fdcount(Peer &peer)
{
    peer.command("fdcount");
    return peer.waitFor("fdcount").mid(8).toInt();
}

QByteArray countOf(Peer &peer, const QByteArray &name)
{
    return field(peer.counts(), name);
}

// Sends `command` (a "send ..." that is not counted) until the sender has `channels` more
// descriptors than `before`: its first send asks for the membership, and what it sends before that
// arrives goes through the controller without opening a channel.
bool openChannels(Peer &sender, const QByteArray &command, int before, int channels)
{
    return QTest::qWaitFor([&] {
        sender.command(command);
        return !sender.waitFor("sent").isEmpty() && fdcount(sender) == before + channels;
    }, 10000);
}

} // namespace

// 100,000 messages from one sender: the first through the controller, the rest on the channel
// that opens meanwhile; every one arrives once, in order.
void tst_Channels::orderAcrossTheSwitch()
{
    Bus bus;
    Peer controller, sender, receiver;
    QVERIFY(bus.join({{controller, "ctl"}, {sender, "sender"}, {receiver, "receiver"}}));
    const int senderBefore = fdcount(sender);
    const int receiverBefore = fdcount(receiver);
    sender.command("flood unicast receiver 100000 16");
    receiver.command("expect 100000");
    QCOMPARE(receiver.waitFor("got", 60000), QByteArray("got 100000"));
    const QByteArray counts = receiver.counts();
    QCOMPARE(field(counts, "n"), QByteArray("100000"));
    QCOMPARE(field(counts, "inorder"), QByteArray("1"));
    QCOMPARE(field(counts, "intact"), QByteArray("1"));
    QCOMPARE(field(counts, "dropped"), QByteArray("0"));
    QCOMPARE(fdcount(sender), senderBefore + 1);
    QCOMPARE(fdcount(receiver), receiverBefore + 1);
}

// The process that hosts the controller is SIGKILLed while two others flood each other over their
// channel: nothing between them is lost, and the order holds.
void tst_Channels::controllerKilledMidFlood()
{
    Bus bus;
    Peer controller, a, b;
    QVERIFY(bus.join({{controller, "ctl"}, {a, "a"}, {b, "b"}}));
    QVERIFY(controller.isController());
    // The channel first: what went through the controller before it opened may be lost with it.
    QVERIFY(openChannels(a, "send unicast b 0 str hello", fdcount(a), 1));
    a.command("flood unicast b 1000 64");
    b.command("expect 1000");
    QCOMPARE(b.waitFor("got"), QByteArray("got 1000"));

    const quint64 flood = 1000000;  // about a second: the kill lands in the middle
    a.command("flood unicast b " + QByteArray::number(flood) + " 64 1000");
    controller.kill();  // SIGKILL, with the flood under way
    b.command("expect " + QByteArray::number(1000 + flood));
    QCOMPARE(b.waitFor("got", 60000), "got " + QByteArray::number(1000 + flood));
    const QByteArray counts = b.counts();
    QCOMPARE(field(counts, "n"), QByteArray::number(1000 + flood));
    QCOMPARE(field(counts, "inorder"), QByteArray("1"));
    QCOMPARE(field(counts, "intact"), QByteArray("1"));
    // One of them took over, and the other way works too.
    b.command("send unicast a 0 str back");
    QCOMPARE(field(a.waitFor("received"), "value"), QByteArray("back"));
}

// A unicast goes to one match, taken in turn by the sender itself: three workers share 3,000
// messages evenly, each over a channel of its own.
void tst_Channels::unicastFairAmongThree()
{
    Bus bus;
    Peer controller, sender, w1, w2, w3;
    QVERIFY(bus.join({{controller, "ctl"}, {sender, "sender"}, {w1, "worker"}, {w2, "worker"}, {w3, "worker"}}));
    QVERIFY(openChannels(sender, "send multicast worker 0 str hello", fdcount(sender), 3));
    sender.command("flood unicast worker 3000 16");
    QVERIFY(!sender.waitFor("sent").isEmpty());
    std::vector<Peer *> workers {&w1, &w2, &w3};
    const auto total = [&] {
        quint64 sum = 0;
        for (Peer *w : workers)
            sum += countOf(*w, "n").toULongLong();
        return sum;
    };
    QTRY_COMPARE_WITH_TIMEOUT(total(), quint64(3000), 20000);
    for (Peer *w : workers) {
        const quint64 n = countOf(*w, "n").toULongLong();
        QVERIFY2(n >= 900 && n <= 1100, QByteArray::number(n).constData());
        QCOMPARE(countOf(*w, "intact"), QByteArray("1"));
    }
}

// A multicast to eight receivers: each gets every message once and in order, each on its channel.
void tst_Channels::multicastToEight()
{
    Bus bus;
    Peer controller, sender;
    QVERIFY(bus.join({{controller, "ctl"}, {sender, "sender"}}));
    std::vector<std::unique_ptr<Peer>> viewers;
    for (int i = 0; i < 8; ++i) {
        viewers.push_back(std::make_unique<Peer>());
        QVERIFY(bus.join(*viewers.back(), QStringLiteral("viewer")));
    }
    QVERIFY(openChannels(sender, "send multicast viewer 0 str hello", fdcount(sender), 8));
    sender.command("flood multicast viewer 5000 16");
    for (const auto &viewer : viewers) {
        viewer->command("expect 5000");
        QCOMPARE(viewer->waitFor("got", 30000), QByteArray("got 5000"));
        const QByteArray counts = viewer->counts();
        QCOMPARE(field(counts, "n"), QByteArray("5000"));
        QCOMPARE(field(counts, "inorder"), QByteArray("1"));
        QCOMPARE(field(counts, "intact"), QByteArray("1"));
    }
}

// A receiver that dies takes its channel with it: the sender's descriptor is closed, it hears that
// the peer left, and its next messages for that label go to whoever matches now.
void tst_Channels::peerDeathClosesTheChannel()
{
    Bus bus;
    Peer controller, sender, doomed, heir;
    QVERIFY(bus.join({{controller, "ctl"}, {sender, "sender", {QStringLiteral("--watch-peers")}}, {doomed, "worker"}}));
    const int before = fdcount(sender);
    QVERIFY(openChannels(sender, "send unicast worker 0 str hello", before, 1));
    doomed.kill();  // SIGKILL
    QVERIFY(!sender.waitFor("peer-left").isEmpty());
    QTRY_COMPARE_WITH_TIMEOUT(fdcount(sender), before, 10000);
    QVERIFY(bus.join(heir, QStringLiteral("worker")));
    QVERIFY(!sender.waitFor("peer-joined").isEmpty());
    sender.command("send unicast worker 0 str after");
    QCOMPARE(field(heir.waitFor("received"), "value"), QByteArray("after"));
}

// An endpoint that leaves and joins again with another label gets what is sent to its new label,
// and nothing sent to its old one, although its old channel carried that label's messages.
void tst_Channels::rejoinTakesEffectForNewSends()
{
    Bus bus;
    Peer controller, sender, mover;
    QVERIFY(bus.join({{controller, "ctl"}, {sender, "sender", {QStringLiteral("--watch-peers")}}, {mover, "old"}}));
    sender.command("flood unicast old 1000 16");
    mover.command("expect 1000");
    QCOMPARE(mover.waitFor("got"), QByteArray("got 1000"));
    mover.command("rejoin new");
    QVERIFY(!mover.waitFor("joined").isEmpty());
    QVERIFY(!sender.waitFor("peer-left").isEmpty());
    QVERIFY(!sender.waitFor("peer-joined").isEmpty());
    sender.command("send unicast old 0 str to-old");
    sender.command("send unicast new 0 str to-new");
    QCOMPARE(field(mover.waitFor("received"), "value"), QByteArray("to-new"));  // and not to-old first
}

// A channel unused for 30 s closes at both ends (the real limit: this test takes that long); the
// next message opens a new one, behind everything the old one carried.
void tst_Channels::idleChannelCloses()
{
    Bus bus;
    Peer controller, sender, receiver;
    QVERIFY(bus.join({{controller, "ctl"}, {sender, "sender"}, {receiver, "receiver"}}));
    const int senderBefore = fdcount(sender);
    const int receiverBefore = fdcount(receiver);
    QVERIFY(openChannels(sender, "send unicast receiver 0 str hello", senderBefore, 1));
    sender.command("flood unicast receiver 1000 16");
    QTRY_COMPARE_WITH_TIMEOUT(fdcount(receiver), receiverBefore + 1, 10000);
    QElapsedTimer idle;
    idle.start();
    QTRY_COMPARE_WITH_TIMEOUT(fdcount(sender), senderBefore, 45000);
    QTRY_COMPARE_WITH_TIMEOUT(fdcount(receiver), receiverBefore, 10000);
    QVERIFY2(idle.elapsed() >= 29000, QByteArray::number(idle.elapsed()).constData());
    sender.command("flood unicast receiver 1000 16 1000");
    receiver.command("expect 2000");
    QCOMPARE(receiver.waitFor("got"), QByteArray("got 2000"));
    QCOMPARE(countOf(receiver, "inorder"), QByteArray("1"));
    QTRY_COMPARE_WITH_TIMEOUT(fdcount(sender), senderBefore + 1, 10000);
}

// One sender multicasts to 300 endpoints (three helper processes of 100): it opens 256 channels,
// the limit, and reaches the other 44 through the controller. Every endpoint gets every message
// once.
void tst_Channels::capOf256Channels()
{
    Bus bus;
    Peer controller, sender;
    QVERIFY(bus.join({{controller, "ctl"}, {sender, "sender"}}));
    std::vector<std::unique_ptr<Peer>> fleets;
    for (int i = 0; i < 3; ++i) {
        fleets.push_back(std::make_unique<Peer>(QStringLiteral(IPMBQT_SCALE_PEER)));
        fleets.back()->start({QStringLiteral("--bus"), bus.name, QStringLiteral("--count"), QStringLiteral("100"),
                              QStringLiteral("--prefix"), QStringLiteral("p%1").arg(i)});
    }
    for (const auto &fleet : fleets)
        QVERIFY(!fleet->waitFor("joined", 60000).isEmpty());
    // 256 channels, and the epoll set that the I/O thread keeps once it polls 64 sockets or more
    // (IpmbPlatform::poll()).
    const int before = fdcount(sender);
    const int expected = before + 256 + 1;
    int round = 0;
    int last = before;
    QVERIFY2(QTest::qWaitFor([&] {
        sender.command("send multicast scale 0 str mc:warm" + QByteArray::number(++round));
        return !sender.waitFor("sent").isEmpty() && (last = fdcount(sender)) == expected;
    }, 30000), qPrintable(QStringLiteral("%1 descriptors, expected %2 (%3 before)").arg(last).arg(expected).arg(before)));
    sender.command("send multicast scale 0 str mc:final");
    for (const auto &fleet : fleets)
        QCOMPARE(fleet->waitFor("complete tag=final", 30000), QByteArray("complete tag=final n=100"));
    for (const auto &fleet : fleets) {
        fleet->command("count");
        const QByteArray count = fleet->waitFor("count");
        QCOMPARE(field(count, "exact"), QByteArray("1"));
        QCOMPARE(field(count, "duplicates"), QByteArray("0"));
    }
    QCOMPARE(fdcount(sender), expected);  // and not one more
}

QTEST_MAIN(tst_Channels)
#include "tst_channels.moc"
