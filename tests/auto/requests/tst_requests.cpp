// SPDX-License-Identifier: BSD-3-Clause
// Request/reply and undeliverable notices (doc/presence-and-requests.md; issue 12), across real
// processes: ipmbqt_request_peer answers (or holds, or asks), this test's endpoint asks.
#include "ipmbtestpeer.h"

#include <IpmbQt/IpmbEndpoint>

#include <QtCore/qdir.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qthread.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

#include <list>

using namespace IpmbTest;
using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

namespace {

// What a request's future came to, recorded by continuations run in `context`'s thread.
struct Outcome
{
    bool done = false;
    QString value;
    qint64 from = -1;
    IpmbEndpoint::Error error = IpmbEndpoint::NoError;
    QString errorString;
    QThread *thread = nullptr;
};

void watch(QFuture<IpmbMessage> future, QObject *context, Outcome *outcome)
{
    future.then(context, [outcome](const IpmbMessage &reply) {
        outcome->value = reply.payload().toString();
        outcome->from = reply.senderPid();
        outcome->thread = QThread::currentThread();
        outcome->done = true;
    }).onFailed(context, [outcome](const IpmbRequestError &e) {
        outcome->error = e.error();
        outcome->errorString = e.errorString();
        outcome->thread = QThread::currentThread();
        outcome->done = true;
    });
}

Peer requestPeer() { return Peer(QStringLiteral(IPMBQT_REQUEST_PEER)); }

// This process's open descriptors: a direct channel is one more.
qsizetype openDescriptors()
{
    return QDir(u"/proc/self/fd"_s).entryList(QDir::AllEntries | QDir::System | QDir::NoDotAndDotDot).size();
}

} // namespace

class tst_Requests : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void init();
    void cleanup();

    void replyInTheContextThread();
    void tenThousandFromTwoToThree();
    void timeout();
    void noRoute();
    void replierKilled();
    void requesterLeaves();
    void cancel();
    void oneReplyOnly();
    void multicastRefused();
    void failoverFailsRequests();
    void failoverKeepsRequestsOnChannels();
    void undeliverableNotices();

private:
    bool joinAsker()
    {
        m_endpoint->join();
        return m_endpoint->waitForJoined(10000);
    }
    bool joinReplier(Peer &peer, const char *label, const char *mode)
    {
        return m_bus->join(peer, QString::fromUtf8(label), {u"--replier"_s, QString::fromUtf8(mode)});
    }
    // A request of this test's endpoint, whose outcome continuations record in this thread.
    Outcome &ask(const IpmbSelector &selector, const QString &payload, int timeoutMsecs)
    {
        Outcome &outcome = m_outcomes.emplace_back();
        watch(m_endpoint->request(selector, payload, timeoutMsecs), this, &outcome);
        return outcome;
    }

    std::unique_ptr<Bus> m_bus;
    std::unique_ptr<IpmbEndpoint> m_endpoint;   // this process: asks
    // Stable addresses for the continuations, kept for the whole run: one that was posted
    // before a test ended may still run after it.
    std::list<Outcome> m_outcomes;
};

void tst_Requests::init()
{
    m_bus = std::make_unique<Bus>();
    m_endpoint = std::make_unique<IpmbEndpoint>();
    m_endpoint->setIdentifier(m_bus->name);
    m_endpoint->setLabel(IpmbLabel{u"asker"_s});
}

void tst_Requests::cleanup()
{
    m_endpoint.reset();
    m_bus.reset();
}

// The reply arrives in the future, and the continuation runs in its context object's thread:
// this one, or a worker thread's.
void tst_Requests::replyInTheContextThread()
{
    QVERIFY(joinAsker());
    Peer replier = requestPeer();
    QVERIFY(joinReplier(replier, "renderer", "echo"));

    Outcome &here = ask(IpmbSelector::unicast(IpmbLabelOp("renderer")), u"page4"_s, 10000);
    QTRY_VERIFY(here.done);
    QCOMPARE(here.error, IpmbEndpoint::NoError);
    QCOMPARE(here.value, u"re:page4"_s);
    QCOMPARE(here.from, replier.pid());
    QCOMPARE(here.thread, QThread::currentThread());

    QThread worker;
    worker.start();
    QObject context;
    context.moveToThread(&worker);
    Outcome there;
    watch(m_endpoint->request(IpmbSelector::unicast(IpmbLabelOp("renderer")), u"page5"_s, 10000), &context, &there);
    QTRY_VERIFY(there.done);
    QCOMPARE(there.value, u"re:page5"_s);
    QCOMPARE(there.thread, &worker);
    worker.quit();
    worker.wait();

    // A blocking wait works too, from any thread.
    QFuture<IpmbMessage> blocking = m_endpoint->request(IpmbSelector::unicast(IpmbLabelOp("renderer")), u"x"_s, 10000);
    QCOMPARE(blocking.result().payload().toString(), u"re:x"_s);
}

// 10,000 requests from two processes to three repliers (one answers from QtConcurrent tasks):
// each future resolves exactly once, with its own reply, and every replier takes a share.
void tst_Requests::tenThousandFromTwoToThree()
{
    Peer r1 = requestPeer(), r2 = requestPeer(), r3 = requestPeer(), q1 = requestPeer(), q2 = requestPeer();
    QVERIFY(m_bus->join({{r1, "worker", {u"--replier"_s, u"echo"_s}},
                         {r2, "worker", {u"--replier"_s, u"echo"_s}},
                         {r3, "worker", {u"--replier"_s, u"concurrent"_s}},
                         {q1, "client"}, {q2, "client"}}));
    q1.command("requests worker 5000 200");
    q2.command("requests worker 5000 200");
    for (Peer *q : {&q1, &q2}) {
        const QByteArray line = q->waitFor("requests ", 60000);
        QVERIFY2(!line.isEmpty(), "the requests did not all finish");
        QCOMPARE(field(line, "done"), QByteArray("5000"));
        QCOMPARE(field(line, "ok"), QByteArray("5000"));
        QCOMPARE(field(line, "wrong"), QByteArray("0"));
        QCOMPARE(field(line, "failed"), QByteArray("0"));
        QCOMPARE(field(line, "repliers"), QByteArray("3"));
    }
}

void tst_Requests::timeout()
{
    QVERIFY(joinAsker());
    Peer replier = requestPeer();
    QVERIFY(joinReplier(replier, "silent", "ignore"));
    QElapsedTimer clock;
    clock.start();
    Outcome &outcome = ask(IpmbSelector::unicast(IpmbLabelOp("silent")), u"q"_s, 200);
    QTRY_VERIFY(outcome.done);
    QCOMPARE(outcome.error, IpmbEndpoint::TimeoutError);
    QVERIFY2(outcome.errorString.contains(u"200 ms"_s), qPrintable(outcome.errorString));
    QVERIFY(clock.elapsed() >= 200);
    QVERIFY2(clock.elapsed() < 2000, "a timeout is kept to within a few ms, not a second");
    QVERIFY(!replier.waitFor("held n=1").isEmpty());  // it did get there
}

void tst_Requests::noRoute()
{
    QVERIFY(joinAsker());
    QElapsedTimer clock;
    clock.start();
    Outcome &now = ask(IpmbSelector::unicast(IpmbLabelOp("nobody")), u"q"_s, 30000);
    QTRY_VERIFY(now.done);
    QCOMPARE(now.error, IpmbEndpoint::NoRouteError);
    QVERIFY(clock.elapsed() < 5000);

    // With a ttl, once the ttl ran out (and not before: a replier that joins in time answers).
    clock.restart();
    Outcome &later = ask(IpmbSelector::unicast(IpmbLabelOp("nobody"), 300ms), u"q"_s, 30000);
    QTRY_VERIFY(later.done);
    QCOMPARE(later.error, IpmbEndpoint::NoRouteError);
    QVERIFY(clock.elapsed() >= 250);
    Outcome &answered = ask(IpmbSelector::unicast(IpmbLabelOp("late"), 10s), u"q"_s, 30000);
    Peer late = requestPeer();
    QVERIFY(joinReplier(late, "late", "echo"));
    QTRY_VERIFY(answered.done);
    QCOMPARE(answered.value, u"re:q"_s);
}

// The replier's process is killed while it holds the request: the future fails at once (the
// controller says so), not when its 30 s run out.
void tst_Requests::replierKilled()
{
    QVERIFY(joinAsker());
    Peer replier = requestPeer();
    QVERIFY(joinReplier(replier, "doomed", "ignore"));
    Outcome &outcome = ask(IpmbSelector::unicast(IpmbLabelOp("doomed")), u"q"_s, 30000);
    QVERIFY(!replier.waitFor("held n=1").isEmpty());
    QElapsedTimer clock;
    clock.start();
    replier.signal(SIGKILL);
    QTRY_VERIFY(outcome.done);
    const qint64 took = clock.elapsed();
    qInfo("the request failed %lld ms after its replier was killed", took);
    QCOMPARE(outcome.error, IpmbEndpoint::PeerLeftError);
    QVERIFY2(took < 1000, "well under a second");
}

// The requester leaves while it waits: its future fails with DisconnectedError. A requester in
// another process that quits: the reply to it is dropped cleanly, and the replier goes on.
void tst_Requests::requesterLeaves()
{
    QVERIFY(joinAsker());
    Peer replier = requestPeer();
    QVERIFY(joinReplier(replier, "holder", "ignore"));
    Outcome &outcome = ask(IpmbSelector::unicast(IpmbLabelOp("holder")), u"q"_s, 30000);
    QVERIFY(!replier.waitFor("held n=1").isEmpty());
    m_endpoint->leave();
    QTRY_VERIFY(outcome.done);
    QCOMPARE(outcome.error, IpmbEndpoint::DisconnectedError);

    // Not joined: refused at once.
    Outcome &refused = ask(IpmbSelector::unicast(IpmbLabelOp("holder")), u"q"_s, 30000);
    QTRY_VERIFY(refused.done);
    QCOMPARE(refused.error, IpmbEndpoint::DisconnectedError);

    Peer asker = requestPeer();
    QVERIFY(m_bus->join(asker, u"asker2"_s));
    asker.command("request holder 0 gone 30000");
    QVERIFY(!replier.waitFor("held n=2").isEmpty());
    QVERIFY(asker.quit());
    replier.command("replyheld");  // to a requester that left (and to this endpoint, which left)
    QCOMPARE(field(replier.waitFor("replied"), "n"), QByteArray("2"));
    // The replier is fine: it still answers.
    Peer third = requestPeer();
    QVERIFY(m_bus->join(third, u"third"_s));
    third.command("request holder 0 again 30000");
    QVERIFY(!replier.waitFor("held n=1").isEmpty());
    replier.command("replyheld");
    QCOMPARE(field(third.waitFor("reply"), "value"), QByteArray("re:again"));
}

// A cancelled future stops waiting; the reply that comes after is dropped, and no continuation
// runs.
void tst_Requests::cancel()
{
    QVERIFY(joinAsker());
    Peer replier = requestPeer();
    QVERIFY(joinReplier(replier, "holder", "ignore"));
    bool ran = false;
    QFuture<IpmbMessage> future = m_endpoint->request(IpmbSelector::unicast(IpmbLabelOp("holder")), u"q"_s, 30000);
    QFuture<void> after = future.then(this, [&](const IpmbMessage &) { ran = true; });
    QVERIFY(!replier.waitFor("held n=1").isEmpty());
    future.cancel();
    QVERIFY(future.isCanceled());
    replier.command("replyheld");
    QVERIFY(!replier.waitFor("replied").isEmpty());
    // Another request after it goes through, so the late reply has been handled by now.
    Outcome &next = ask(IpmbSelector::unicast(IpmbLabelOp("holder")), u"next"_s, 10000);
    QVERIFY(!replier.waitFor("held n=1").isEmpty());
    replier.command("replyheld");
    QTRY_VERIFY(next.done);
    QCOMPARE(next.value, u"re:next"_s);
    QVERIFY(!ran);
}

void tst_Requests::oneReplyOnly()
{
    QVERIFY(joinAsker());
    Peer replier = requestPeer();
    QVERIFY(joinReplier(replier, "eager", "twice"));
    Outcome &outcome = ask(IpmbSelector::unicast(IpmbLabelOp("eager")), u"q"_s, 10000);
    const QByteArray second = replier.waitFor("second-reply");
    QCOMPARE(field(second, "ok"), QByteArray("0"));
    QCOMPARE(field(second, "error"), QByteArray("InvalidArgumentError"));
    QTRY_VERIFY(outcome.done);
    QCOMPARE(outcome.value, u"re:q"_s);

    // Replying to a message that is no request.
    QVERIFY(!m_endpoint->reply(IpmbMessage(IpmbSelector::unicast(IpmbLabelOp("x")), 1), u"no"_s));
    QCOMPARE(m_endpoint->error(), IpmbEndpoint::InvalidArgumentError);
}

void tst_Requests::multicastRefused()
{
    QVERIFY(joinAsker());
    QFuture<IpmbMessage> future = m_endpoint->request(IpmbSelector::multicast(IpmbLabelOp("any")), u"q"_s, 1000);
    QVERIFY(future.isFinished());
    try {
        future.waitForFinished();
        QFAIL("a multicast request was sent");
    } catch (const IpmbRequestError &e) {
        QCOMPARE(e.error(), IpmbEndpoint::InvalidArgumentError);
        QVERIFY(e.errorString().contains(u"unicast"_s));
    }
}

// The requester's controller dies (in another process): its requests in flight through it fail at
// once. (The first request to a replier goes through the controller: it asks for a channel.)
void tst_Requests::failoverFailsRequests()
{
    Peer controller = requestPeer();
    QVERIFY(m_bus->join(controller, u"controller"_s));
    QVERIFY(controller.isController());
    QVERIFY(joinAsker());
    Peer replier = requestPeer();
    QVERIFY(joinReplier(replier, "holder", "ignore"));
    Outcome &outcome = ask(IpmbSelector::unicast(IpmbLabelOp("holder")), u"q"_s, 30000);
    QVERIFY(!replier.waitFor("held n=1").isEmpty());
    controller.signal(SIGKILL);
    QTRY_VERIFY(outcome.done);
    QCOMPARE(outcome.error, IpmbEndpoint::DisconnectedError);
    // After the failover, requests work again.
    QTRY_COMPARE(m_endpoint->state(), IpmbEndpoint::JoinedState);
    Outcome &again = ask(IpmbSelector::unicast(IpmbLabelOp("holder"), 5s), u"again"_s, 30000);
    QVERIFY(!replier.waitFor("held n=2").isEmpty());
    replier.command("replyheld");
    QTRY_VERIFY(again.done);
    QCOMPARE(again.value, u"re:again"_s);
}

// A request on a direct channel (doc/protocol.md, "Direct channels") does not need the controller:
// it waits through the failover of a controller in a third process and gets its reply.
void tst_Requests::failoverKeepsRequestsOnChannels()
{
    Peer controller = requestPeer();
    QVERIFY(m_bus->join(controller, u"controller"_s));
    QVERIFY(joinAsker());
    Peer replier = requestPeer();
    QVERIFY(joinReplier(replier, "holder", "ignore"));
    // Plain messages (which the replier ignores) until this endpoint has its channel to it.
    const qsizetype before = openDescriptors();
    const IpmbSelector holder = IpmbSelector::unicast(IpmbLabelOp("holder"));
    QTRY_VERIFY((m_endpoint->send(IpmbMessage(holder, u"warm-up"_s)), openDescriptors() > before));
    Outcome &outcome = ask(holder, u"q"_s, 30000);
    QVERIFY(!replier.waitFor("held n=1").isEmpty());
    QSignalSpy rejoined(m_endpoint.get(), &IpmbEndpoint::joined);
    controller.signal(SIGKILL);
    QVERIFY(rejoined.wait(10000));
    QVERIFY2(!outcome.done, qPrintable(outcome.errorString));
    replier.command("replyheld");
    QTRY_VERIFY(outcome.done);
    QCOMPARE(outcome.error, IpmbEndpoint::NoError);
    QCOMPARE(outcome.value, u"re:q"_s);
}

// send(message, &id): undeliverable() for a message that reached nobody (ttl 0, or its ttl ran
// out), and nothing for one that was delivered.
void tst_Requests::undeliverableNotices()
{
    QVERIFY(joinAsker());
    Peer receiver(QStringLiteral(IPMBQT_PEER));
    QVERIFY(m_bus->join(receiver, u"receiver"_s));
    QSignalSpy notices(m_endpoint.get(), &IpmbEndpoint::undeliverable);

    quint64 delivered = 0, lost = 0, expired = 0;
    QVERIFY(m_endpoint->send(IpmbMessage(IpmbSelector::unicast(IpmbLabelOp("receiver")), u"hi"_s), &delivered));
    QVERIFY(!receiver.waitFor("received").isEmpty());
    QVERIFY(m_endpoint->send(IpmbMessage(IpmbSelector::unicast(IpmbLabelOp("nobody")), u"hi"_s), &lost));
    QVERIFY(delivered != 0 && lost != 0 && delivered != lost);
    QVERIFY(notices.wait(10000));
    QCOMPARE(notices.size(), 1);  // the controller answers in order: none came for the first
    QCOMPARE(notices.at(0).at(0).toULongLong(), lost);
    QCOMPARE(notices.at(0).at(1).value<IpmbEndpoint::Error>(), IpmbEndpoint::NoRouteError);

    QElapsedTimer clock;
    clock.start();
    QVERIFY(m_endpoint->send(IpmbMessage(IpmbSelector::multicast(IpmbLabelOp("nobody"), 200ms), u"hi"_s), &expired));
    QVERIFY(notices.wait(10000));
    QCOMPARE(notices.size(), 2);
    QCOMPARE(notices.at(1).at(0).toULongLong(), expired);
    QCOMPARE(notices.at(1).at(1).value<IpmbEndpoint::Error>(), IpmbEndpoint::NoRouteError);
    QVERIFY(clock.elapsed() >= 150);

    // An untracked message that reaches nobody says nothing, as before.
    QVERIFY(m_endpoint->send(IpmbSelector::unicast(IpmbLabelOp("nobody")), u"hi"_s));
    quint64 marker = 0;
    QVERIFY(m_endpoint->send(IpmbMessage(IpmbSelector::unicast(IpmbLabelOp("nobody")), u"hi"_s), &marker));
    QVERIFY(notices.wait(10000));
    QCOMPARE(notices.size(), 3);
    QCOMPARE(notices.at(2).at(0).toULongLong(), marker);
}

QTEST_GUILESS_MAIN(tst_Requests)
#include "tst_requests.moc"
