// SPDX-License-Identifier: BSD-3-Clause
// IpmbEndpoint's API contract within one process: states, signals, errors, the two receive
// styles, and a controller handing over when its endpoint leaves. Cross-process behaviour is in
// tests/auto/multiprocess.

#include "ipmbtestutil.h"

#include <IpmbQt/IpmbEndpoint>

#include <QtCore/qdeadlinetimer.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

#include <QtCore/qthread.h>

#include <atomic>
#include <memory>
#include <thread>

using namespace IpmbTest;
using namespace std::chrono_literals;

class tst_IpmbEndpoint : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void defaults();
    void sendWhileUnjoined();
    void joinNeedsAnIdentifier();
    void joinAndLeave();
    void deliveryToItself();
    void receiveWithoutSignal();
    void leaveWhileReceiving();
    void badPayloads_data();
    void badPayloads();
    void controllerHandsOverOnLeave();
    void failoverWhileEventLoopBusy();
    void misuseSaysWhy();
    void sendFailingInAnotherThread();
    void destructionEmitsNothing();
    void propertiesNotify();
    void invalidSelectorIsRefused();
};

static void configure(IpmbEndpoint &endpoint, const QString &bus, const QString &label)
{
    endpoint.setIdentifier(bus);
    endpoint.setLabel(IpmbLabel{label});
}

void tst_IpmbEndpoint::defaults()
{
    IpmbEndpoint endpoint;
    QCOMPARE(endpoint.state(), IpmbEndpoint::UnjoinedState);
    QCOMPARE(endpoint.error(), IpmbEndpoint::NoError);
    QVERIFY(endpoint.errorString().isEmpty());
    QVERIFY(!endpoint.isController());
    QCOMPARE(endpoint.joinTimeout(), 10000);
    QCOMPARE(endpoint.bytesToWrite(), 0);
    QVERIFY(!endpoint.receive(0));
}

void tst_IpmbEndpoint::sendWhileUnjoined()
{
    IpmbEndpoint endpoint;
    QSignalSpy errors(&endpoint, &IpmbEndpoint::errorOccurred);
    QVERIFY(!endpoint.send(IpmbSelector::unicast(IpmbLabelOp("x")), QStringLiteral("lost?")));
    QCOMPARE(endpoint.error(), IpmbEndpoint::DisconnectedError);
    QVERIFY2(endpoint.errorString().contains(QStringLiteral("not joined")), qPrintable(endpoint.errorString()));
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors.at(0).at(0).value<IpmbEndpoint::Error>(), IpmbEndpoint::DisconnectedError);
    endpoint.clearError();
    QCOMPARE(endpoint.error(), IpmbEndpoint::NoError);
}

void tst_IpmbEndpoint::joinNeedsAnIdentifier()
{
    IpmbEndpoint endpoint;
    QSignalSpy errors(&endpoint, &IpmbEndpoint::errorOccurred);
    endpoint.join();
    QCOMPARE(endpoint.state(), IpmbEndpoint::UnjoinedState);
    QCOMPARE(endpoint.error(), IpmbEndpoint::InvalidArgumentError);
    QCOMPARE(errors.size(), 1);
}

void tst_IpmbEndpoint::joinAndLeave()
{
    IpmbEndpoint endpoint;
    configure(endpoint, uniqueBusName(), QStringLiteral("solo"));
    QSignalSpy states(&endpoint, &IpmbEndpoint::stateChanged);
    QSignalSpy joined(&endpoint, &IpmbEndpoint::joined);
    QSignalSpy controller(&endpoint, &IpmbEndpoint::controllerChanged);
    endpoint.join();
    QCOMPARE(endpoint.state(), IpmbEndpoint::JoiningState);
    QVERIFY(joined.wait(10000));
    QCOMPARE(joined.size(), 1);
    QCOMPARE(endpoint.state(), IpmbEndpoint::JoinedState);
    QVERIFY(endpoint.isController()); // first on the bus
    QCOMPARE(controller.size(), 1);
    QCOMPARE(states.size(), 2);
    QCOMPARE(states.at(0).at(0).value<IpmbEndpoint::State>(), IpmbEndpoint::JoiningState);
    QCOMPARE(states.at(1).at(0).value<IpmbEndpoint::State>(), IpmbEndpoint::JoinedState);
    QVERIFY(endpoint.waitForJoined(0));

    endpoint.leave();
    QCOMPARE(endpoint.state(), IpmbEndpoint::UnjoinedState);
    QVERIFY(!endpoint.isController());
    QCOMPARE(states.size(), 3);
    QCOMPARE(endpoint.error(), IpmbEndpoint::NoError);
    // A left endpoint can join again.
    endpoint.join();
    QVERIFY(endpoint.waitForJoined(10000));
}

void tst_IpmbEndpoint::deliveryToItself()
{
    IpmbEndpoint endpoint;
    configure(endpoint, uniqueBusName(), QStringLiteral("me"));
    QSignalSpy received(&endpoint, &IpmbEndpoint::messageReceived);
    endpoint.join();
    // Sent while joining: queued, and delivered once joined.
    QVERIFY(endpoint.send(IpmbSelector::multicast(IpmbLabelOp("me")), QStringLiteral("early")));
    QVERIFY(endpoint.waitForJoined(10000));
    QVERIFY(endpoint.send(IpmbSelector::unicast(IpmbLabelOp("me")), 42));
    QTRY_COMPARE(received.size(), 2);
    const IpmbMessage first = received.at(0).at(0).value<IpmbMessage>();
    QCOMPARE(first.payload().toString(), QStringLiteral("early"));
    QCOMPARE(first.selector().mode(), IpmbSelector::Multicast);
    QCOMPARE(first.senderPid(), QCoreApplication::applicationPid());
    QCOMPARE(first.senderLabel(), IpmbLabel{QStringLiteral("me")});
    QCOMPARE(received.at(1).at(0).value<IpmbMessage>().payload(), QVariant(42));
    // The id the controller gave this endpoint is the one its messages carry.
    QVERIFY(endpoint.endpointId() != 0);
    QCOMPARE(first.senderId(), endpoint.endpointId());
    endpoint.leave();
    QCOMPARE(endpoint.endpointId(), 0u);
}

void tst_IpmbEndpoint::receiveWithoutSignal()
{
    IpmbEndpoint endpoint;
    configure(endpoint, uniqueBusName(), QStringLiteral("worker"));
    endpoint.join();
    QVERIFY(endpoint.waitForJoined(10000));
    QVERIFY(!endpoint.receive(10)); // times out
    for (int i = 0; i < 3; ++i)
        QVERIFY(endpoint.send(IpmbSelector::unicast(IpmbLabelOp("worker")), i));
    for (int i = 0; i < 3; ++i) {
        const std::optional<IpmbMessage> message = endpoint.receive(10000);
        QVERIFY(message);
        QCOMPARE(message->payload(), QVariant(i));
    }
}

// A thread blocked in receive() holds the socket (it reads it itself): leave() must take it back
// at once, and receive() must return rather than wait out its timeout for messages that cannot
// come. Repeated, so that leave() meets the thread both polling and waiting for the inbox.
void tst_IpmbEndpoint::leaveWhileReceiving()
{
    const QString bus = uniqueBusName();
    IpmbEndpoint endpoint;
    configure(endpoint, bus, QStringLiteral("worker"));
    for (int round = 0; round < 20; ++round) {
        endpoint.join();
        QVERIFY(endpoint.waitForJoined(10000));
        QVERIFY(endpoint.send(IpmbSelector::unicast(IpmbLabelOp("worker")), round));
        std::atomic<bool> waiting {false};
        std::atomic<bool> done {false};
        std::optional<IpmbMessage> first, second;
        std::thread worker([&] {
            first = endpoint.receive(60000);
            waiting = true;
            second = endpoint.receive(60000);  // nothing else comes
            done = true;
        });
        QTRY_VERIFY_WITH_TIMEOUT(waiting, 10000);
        endpoint.leave();
        QCOMPARE(endpoint.state(), IpmbEndpoint::UnjoinedState);
        QTRY_VERIFY_WITH_TIMEOUT(done, 10000);  // not the 60 s of its timeout
        worker.join();
        QVERIFY(first);
        QCOMPARE(first->payload(), QVariant(round));
        QVERIFY(!second);
    }
    // Not joined: nothing to wait for.
    QVERIFY(!endpoint.receive(60000));
}

void tst_IpmbEndpoint::badPayloads_data()
{
    QTest::addColumn<QVariant>("payload");
    QTest::addColumn<IpmbEndpoint::Error>("error");
    QTest::addRow("not streamable") << QVariant::fromValue(static_cast<QObject *>(this))
                                    << IpmbEndpoint::InvalidArgumentError;
    QTest::addRow("over 256 MiB") << QVariant(QByteArray(256 * 1024 * 1024 + 1, 'x'))
                                  << IpmbEndpoint::PayloadTooLargeError;
}

void tst_IpmbEndpoint::badPayloads()
{
    QFETCH(QVariant, payload);
    QFETCH(IpmbEndpoint::Error, error);
    IpmbEndpoint endpoint;
    configure(endpoint, uniqueBusName(), QStringLiteral("x"));
    endpoint.join();
    QVERIFY(endpoint.waitForJoined(10000));
    QSignalSpy errors(&endpoint, &IpmbEndpoint::errorOccurred);
    QVERIFY(!endpoint.send(IpmbSelector::unicast(IpmbLabelOp("x")), payload));
    QCOMPARE(endpoint.error(), error);
    QVERIFY(!endpoint.errorString().isEmpty());
    QCOMPARE(errors.size(), 1);
    // Nothing else was lost: the endpoint still works.
    QCOMPARE(endpoint.state(), IpmbEndpoint::JoinedState);
    QVERIFY(endpoint.send(IpmbSelector::unicast(IpmbLabelOp("x")), QStringLiteral("fine")));
    QVERIFY(endpoint.receive(10000));
}

// Joins `first` to a new bus, then `second`: `first` hosts the controller.
static bool joinInOrder(IpmbEndpoint &first, IpmbEndpoint &second)
{
    const QString bus = uniqueBusName();
    configure(first, bus, QStringLiteral("first"));
    configure(second, bus, QStringLiteral("second"));
    first.join();
    if (!first.waitForJoined(10000))
        return false;
    second.join();
    return second.waitForJoined(10000);
}

void tst_IpmbEndpoint::controllerHandsOverOnLeave()
{
    IpmbEndpoint first, second;
    QVERIFY(joinInOrder(first, second));
    QVERIFY(first.isController());
    QVERIFY(!second.isController());

    QSignalSpy rejoined(&second, &IpmbEndpoint::joined);
    QSignalSpy states(&second, &IpmbEndpoint::stateChanged);
    first.leave();
    QVERIFY(rejoined.wait(10000));
    QVERIFY(second.isController());
    QCOMPARE(states.at(0).at(0).value<IpmbEndpoint::State>(), IpmbEndpoint::ReconnectingState);
    QVERIFY(second.send(IpmbSelector::unicast(IpmbLabelOp("second")), QStringLiteral("still here")));
    const std::optional<IpmbMessage> message = second.receive(10000);
    QVERIFY(message);
    QCOMPARE(message->payload().toString(), QStringLiteral("still here"));
}

// The endpoint's thread may be busy while the I/O thread goes through a whole failover; the
// signals must still tell every transition afterwards, in order.
void tst_IpmbEndpoint::failoverWhileEventLoopBusy()
{
    IpmbEndpoint first, second;
    QVERIFY(joinInOrder(first, second));

    QSignalSpy rejoined(&second, &IpmbEndpoint::joined);
    QSignalSpy states(&second, &IpmbEndpoint::stateChanged);
    QSignalSpy controller(&second, &IpmbEndpoint::controllerChanged);
    first.leave();
    // Blocking calls only, no event processing: a message to itself comes back once the failover
    // is over (one sent before the loss was noticed is lost with the old connection: resend).
    std::optional<IpmbMessage> message;
    for (QDeadlineTimer deadline(10000); !message && !deadline.hasExpired();) {
        QVERIFY(second.send(IpmbSelector::unicast(IpmbLabelOp("second")), QStringLiteral("via the new controller")));
        message = second.receive(100);
    }
    QVERIFY(message);
    QCOMPARE(states.count(), 0);

    QTRY_COMPARE(rejoined.count(), 1);
    QCOMPARE(states.count(), 2);
    QCOMPARE(states.at(0).at(0).value<IpmbEndpoint::State>(), IpmbEndpoint::ReconnectingState);
    QCOMPARE(states.at(1).at(0).value<IpmbEndpoint::State>(), IpmbEndpoint::JoinedState);
    QCOMPARE(controller.count(), 1);
    QVERIFY(second.isController());
}

QTEST_MAIN(tst_IpmbEndpoint)
#include "tst_ipmbendpoint.moc"

// Hole 10 of the issue "Trust": waiting for a join that was never started, or receiving on an
// unjoined endpoint, returned at once with error() still NoError.
void tst_IpmbEndpoint::misuseSaysWhy()
{
    IpmbEndpoint endpoint;
    QSignalSpy errors(&endpoint, &IpmbEndpoint::errorOccurred);
    QVERIFY(!endpoint.waitForJoined(10));
    QCOMPARE(endpoint.error(), IpmbEndpoint::DisconnectedError);
    QVERIFY2(endpoint.errorString().contains(QStringLiteral("join()")), qPrintable(endpoint.errorString()));
    QCOMPARE(errors.size(), 1);
    endpoint.clearError();
    QVERIFY(!endpoint.receive(10));
    QCOMPARE(endpoint.error(), IpmbEndpoint::DisconnectedError);
    QVERIFY2(endpoint.errorString().contains(QStringLiteral("not joined")), qPrintable(endpoint.errorString()));
    QCOMPARE(errors.size(), 3); // the error, the reset by clearError(), the second error
}

// Hole 11: send() is callable from any thread, but when it failed it wrote the endpoint's error
// without a lock and emitted errorOccurred() in the calling thread. Now the error is set under the
// endpoint's lock (readable at once in the calling thread) and the signal is emitted in the
// endpoint's thread, once per turn of its event loop however often the worker failed.
void tst_IpmbEndpoint::sendFailingInAnotherThread()
{
    IpmbEndpoint endpoint;
    std::atomic<int> emittedElsewhere {0};
    QThread *const home = endpoint.thread();
    connect(&endpoint, &IpmbEndpoint::errorOccurred, &endpoint,
            [&](IpmbEndpoint::Error) {
                if (QThread::currentThread() != home)
                    ++emittedElsewhere;
            }, Qt::DirectConnection);
    QSignalSpy errors(&endpoint, &IpmbEndpoint::errorOccurred);
    std::atomic<bool> allFailed {true};
    IpmbEndpoint::Error seenThere = IpmbEndpoint::NoError;
    std::thread worker([&] {
        for (int i = 0; i < 200; ++i) {
            if (endpoint.send(IpmbSelector::unicast(IpmbLabelOp("x")), i))
                allFailed = false;
        }
        seenThere = endpoint.error();  // the caller reads why at once
    });
    for (int i = 0; i < 2000; ++i)
        (void)endpoint.error();  // meanwhile the endpoint's thread reads it too
    worker.join();
    QVERIFY(allFailed);
    QCOMPARE(seenThere, IpmbEndpoint::DisconnectedError);
    // At least one emission; a worker failing in a loop is reported once per event-loop turn,
    // not with an event per failure.
    QTRY_VERIFY(!errors.isEmpty());
    QVERIFY(errors.size() <= 200);
    QCOMPARE(errors.constLast().at(0).value<IpmbEndpoint::Error>(), IpmbEndpoint::DisconnectedError);
    QCOMPARE(emittedElsewhere.load(), 0);
    QCOMPARE(endpoint.error(), IpmbEndpoint::DisconnectedError);
}

// Hole 11: the destructor left the bus and emitted stateChanged(), and messageReceived() for the
// messages still waiting, to slots of an owner whose destructor may have run already.
void tst_IpmbEndpoint::destructionEmitsNothing()
{
    auto endpoint = std::make_unique<IpmbEndpoint>();
    configure(*endpoint, uniqueBusName(), QStringLiteral("self"));
    endpoint->join();
    QVERIFY(endpoint->waitForJoined());
    // Messages to itself that nobody takes: they wait in the inbox.
    for (int i = 0; i < 3; ++i)
        QVERIFY(endpoint->send(IpmbSelector::unicast(IpmbLabelOp("self")), i));
    while (endpoint->bytesToWrite() > 0)
        QVERIFY(endpoint->waitForBytesWritten());
    int emitted = 0;
    bool destroying = false;
    const auto count = [&] {
        if (destroying)
            ++emitted;
    };
    connect(endpoint.get(), &IpmbEndpoint::stateChanged, this, count);
    connect(endpoint.get(), &IpmbEndpoint::errorOccurred, this, count);
    connect(endpoint.get(), &IpmbEndpoint::controllerChanged, this, count);
    // Receiving by signal is enabled only now: the messages are delivered from the event loop...
    connect(endpoint.get(), &IpmbEndpoint::messageReceived, this, count);
    destroying = true;  // ...which does not run before the endpoint is gone.
    endpoint.reset();
    QCOMPARE(emitted, 0);
}

// What a QML binding sees: every property a UI binds to notifies, and a reset of the error is a
// change too (errorOccurred(NoError), as QSerialPort::clearError() does).
void tst_IpmbEndpoint::propertiesNotify()
{
    IpmbEndpoint endpoint;
    const QMetaObject *mo = endpoint.metaObject();
    for (const char *name : {"identifier", "label", "token", "joinTimeout", "state",
                             "controller", "error", "errorString"}) {
        const QMetaProperty property = mo->property(mo->indexOfProperty(name));
        QVERIFY2(property.isValid(), name);
        QVERIFY2(property.hasNotifySignal(), name);
    }
    QVERIFY(mo->indexOfMethod("send(IpmbSelector,QVariant)") >= 0);
    QCOMPARE(mo->method(mo->indexOfMethod("send(IpmbSelector,QVariant)")).methodType(), QMetaMethod::Method);

    QSignalSpy timeouts(&endpoint, &IpmbEndpoint::joinTimeoutChanged);
    QVERIFY(endpoint.setProperty("joinTimeout", 2500));
    endpoint.setJoinTimeout(2500);
    QCOMPARE(timeouts.size(), 1);
    QCOMPARE(timeouts.at(0).at(0).toInt(), 2500);
    QCOMPARE(endpoint.property("joinTimeout").toInt(), 2500);

    QSignalSpy errors(&endpoint, &IpmbEndpoint::errorOccurred);
    endpoint.clearError();
    QCOMPARE(errors.size(), 0); // nothing to reset
    endpoint.join();            // no identifier
    QCOMPARE(errors.size(), 1);
    QCOMPARE(endpoint.property("error").value<IpmbEndpoint::Error>(), IpmbEndpoint::InvalidArgumentError);
    QVERIFY(!endpoint.property("errorString").toString().isEmpty());
    endpoint.clearError();
    QCOMPARE(errors.size(), 2);
    QCOMPARE(errors.at(1).at(0).value<IpmbEndpoint::Error>(), IpmbEndpoint::NoError);
    QVERIFY(endpoint.property("errorString").toString().isEmpty());
}

// A selector parsed from text with a mistake (QML's Selector.unicast("...")) must not be a silent
// no-op: send() refuses it and says what is wrong.
void tst_IpmbEndpoint::invalidSelectorIsRefused()
{
    IpmbEndpoint endpoint;
    configure(endpoint, uniqueBusName(), QStringLiteral("earth"));
    endpoint.join();
    QVERIFY(endpoint.waitForJoined());
    const IpmbSelector selector = IpmbSelector::fromString(IpmbSelector::Unicast, QStringLiteral("earth &&"));
    QVERIFY(!selector.isValid());
    QSignalSpy errors(&endpoint, &IpmbEndpoint::errorOccurred);
    QVERIFY(!endpoint.send(selector, QStringLiteral("hello")));
    QCOMPARE(endpoint.error(), IpmbEndpoint::InvalidArgumentError);
    QVERIFY2(endpoint.errorString().contains(QStringLiteral("earth &&")), qPrintable(endpoint.errorString()));
    QCOMPARE(errors.size(), 1);
    QCOMPARE(endpoint.state(), IpmbEndpoint::JoinedState); // nothing else lost
    QVERIFY(endpoint.send(IpmbSelector::fromString(IpmbSelector::Unicast, QStringLiteral("earth || moon")), QStringLiteral("hello")));
}
