// SPDX-License-Identifier: BSD-3-Clause
// IpmbMessage on its own: construction, setters, attachments, equality, value semantics and the
// gadget properties QML reads. A received message is built as the endpoint builds one (through
// IpmbMessageData), and once through a real bus in this process.

#include <IpmbQt/IpmbEndpoint>
#include <IpmbQt/IpmbMessage>

#include "ipmbmessage_p.h"
#include "ipmbtestutil.h"
#include "ipmbtestvalue.h"

#include <QtCore/qmetaobject.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

#include <chrono>

#include <fcntl.h>
#include <unistd.h>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

Q_DECLARE_METATYPE(IpmbMessage::PayloadStatus)

// Lets QCOMPARE print messages on failure.
char *toString(const IpmbMessage &message)
{
    QString text;
    QDebug(&text).nospace() << message;
    return qstrdup(text.toUtf8().constData());
}

namespace {

bool isOpen(int fd)
{
    return ::fcntl(fd, F_GETFD) != -1;
}

// Both ends of a new pipe, owned.
std::pair<IpmbNativeHandle, IpmbNativeHandle> newPipe()
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return {};
    return {IpmbNativeHandle::adopt(fds[0]), IpmbNativeHandle::adopt(fds[1])};
}

// A message as an endpoint receives it: the sender as the controller saw it, and a payload of a
// type unknown here.
IpmbMessage receivedMessage()
{
    IpmbMessage message = IpmbMessageData::received(IpmbSelector::multicast(IpmbLabelOp("earth")),
                                                    IpmbLabel{u"moon"_s, u"satellite"_s});
    IpmbMessageData *d = IpmbMessageData::get(message);
    d->payloadStatus = IpmbMessage::PayloadUnknownType;
    d->payloadTypeName = "made.up.Type";
    d->payloadErrorString = u"the type made.up.Type is not registered"_s;
    d->senderPid = 4242;
    d->senderUid = 1000;
    d->senderId = 7;
    return message;
}

QVariant readProperty(const IpmbMessage &message, const char *name)
{
    const QMetaObject &mo = IpmbMessage::staticMetaObject;
    const int index = mo.indexOfProperty(name);
    if (index < 0) {
        qWarning("IpmbMessage has no property %s", name);
        return {};
    }
    return mo.property(index).readOnGadget(&message);
}

} // namespace

class tst_IpmbMessage : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void defaults();
    void construct();
    void setters();
    void handles();
    void regions();
    void attachmentsOutliveTheHandles();
    void equality_data();
    void equality();
    void valueSemantics();
    void propertiesOfAnOutgoingMessage();
    void propertiesOfAReceivedMessage();
    void payloadStatusEnum();
    void debugOutput();
    void receivedThroughABus();
};

void tst_IpmbMessage::defaults()
{
    const IpmbMessage message;
    QCOMPARE(message.selector(), IpmbSelector());
    QVERIFY(!message.payload().isValid());
    QVERIFY(message.handles().isEmpty());
    QCOMPARE(message.handleCount(), 0);
    QVERIFY(message.regions().isEmpty());
    QCOMPARE(message.regionCount(), 0);
    QCOMPARE(message.payloadStatus(), IpmbMessage::PayloadOk);
    QVERIFY(message.payloadTypeName().isEmpty());
    QVERIFY(message.payloadErrorString().isEmpty());
    QCOMPARE(message.senderPid(), -1);
    QCOMPARE(message.senderUid(), -1);
    QCOMPARE(message.senderLabel(), IpmbLabel());
    QCOMPARE(message.senderId(), 0u);
    QCOMPARE(message, IpmbMessage());
}

void tst_IpmbMessage::construct()
{
    const IpmbSelector selector = IpmbSelector::multicast(IpmbLabelOp("planet") && !IpmbLabelOp("earth"), 250ms);
    const IpmbMessage message(selector, u"hello"_s);
    QCOMPARE(message.selector(), selector);
    QCOMPARE(message.payload(), QVariant(u"hello"_s));
    QCOMPARE(message.payload().metaType(), QMetaType::fromType<QString>());
    // An outgoing message: nothing attached, nobody sent it yet.
    QCOMPARE(message.handleCount(), 0);
    QCOMPARE(message.regionCount(), 0);
    QCOMPARE(message.payloadStatus(), IpmbMessage::PayloadOk);
    QCOMPARE(message.senderPid(), -1);
    QCOMPARE(message.senderUid(), -1);
    QCOMPARE(message.senderId(), 0u);
    QVERIFY(message.senderLabel().isEmpty());
    QCOMPARE(message, IpmbMessage(selector, QVariant(u"hello"_s)));
}

void tst_IpmbMessage::setters()
{
    IpmbMessage message;
    const IpmbSelector selector = IpmbSelector::unicast(IpmbLabelOp("earth"), 1s);
    message.setSelector(selector);
    QCOMPARE(message.selector(), selector);
    message.setPayload(42);
    QCOMPARE(message.payload(), QVariant(42));
    QCOMPARE(message, IpmbMessage(selector, 42));

    // Setting again replaces; an invalid payload is allowed (send() refuses it).
    message.setPayload(QVariant());
    QVERIFY(!message.payload().isValid());
    message.setSelector(IpmbSelector());
    QCOMPARE(message, IpmbMessage());
}

void tst_IpmbMessage::handles()
{
    const auto [readEnd, writeEnd] = newPipe();
    QVERIFY(!readEnd.isNull() && !writeEnd.isNull());
    IpmbMessage message(IpmbSelector::unicast(IpmbLabelOp("earth")), u"pipe"_s);
    message.addHandle(readEnd);
    QCOMPARE(message.handleCount(), 1);
    message.addHandle(writeEnd);
    QCOMPARE(message.handleCount(), 2);
    // In order, and shared, not duplicated: the same handle values.
    QCOMPARE(message.handles(), (QList<IpmbNativeHandle>{readEnd, writeEnd}));
    QCOMPARE(message.handles().at(0).handle(), readEnd.handle());
    QCOMPARE(message.regionCount(), 0);

    message.setHandles({writeEnd});
    QCOMPARE(message.handleCount(), 1);
    QCOMPARE(message.handles(), QList<IpmbNativeHandle>{writeEnd});
    message.setHandles({});
    QCOMPARE(message.handleCount(), 0);
    QVERIFY(message.handles().isEmpty());
}

void tst_IpmbMessage::regions()
{
    const IpmbMemoryRegion first = IpmbMemoryRegion::create(4096);
    const IpmbMemoryRegion second = IpmbMemoryRegion::create(100);
    QVERIFY2(!first.isNull() && !second.isNull(), qPrintable(first.errorString() + second.errorString()));
    IpmbMessage message;
    message.addRegion(first);
    message.addRegion(second);
    QCOMPARE(message.regionCount(), 2);
    QCOMPARE(message.regions(), (QList<IpmbMemoryRegion>{first, second}));
    // The same mapping, not a copy of the memory.
    QCOMPARE(message.regions().at(0).constData(), first.constData());
    QCOMPARE(message.handleCount(), 0);
    QCOMPARE(first.refCount(), 1);   // copies in one process share one reference

    message.setRegions({second});
    QCOMPARE(message.regionCount(), 1);
    QCOMPARE(message.regions().at(0), second);
    message.setRegions({});
    QCOMPARE(message.regionCount(), 0);

    // Handles and regions are counted apart.
    const auto [readEnd, writeEnd] = newPipe();
    message.addHandle(readEnd);
    message.addRegion(first);
    QCOMPARE(message.handleCount(), 1);
    QCOMPARE(message.regionCount(), 1);
}

// "Attached handles are closed ... when their last copy goes": the message keeps them open.
void tst_IpmbMessage::attachmentsOutliveTheHandles()
{
    int fds[2];
    QCOMPARE(::pipe2(fds, O_CLOEXEC), 0);
    ::close(fds[1]);
    {
        IpmbMessage message;
        message.addHandle(IpmbNativeHandle::adopt(fds[0]));
        const IpmbMessage copy = message;
        message = IpmbMessage();
        QVERIFY(isOpen(fds[0]));              // the copy still holds it
        QCOMPARE(copy.handles().at(0).handle(), IpmbNativeHandle::Native(fds[0]));
    }
    QVERIFY(!isOpen(fds[0]));                  // the last copy closed it
}

void tst_IpmbMessage::equality_data()
{
    QTest::addColumn<IpmbMessage>("lhs");
    QTest::addColumn<IpmbMessage>("rhs");
    QTest::addColumn<bool>("equal");

    const IpmbSelector toEarth = IpmbSelector::unicast(IpmbLabelOp("earth"));
    const auto [readEnd, writeEnd] = newPipe();
    const IpmbMemoryRegion region = IpmbMemoryRegion::create(64);
    IpmbMessage withHandle(toEarth, 1);
    withHandle.addHandle(readEnd);
    IpmbMessage withOtherHandle(toEarth, 1);
    withOtherHandle.addHandle(writeEnd);
    IpmbMessage withRegion(toEarth, 1);
    withRegion.addRegion(region);
    IpmbMessage sameRegion(toEarth, 1);
    sameRegion.setRegions({region});

    QTest::newRow("defaults") << IpmbMessage() << IpmbMessage() << true;
    QTest::newRow("default/empty selector and payload") << IpmbMessage() << IpmbMessage(IpmbSelector(), QVariant())
                                                        << true;
    QTest::newRow("same") << IpmbMessage(toEarth, u"x"_s) << IpmbMessage(IpmbSelector::unicast(IpmbLabelOp("earth")), u"x"_s)
                          << true;
    QTest::newRow("selector") << IpmbMessage(toEarth, 1) << IpmbMessage(IpmbSelector::multicast(IpmbLabelOp("earth")), 1)
                              << false;
    QTest::newRow("ttl") << IpmbMessage(toEarth, 1) << IpmbMessage(IpmbSelector::unicast(IpmbLabelOp("earth"), 5ms), 1)
                         << false;
    QTest::newRow("payload") << IpmbMessage(toEarth, 1) << IpmbMessage(toEarth, 2) << false;
    QTest::newRow("payload/none") << IpmbMessage(toEarth, 1) << IpmbMessage(toEarth, QVariant()) << false;
    QTest::newRow("same handle") << withHandle << IpmbMessage(withHandle) << true;
    QTest::newRow("handle/none") << withHandle << IpmbMessage(toEarth, 1) << false;
    QTest::newRow("other handle") << withHandle << withOtherHandle << false;
    QTest::newRow("same region") << withRegion << sameRegion << true;
    QTest::newRow("region/none") << withRegion << IpmbMessage(toEarth, 1) << false;
    QTest::newRow("received/outgoing") << receivedMessage()
                                       << IpmbMessage(receivedMessage().selector(), QVariant()) << false;
    QTest::newRow("received twice") << receivedMessage() << receivedMessage() << true;
}

void tst_IpmbMessage::equality()
{
    QFETCH(IpmbMessage, lhs);
    QFETCH(IpmbMessage, rhs);
    QFETCH(bool, equal);
    IpmbTest::checkEquality(lhs, rhs, equal);
}

void tst_IpmbMessage::valueSemantics()
{
    static_assert(!IpmbTest::isHashable<IpmbMessage> && !IpmbTest::isStreamable<IpmbMessage>,
                  "update the test: IpmbMessage has qHash() or QDataStream operators now");
    const auto [readEnd, writeEnd] = newPipe();
    IpmbMessage a(IpmbSelector::multicast(IpmbLabelOp("earth"), 10ms), u"a"_s);
    a.addHandle(readEnd);
    const IpmbMessage b(IpmbSelector::unicast(IpmbLabelOp("moon")), 2);
    IpmbTest::checkValueSemantics(a, b, [](IpmbMessage &m) { m.setPayload(u"changed"_s); });
    IPMBTEST_RETURN_IF_FAILED();
    IpmbTest::checkWrite(a, [](IpmbMessage &m) { m.setSelector(IpmbSelector()); });
    IPMBTEST_RETURN_IF_FAILED();
    IpmbTest::checkWrite(a, [&](IpmbMessage &m) { m.addHandle(writeEnd); });
    IPMBTEST_RETURN_IF_FAILED();
    IpmbTest::checkWrite(a, [](IpmbMessage &m) { m.setHandles({}); });
    IPMBTEST_RETURN_IF_FAILED();
    IpmbTest::checkWrite(a, [](IpmbMessage &m) { m.addRegion(IpmbMemoryRegion::create(64)); });
    IPMBTEST_RETURN_IF_FAILED();
    IpmbTest::checkValueSemantics(receivedMessage(), a);
}

// What QML reads: the properties of a message that was built here, not received.
void tst_IpmbMessage::propertiesOfAnOutgoingMessage()
{
    const IpmbSelector selector = IpmbSelector::multicast(IpmbLabelOp("earth"), 3ms);
    IpmbMessage message(selector, u"hello"_s);
    const auto [readEnd, writeEnd] = newPipe();
    message.addHandle(readEnd);
    message.addHandle(writeEnd);
    message.addRegion(IpmbMemoryRegion::create(64));

    QCOMPARE(readProperty(message, "selector").value<IpmbSelector>(), selector);
    QCOMPARE(readProperty(message, "payload"), QVariant(u"hello"_s));
    QCOMPARE(readProperty(message, "payloadStatus").value<IpmbMessage::PayloadStatus>(), IpmbMessage::PayloadOk);
    // A QString for QML, although payloadTypeName() returns the bytes; empty until received.
    const QVariant typeName = readProperty(message, "payloadTypeName");
    QCOMPARE(typeName.metaType(), QMetaType::fromType<QString>());
    QCOMPARE(typeName.toString(), QString());
    QCOMPARE(readProperty(message, "payloadErrorString").toString(), QString());
    QCOMPARE(readProperty(message, "senderPid").value<qint64>(), -1);
    QCOMPARE(readProperty(message, "senderUid").value<qint64>(), -1);
    QCOMPARE(readProperty(message, "senderId").value<quint32>(), 0u);
    QCOMPARE(readProperty(message, "senderLabel").value<IpmbLabel>(), IpmbLabel());
    QCOMPARE(readProperty(message, "handleCount").value<qsizetype>(), qsizetype(2));
    QCOMPARE(readProperty(message, "regionCount").value<qsizetype>(), qsizetype(1));

    // Read-only (CONSTANT): a message is changed through its setters in C++ only.
    const QMetaObject &mo = IpmbMessage::staticMetaObject;
    for (int i = mo.propertyOffset(); i < mo.propertyCount(); ++i) {
        QVERIFY2(!mo.property(i).isWritable(), mo.property(i).name());
        QVERIFY2(mo.property(i).isConstant(), mo.property(i).name());
    }
}

void tst_IpmbMessage::propertiesOfAReceivedMessage()
{
    const IpmbMessage message = receivedMessage();
    QCOMPARE(message.payloadTypeName(), QByteArray("made.up.Type"));
    const QVariant typeName = readProperty(message, "payloadTypeName");
    QCOMPARE(typeName.metaType(), QMetaType::fromType<QString>());
    QCOMPARE(typeName.toString(), u"made.up.Type"_s);
    QCOMPARE(readProperty(message, "payloadStatus").value<IpmbMessage::PayloadStatus>(),
             IpmbMessage::PayloadUnknownType);
    QVERIFY(!readProperty(message, "payload").isValid());
    QCOMPARE(readProperty(message, "payloadErrorString").toString(), message.payloadErrorString());
    QCOMPARE(readProperty(message, "senderPid").value<qint64>(), 4242);
    QCOMPARE(readProperty(message, "senderUid").value<qint64>(), 1000);
    QCOMPARE(readProperty(message, "senderId").value<quint32>(), 7u);
    QCOMPARE(readProperty(message, "senderLabel").value<IpmbLabel>(), (IpmbLabel{u"moon"_s, u"satellite"_s}));
    QCOMPARE(readProperty(message, "selector").value<IpmbSelector>(), IpmbSelector::multicast(IpmbLabelOp("earth")));
}

void tst_IpmbMessage::payloadStatusEnum()
{
    const QMetaEnum status = QMetaEnum::fromType<IpmbMessage::PayloadStatus>();
    QVERIFY(status.isValid());
    QCOMPARE(status.name(), "PayloadStatus");
    QCOMPARE(status.scope(), "IpmbMessage");
    QCOMPARE(status.keyCount(), 3);
    QCOMPARE(status.valueToKey(IpmbMessage::PayloadOk), "PayloadOk");
    QCOMPARE(status.valueToKey(IpmbMessage::PayloadUnknownType), "PayloadUnknownType");
    QCOMPARE(status.valueToKey(IpmbMessage::PayloadMalformed), "PayloadMalformed");
}

void tst_IpmbMessage::debugOutput()
{
    IpmbMessage message(IpmbSelector::unicast(IpmbLabelOp("earth")), 42);
    QString text;
    QDebug(&text) << message;
    QVERIFY2(text.startsWith(u"IpmbMessage(IpmbSelector(Unicast, earth, ttl=0ms), QVariant(int, 42)"_s), qPrintable(text));
    QVERIFY2(!text.contains(u"handles"_s) && !text.contains(u"from pid"_s), qPrintable(text));

    const auto [readEnd, writeEnd] = newPipe();
    message.setHandles({readEnd, writeEnd});
    message.addRegion(IpmbMemoryRegion::create(64));
    text.clear();
    QDebug(&text) << message;
    QVERIFY2(text.contains(u", 2 handles, 1 regions)"_s), qPrintable(text));

    text.clear();
    QDebug(&text) << receivedMessage();
    QVERIFY2(text.contains(u", from pid 4242 IpmbLabel(\"moon\", \"satellite\"), undecodable \"made.up.Type\")"_s),
             qPrintable(text));
}

// The sender fields of a message that came through a bus (two endpoints of this process; the
// first hosts the controller).
void tst_IpmbMessage::receivedThroughABus()
{
    const QString bus = IpmbTest::uniqueBusName();
    IpmbEndpoint earth;
    earth.setIdentifier(bus);
    earth.setLabel({u"earth"_s});
    IpmbEndpoint moon;
    moon.setIdentifier(bus);
    moon.setLabel({u"moon"_s, u"satellite"_s});
    QSignalSpy received(&earth, &IpmbEndpoint::messageReceived);
    earth.join();
    QVERIFY(earth.waitForJoined(10000));
    moon.join();
    QVERIFY(moon.waitForJoined(10000));

    IpmbMessage sent(IpmbSelector::unicast(IpmbLabelOp("earth")), u"hello"_s);
    const auto [readEnd, writeEnd] = newPipe();
    sent.addHandle(writeEnd);
    QVERIFY(moon.send(sent));
    QVERIFY(received.wait(10000));
    const IpmbMessage message = received.at(0).at(0).value<IpmbMessage>();
    QCOMPARE(message.payload(), QVariant(u"hello"_s));
    QCOMPARE(message.payloadStatus(), IpmbMessage::PayloadOk);
    QCOMPARE(message.payloadTypeName(), QByteArray("QString"));
    QCOMPARE(readProperty(message, "payloadTypeName"), QVariant(u"QString"_s));
    QCOMPARE(message.selector(), sent.selector());
    QCOMPARE(message.senderPid(), QCoreApplication::applicationPid());
    QCOMPARE(message.senderUid(), qint64(::geteuid()));
    QCOMPARE(message.senderLabel(), moon.label());
    QVERIFY(message.senderId() != 0);
    // The receiver's own handle to the same pipe.
    QCOMPARE(message.handleCount(), 1);
    QVERIFY(message.handles().at(0).handle() != writeEnd.handle());
    QVERIFY(message != sent);
    // The sent message is still an outgoing one.
    QCOMPARE(sent.senderId(), 0u);
    QCOMPARE(sent.senderPid(), -1);
}

QTEST_MAIN(tst_IpmbMessage)
#include "tst_ipmbmessage.moc"
