// SPDX-License-Identifier: BSD-3-Clause
// Presence (doc/protocol.md, "Presence"; issue 12): peers(), peerJoined() and peerLeft() across
// real processes, through leaving, crashing and a failover.
#include "ipmbtestpeer.h"

#include <IpmbQt/IpmbEndpoint>

#include <QtCore/qset.h>
#include <QtCore/qthread.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

using namespace IpmbTest;
using namespace Qt::StringLiterals;

class tst_Presence : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void fivePeersListedJoinedAndLeft();
    void failoverConvergesWithoutPhantoms();
    void endpointApi();
    void joinedBeforeFirstMessageLeftAfterLast();
    void watchTurnedOnLater();
};

// The ids of the peers `peer` has reported as joined (or as left) so far.
static QSet<quint32> reported(Peer &peer, const QByteArray &prefix)
{
    QSet<quint32> ids;
    for (const QByteArray &line : peer.printed(prefix))
        ids.insert(field(line, "id").toUInt());
    return ids;
}

static int timesReported(Peer &peer, const QByteArray &prefix, quint32 id)
{
    int n = 0;
    for (const QByteArray &line : peer.printed(prefix))
        n += field(line, "id").toUInt() == id;
    return n;
}

static QByteArray peersAnswer(Peer &peer)
{
    peer.command("peers");
    return peer.waitFor("peers ");
}

static QByteArray idList(QList<quint32> ids)
{
    std::sort(ids.begin(), ids.end());
    QByteArrayList text;
    for (const quint32 id : ids)
        text.append(QByteArray::number(id));
    return text.join(',');
}

// Five processes that watch: each lists the four others (with the controller's host marked),
// and hears once of the one that leaves and of the one that is killed.
void tst_Presence::fivePeersListedJoinedAndLeft()
{
    Bus bus;
    Peer p[5];
    const QStringList watch {u"--watch-peers"_s};
    QVERIFY(bus.join({{p[0], "one", watch}, {p[1], "two", watch}, {p[2], "three", watch},
                      {p[3], "four", watch}, {p[4], "five", watch}}));
    QVERIFY(p[0].isController());
    QSet<quint32> all;
    for (Peer &peer : p) {
        QVERIFY(peer.id() != 0);
        all.insert(peer.id());
    }
    QCOMPARE(all.size(), 5);
    for (Peer &peer : p) {
        QSet<quint32> others = all;
        others.remove(peer.id());
        QTRY_COMPARE(reported(peer, "peer-joined"), others);
    }
    // What the others say of p[0]: its pid, its label, and that it hosts the controller.
    const QByteArrayList aboutFirst = p[3].printed("peer-joined id=" + QByteArray::number(p[0].id()) + ' ');
    QCOMPARE(aboutFirst.size(), 1);
    QCOMPARE(field(aboutFirst.first(), "pid").toLongLong(), p[0].pid());
    QCOMPARE(field(aboutFirst.first(), "label"), QByteArray("one"));
    QCOMPARE(field(aboutFirst.first(), "controller"), QByteArray("1"));
    QCOMPARE(field(p[0].printed("peer-joined id=" + QByteArray::number(p[3].id()) + ' ').value(0), "controller"),
             QByteArray("0"));

    const quint32 leaver = p[2].id();
    const quint32 crasher = p[3].id();
    QVERIFY(p[2].quit());
    p[3].signal(SIGKILL);
    for (int i : {0, 1, 4}) {
        QTRY_COMPARE(timesReported(p[i], "peer-left", leaver), 1);
        QTRY_COMPARE(timesReported(p[i], "peer-left", crasher), 1);
    }
    for (int i : {0, 1, 4}) {
        QList<quint32> expected;
        for (int j : {0, 1, 4}) {
            if (j != i)
                expected.append(p[j].id());
        }
        const QByteArray answer = peersAnswer(p[i]);
        QCOMPARE(field(answer, "n"), QByteArray("2"));
        QCOMPARE(field(answer, "ids"), idList(expected));
        QCOMPARE(p[i].printed("peer-left").size(), 2);  // nobody else
    }
}

// The controller's process and another are killed together. Every survivor ends up listing
// exactly the survivors, hears once of each dead endpoint and nothing of the survivors, and
// keeps its id.
void tst_Presence::failoverConvergesWithoutPhantoms()
{
    Bus bus;
    Peer controller, victim, s[3];
    const QStringList watch {u"--watch-peers"_s};
    QVERIFY(bus.join({{controller, "controller"}, {victim, "victim"}, {s[0], "s0", watch}, {s[1], "s1", watch},
                      {s[2], "s2", watch}}));
    QVERIFY(controller.isController());
    for (Peer &peer : s)
        QTRY_COMPARE(reported(peer, "peer-joined").size(), 4);

    QElapsedTimer clock;
    clock.start();
    controller.signal(SIGKILL);
    victim.signal(SIGKILL);
    for (Peer &peer : s) {
        QTRY_COMPARE(timesReported(peer, "peer-left", controller.id()), 1);
        QTRY_COMPARE(timesReported(peer, "peer-left", victim.id()), 1);
    }
    const qint64 converged = clock.elapsed();
    qInfo("all three survivors reported both dead endpoints within %lld ms", converged);
    QVERIFY2(converged < 10000, "within the failover bound (joinTimeout)");
    for (Peer &peer : s) {
        // Reconnected, with the id it had.
        const QByteArray rejoined = peer.waitFor("joined");
        QVERIFY(!rejoined.isEmpty());
        QCOMPARE(field(rejoined, "id").toUInt(), peer.id());
    }
    for (Peer &peer : s) {
        QList<quint32> expected;
        for (Peer &other : s) {
            if (&other != &peer)
                expected.append(other.id());
        }
        const QByteArray answer = peersAnswer(peer);
        QCOMPARE(field(answer, "ids"), idList(expected));
        QCOMPARE(peer.printed("peer-left").size(), 2);      // the two dead ones, once each
        QCOMPARE(peer.printed("peer-joined").size(), 4);    // no second join for a survivor
    }
    // One survivor hosts the controller now, and the others' lists say so.
    int hosts = 0;
    for (Peer &peer : s)
        hosts += peer.printed("joined controller=1").size();
    QCOMPARE(hosts, 1);
}

// The C++ API in this process: whenPeer() with a continuation, waitForPeer(), the signals, and
// a cancelled future.
void tst_Presence::endpointApi()
{
    Bus bus;
    IpmbEndpoint endpoint;
    endpoint.setIdentifier(bus.name);
    endpoint.setLabel(IpmbLabel{u"api"_s});
    endpoint.join();
    QVERIFY(endpoint.waitForJoined(10000));
    QVERIFY(!endpoint.isWatchingPeers());
    QVERIFY(endpoint.peers().isEmpty());

    QSignalSpy joined(&endpoint, &IpmbEndpoint::peerJoined);
    QSignalSpy left(&endpoint, &IpmbEndpoint::peerLeft);
    QSignalSpy watching(&endpoint, &IpmbEndpoint::watchingPeersChanged);
    QObject context;
    QThread *ranIn = nullptr;
    IpmbPeer found;
    QFuture<IpmbPeer> future = endpoint.whenPeer(IpmbLabelOp(u"worker"_s));
    QVERIFY(endpoint.isWatchingPeers());
    QCOMPARE(watching.size(), 1);
    future.then(&context, [&](const IpmbPeer &peer) {
        ranIn = QThread::currentThread();
        found = peer;
    });
    QFuture<IpmbPeer> cancelled = endpoint.whenPeer(IpmbLabelOp(u"nobody"_s));
    cancelled.cancel();

    Peer worker;
    QVERIFY(bus.join(worker, u"worker,gpu"_s));
    QTRY_VERIFY(ranIn);
    QCOMPARE(ranIn, QThread::currentThread());
    QCOMPARE(found.endpointId(), worker.id());
    QCOMPARE(found.pid(), worker.pid());
    QCOMPARE(found.uid(), IpmbPlatform::currentUserId());
    QCOMPARE(found.label(), (IpmbLabel{u"worker"_s, u"gpu"_s}));
    QVERIFY(!found.isController());  // this process hosts it
    QVERIFY(found.joinedAt().isValid());
    QVERIFY(qAbs(found.joinedAt().msecsTo(QDateTime::currentDateTime())) < 60000);
    QCOMPARE(joined.size(), 1);
    QCOMPARE(joined.first().first().value<IpmbPeer>(), found);
    QVERIFY(cancelled.isCanceled());
    QCOMPARE(endpoint.peers(), QList<IpmbPeer>{found});
    QCOMPARE(endpoint.peers(IpmbLabelOp(u"gpu"_s)).size(), 1);
    QVERIFY(endpoint.peers(IpmbLabelOp(u"cpu"_s)).isEmpty());

    // A peer already there: at once.
    QVERIFY(endpoint.waitForPeer(IpmbLabelOp(u"worker"_s), 0));
    QVERIFY(endpoint.whenPeer(IpmbLabelOp(u"gpu"_s)).isFinished());
    // Nobody: a timeout, with the reason.
    QVERIFY(!endpoint.waitForPeer(IpmbLabelOp(u"nobody"_s), 100));
    QCOMPARE(endpoint.error(), IpmbEndpoint::TimeoutError);
    QVERIFY(endpoint.errorString().contains(u"nobody"_s));

    // One that joins while waitForPeer() blocks.
    Peer late;
    late.start({u"--bus"_s, bus.name, u"--label"_s, u"late"_s});
    QVERIFY(endpoint.waitForPeer(IpmbLabelOp(u"late"_s), 10000));
    QCOMPARE(joined.size(), 2);

    QVERIFY(worker.quit());
    QVERIFY(left.wait(10000));
    QCOMPARE(left.first().first().value<IpmbPeer>().endpointId(), found.endpointId());
    QCOMPARE(endpoint.peers().size(), 1);

    // Leaving the bus cancels what waits and empties the list, without signals.
    QFuture<IpmbPeer> pending = endpoint.whenPeer(IpmbLabelOp(u"nobody"_s));
    endpoint.leave();
    QVERIFY(pending.isCanceled());
    QVERIFY(endpoint.peers().isEmpty());
    QCOMPARE(left.size(), 1);
}

// A peer's joining is reported before its first message, its leaving after its last.
void tst_Presence::joinedBeforeFirstMessageLeftAfterLast()
{
    Bus bus;
    IpmbEndpoint endpoint;
    endpoint.setIdentifier(bus.name);
    endpoint.setLabel(IpmbLabel{u"listener"_s});
    endpoint.setWatchingPeers(true);
    QStringList events;
    connect(&endpoint, &IpmbEndpoint::peerJoined, this, [&](const IpmbPeer &p) {
        events.append(u"joined "_s + QString::number(p.pid()));
    });
    connect(&endpoint, &IpmbEndpoint::peerLeft, this, [&](const IpmbPeer &p) {
        events.append(u"left "_s + QString::number(p.pid()));
    });
    connect(&endpoint, &IpmbEndpoint::messageReceived, this, [&](const IpmbMessage &m) {
        events.append(u"message "_s + QString::number(m.senderPid()) + u' ' + m.payload().toString());
    });
    endpoint.join();
    QVERIFY(endpoint.waitForJoined(10000));

    for (int round = 0; round < 3; ++round) {
        events.clear();
        Peer talker;
        talker.start({u"--bus"_s, bus.name, u"--label"_s, u"talker"_s});
        const QString pid = QString::number(talker.pid());  // gone once it exited
        QVERIFY(talker.pid() > 0);
        // Sent while joining (pipelined behind the Hello), then it leaves and exits while this
        // thread waits without running its event loop: the Joined, the messages and the Left
        // all wait for one syncFromIo().
        for (int i = 0; i < 5; ++i)
            talker.command("send unicast listener 0 str m" + QByteArray::number(i));
        QVERIFY(talker.quit());
        QTRY_VERIFY2(events.contains(u"left "_s + pid), qPrintable(events.join(u"; "_s)));
        QStringList expected {u"joined "_s + pid};
        for (int i = 0; i < 5; ++i)
            expected.append(u"message "_s + pid + u" m"_s + QString::number(i));
        expected.append(u"left "_s + pid);
        QCOMPARE(events, expected);
    }
}

// A peer that turns watching on after joining gets the list then.
void tst_Presence::watchTurnedOnLater()
{
    Bus bus;
    Peer a, b, c;
    QVERIFY(bus.join({{a, "a"}, {b, "b"}, {c, "c"}}));
    QVERIFY(b.printed("peer-joined").isEmpty());
    b.command("watch 1");
    QTRY_COMPARE(reported(b, "peer-joined"), (QSet<quint32>{a.id(), c.id()}));
    b.command("watch 0");
    QCOMPARE(field(peersAnswer(b), "n"), QByteArray("0"));
    QVERIFY(c.quit());
    b.command("watch 1");
    QTRY_COMPARE(b.printed("peer-joined").size(), 3);  // a again; c is gone
    QCOMPARE(field(peersAnswer(b), "ids"), QByteArray::number(a.id()));
    QVERIFY(b.printed("peer-left").isEmpty());
}

QTEST_GUILESS_MAIN(tst_Presence)
#include "tst_presence.moc"
