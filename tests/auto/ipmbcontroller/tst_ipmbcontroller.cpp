// SPDX-License-Identifier: BSD-3-Clause
// The controller's routing on its own, without helper processes: the first endpoint of this
// process hosts the controller, and the other members are raw connections of this process that
// speak the wire protocol (Hello, Message frames written by hand, the frames forwarded to them
// read with IpmbConnection). Who gets which message, with which sender block, and what a ttl
// keeps: doc/concepts.md, "Delivery promises"; doc/protocol.md for the frames.
//
// IpmbController itself is not exported (and owns its thread, listener and sockets), and its
// routing table (the matching peers of a selector, cached per sender and invalidated when the
// set of peers changes) is private to it: it is driven here through its sockets, as a bus does.

#include <IpmbQt/IpmbEndpoint>

#include "ipmbconnection_p.h"
#include "ipmbpayloadcodec_p.h"
#include "ipmbplatform_p.h"
#include "ipmbprotocol_p.h"
#include "ipmbtestraw.h"
#include "ipmbtestutil.h"

#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qfile.h>
#include <QtCore/qendian.h>
#include <QtCore/qregularexpression.h>
#include <QtCore/qset.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

#include <deque>
#include <memory>
#include <optional>

#include <unistd.h>

using namespace IpmbTest;
using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

namespace {

// A message as a member received it.
struct Delivered
{
    IpmbProtocol::Sender sender;
    QByteArray selector;      // the selector section, as the sender wrote it
    QByteArray rest;          // attachments and payload section, as the sender wrote them
    QByteArray payload;       // the payload section
    bool ok = false;          // a Message frame with a valid sender block
};

// A Message frame as an endpoint writes it, with `value` as its payload.
QByteArray messageOf(const IpmbSelector &selector, const QVariant &value)
{
    QByteArray payload;
    if (!IpmbPayloadCodec::encode(value, payload))
        qWarning("cannot encode %s", value.typeName());
    return messageFrame(selector, payload);
}

QByteArray payloadOf(const QVariant &value)
{
    QByteArray payload;
    IpmbPayloadCodec::encode(value, payload);
    return payload;
}

// A member of the bus that is not an endpoint: this process on a raw connection.
class RawMember
{
public:
    struct Frame
    {
        IpmbProtocol::Header header;
        QByteArray body;
        QList<IpmbNativeHandle> handles;
    };

    // Connects, says Hello with `label` and waits for the Welcome.
    bool join(const QString &bus, const IpmbLabel &label)
    {
        return join(bus, IpmbProtocol::Hello::first(QByteArray(), label));
    }
    bool join(const QString &bus, const IpmbProtocol::Hello &hello)
    {
        const IpmbPlatform::Socket socket = connectRaw(bus);
        if (socket == IpmbPlatform::InvalidSocket)
            return false;
        m_connection = std::make_unique<IpmbConnection>(socket);
        m_label = hello.label;
        IpmbProtocol::appendHello(m_connection->tail(), hello);
        if (!flush())
            return false;
        const std::optional<Frame> frame = take(IpmbProtocol::FrameType::Welcome, 10000);
        const std::optional<IpmbProtocol::Welcome> welcome =
                frame ? IpmbProtocol::parseWelcome(frame->body, nullptr) : std::nullopt;
        if (welcome)
            m_welcome = *welcome;
        return welcome.has_value();
    }
    quint32 id() const { return m_welcome.endpointId; }
    quint32 controllerPid() const { return m_welcome.controllerPid; }
    const IpmbLabel &label() const { return m_label; }

    bool send(const QByteArray &frame, const QList<IpmbNativeHandle> &handles = {})
    {
        m_connection->appendHandles(handles);
        m_connection->tail().append(frame);
        return flush();
    }
    bool send(const IpmbSelector &selector, const QVariant &value) { return send(messageOf(selector, value)); }

    // The next message forwarded to this member; ok is false if none came within `msecs`.
    Delivered next(int msecs = 10000)
    {
        Delivered d;
        const std::optional<Frame> frame = take(IpmbProtocol::FrameType::Message, msecs);
        if (!frame)
            return d;
        const QByteArrayView body(frame->body);
        const std::optional<IpmbProtocol::Sender> sender =
                IpmbProtocol::parseSenderBlock(body.first(frame->header.senderLength), nullptr);
        if (!sender)
            return d;
        d.sender = *sender;
        d.selector = body.sliced(frame->header.senderLength, frame->header.selectorLength).toByteArray();
        d.rest = body.sliced(frame->header.senderLength + frame->header.selectorLength).toByteArray();
        d.payload = body.sliced(frame->header.payloadOffset()).toByteArray();
        d.ok = true;
        return d;
    }
    // Joins watching peers and reads the controller's list: the ids in it, or nullopt.
    std::optional<QSet<quint32>> joinWatching(const QString &bus, const IpmbLabel &label)
    {
        IpmbProtocol::Hello hello = IpmbProtocol::Hello::first(QByteArray(), label);
        hello.features = IpmbProtocol::WatchPeers;
        if (!join(bus, hello))
            return std::nullopt;
        QSet<quint32> listed;
        for (;;) {
            const std::optional<IpmbProtocol::Peer> peer = nextPeer();
            if (!peer)
                return std::nullopt;
            if (peer->event == IpmbProtocol::PeerEvent::ListEnd)
                return listed;
            listed.insert(peer->record.sender.endpointId);
        }
    }
    // The next Peer frame, which must come within `msecs`.
    std::optional<IpmbProtocol::Peer> nextPeer(int msecs = 10000)
    {
        const std::optional<Frame> frame = take(IpmbProtocol::FrameType::Peer, msecs);
        return frame ? IpmbProtocol::parsePeer(frame->body, nullptr) : std::nullopt;
    }
    // Whether a frame arrives within `msecs` (it stays to be taken).
    bool hasFrameWithin(int msecs) { return waitForFrames(1, msecs); }

    // The payload of the next message, or a null QByteArray.
    QByteArray nextPayload(int msecs = 10000)
    {
        const Delivered d = next(msecs);
        return d.ok ? d.payload : QByteArray();
    }

    void close() { m_connection.reset(); }
    // Whether the controller closed this connection within `msecs`.
    bool closedWithin(int msecs)
    {
        return QTest::qWaitFor([&] {
            return m_connection->readFrames([&](const IpmbConnection::Frame &frame) {
                m_frames.push_back({frame.header, frame.body.toByteArray(), frame.handles});
                return IpmbConnection::Action::Consumed;
            }) != IpmbConnection::ReadStatus::Ok;
        }, msecs);
    }

public:
    // The next frame, which must be of type `type`.
    std::optional<Frame> take(IpmbProtocol::FrameType type, int msecs)
    {
        if (!waitForFrames(1, msecs))
            return std::nullopt;
        Frame frame = std::move(m_frames.front());
        m_frames.pop_front();
        if (frame.header.type != type) {
            qWarning("a frame of type %d where one of type %d was due", int(frame.header.type), int(type));
            return std::nullopt;
        }
        return frame;
    }

private:
    bool flush()
    {
        return QTest::qWaitFor([&] {
            const IpmbPlatform::IoResult r = m_connection->flush();
            return r.status == IpmbPlatform::IoStatus::Ok && m_connection->bytesToWrite() == 0;
        }, 10000);
    }
    bool waitForFrames(size_t count, int msecs = 10000)
    {
        const bool ok = QTest::qWaitFor([&] {
            const auto status = m_connection->readFrames([&](const IpmbConnection::Frame &frame) {
                m_frames.push_back({frame.header, frame.body.toByteArray(), frame.handles});
                return IpmbConnection::Action::Consumed;
            });
            if (status != IpmbConnection::ReadStatus::Ok)
                qWarning("the controller ended the connection: %s", qPrintable(m_connection->errorString()));
            return m_frames.size() >= count || status != IpmbConnection::ReadStatus::Ok;
        }, msecs);
        return ok && m_frames.size() >= count;
    }

    std::unique_ptr<IpmbConnection> m_connection;
    IpmbLabel m_label;
    IpmbProtocol::Welcome m_welcome;
    std::deque<Frame> m_frames;
};

} // namespace

class tst_IpmbController : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void init();
    void cleanup();

    void welcome();
    void senderBlock();
    void unicastRoundRobin();
    void multicastReachesAllAndOnlyMatching();
    void membersThatJoinOrLeave();
    void noMatchWithoutTtlIsDropped();
    void ttlKeepsForALateMember();
    void ttlRunsOut();
    void hostEndpointIsAMemberToo();
    void claimedIdIsGrantedOnce();
    void peerFramesOnlyForWatchers();
    void malformedWatchDropsTheMember();
    void repliesGoOnlyWhereOwed();
    void multicastRequestDropsTheMember();
    void introductionHandsOverASocket();
    void channelsOnlyWhereAsked();
    void introductionToNobody();
    void addressedGoesOnlyToItsTarget();

private:
    QString m_bus;
    std::unique_ptr<IpmbEndpoint> m_host;   // hosts the controller
};

void tst_IpmbController::init()
{
    m_bus = uniqueBusName();
    m_host = std::make_unique<IpmbEndpoint>();
    m_host->setIdentifier(m_bus);
    m_host->setLabel({u"host"_s});
    m_host->join();
    QVERIFY(m_host->waitForJoined(10000));
    QVERIFY(m_host->isController());
}

void tst_IpmbController::cleanup()
{
    m_host.reset();
}

// Each member gets an id of its own, and learns the controller's process.
void tst_IpmbController::welcome()
{
    RawMember a, b, c;
    QVERIFY(a.join(m_bus, {u"a"_s}));
    QVERIFY(b.join(m_bus, {u"b"_s}));
    QVERIFY(c.join(m_bus, {u"c"_s}));
    QVERIFY(a.id() != 0 && b.id() != 0 && c.id() != 0);
    QVERIFY(a.id() != b.id() && b.id() != c.id() && a.id() != c.id());
    QCOMPARE(qint64(a.controllerPid()), QCoreApplication::applicationPid());
}

// A forwarded message is the sender's frame with the controller's sender block in front; the
// rest is not touched.
void tst_IpmbController::senderBlock()
{
    RawMember sender, receiver;
    QVERIFY(sender.join(m_bus, {u"moon"_s, u"satellite"_s}));
    QVERIFY(receiver.join(m_bus, {u"earth"_s}));
    const IpmbSelector selector = IpmbSelector::unicast(IpmbLabelOp("earth"), 5s);
    const QByteArray frame = messageOf(selector, u"hello"_s);
    QVERIFY(sender.send(frame));
    const Delivered d = receiver.next();
    QVERIFY(d.ok);
    QCOMPARE(d.sender.endpointId, sender.id());
    QCOMPARE(d.sender.pid, QCoreApplication::applicationPid());
    QCOMPARE(d.sender.uid, qint64(::geteuid()));
    QCOMPARE(d.sender.label, sender.label());
    QCOMPARE(d.selector + d.rest, frame.mid(IpmbProtocol::HeaderSize));
    QCOMPARE(d.payload, payloadOf(u"hello"_s));
}

// Unicast goes to exactly one matching member, spread round-robin: 30 messages to three workers
// are 10 each, and nobody else gets one.
void tst_IpmbController::unicastRoundRobin()
{
    RawMember workers[3], other, sender;
    for (RawMember &worker : workers)
        QVERIFY(worker.join(m_bus, {u"worker"_s}));
    QVERIFY(other.join(m_bus, {u"other"_s}));
    QVERIFY(sender.join(m_bus, {u"sender"_s}));
    for (int i = 0; i < 30; ++i)
        QVERIFY(sender.send(IpmbSelector::unicast(IpmbLabelOp("worker")), i));
    // A marker to everybody but the host: a member whose next message is the marker got nothing
    // else before it from this sender.
    QVERIFY(sender.send(IpmbSelector::multicast(!IpmbLabelOp("host")), u"marker"_s));
    const QByteArray marker = payloadOf(u"marker"_s);
    QList<int> seen;
    for (RawMember &worker : workers) {
        int count = 0;
        for (QByteArray payload = worker.nextPayload(); payload != marker; payload = worker.nextPayload()) {
            QVERIFY(!payload.isNull());
            const int value = IpmbPayloadCodec::decode(QByteArrayView(payload)).value.toInt();
            QVERIFY2(!seen.contains(value), qPrintable(QString::number(value)));
            seen.append(value);
            ++count;
        }
        QCOMPARE(count, 10);
    }
    QCOMPARE(seen.size(), 30);
    QCOMPARE(other.nextPayload(), marker);
    QCOMPARE(sender.nextPayload(), marker);   // a multicast reaches its sender when it matches
}

void tst_IpmbController::multicastReachesAllAndOnlyMatching()
{
    RawMember gpu0, gpu1, plain, ui, sender;
    QVERIFY(gpu0.join(m_bus, {u"renderer"_s, u"gpu0"_s}));
    QVERIFY(gpu1.join(m_bus, {u"renderer"_s, u"gpu1"_s}));
    QVERIFY(plain.join(m_bus, {u"renderer"_s}));
    QVERIFY(ui.join(m_bus, {u"ui"_s}));
    QVERIFY(sender.join(m_bus, {u"sender"_s}));
    QSignalSpy atHost(m_host.get(), &IpmbEndpoint::messageReceived);
    QVERIFY(sender.send(IpmbSelector::multicast(IpmbLabelOp("renderer") && !IpmbLabelOp("gpu0")), u"frame"_s));
    QVERIFY(sender.send(IpmbSelector::multicast(IpmbLabelOp::matchAll()), u"marker"_s));
    const QByteArray frame = payloadOf(u"frame"_s);
    const QByteArray marker = payloadOf(u"marker"_s);
    for (RawMember *m : {&gpu1, &plain}) {
        QCOMPARE(m->nextPayload(), frame);
        QCOMPARE(m->nextPayload(), marker);
    }
    for (RawMember *m : {&gpu0, &ui, &sender})
        QCOMPARE(m->nextPayload(), marker);
    // The host too gets the marker only (the frame would have come first).
    QTRY_COMPARE_WITH_TIMEOUT(atHost.size(), 1, 10000);
    QCOMPARE(atHost.at(0).at(0).value<IpmbMessage>().payload(), QVariant(u"marker"_s));
}

// The matches of a selector follow the members: one that joined later gets the next message of
// a selector already used, one that left gets none.
void tst_IpmbController::membersThatJoinOrLeave()
{
    RawMember first, sender;
    QVERIFY(first.join(m_bus, {u"viewer"_s}));
    QVERIFY(sender.join(m_bus, {u"sender"_s}));
    const IpmbSelector toViewers = IpmbSelector::multicast(IpmbLabelOp("viewer"));
    QVERIFY(sender.send(toViewers, 1));
    QCOMPARE(first.nextPayload(), payloadOf(1));

    RawMember second;
    QVERIFY(second.join(m_bus, {u"viewer"_s}));
    QVERIFY(sender.send(toViewers, 2));
    QCOMPARE(first.nextPayload(), payloadOf(2));
    QCOMPARE(second.nextPayload(), payloadOf(2));

    // Unicast among the two, then among the one left.
    first.close();
    const IpmbSelector toOneViewer = IpmbSelector::unicast(IpmbLabelOp("viewer"));
    for (int i = 0; i < 4; ++i)
        QVERIFY(sender.send(toOneViewer, 10 + i));
    for (int i = 0; i < 4; ++i)
        QCOMPARE(second.nextPayload(), payloadOf(10 + i));
}

void tst_IpmbController::noMatchWithoutTtlIsDropped()
{
    RawMember sender;
    QVERIFY(sender.join(m_bus, {u"sender"_s}));
    QVERIFY(sender.send(IpmbSelector::unicast(IpmbLabelOp("late")), u"dropped"_s));
    QVERIFY(sender.send(IpmbSelector::multicast(IpmbLabelOp("late")), u"dropped too"_s));
    // The controller has read both once it forwards the next one (to the sender itself).
    QVERIFY(sender.send(IpmbSelector::unicast(IpmbLabelOp("sender")), u"sync"_s));
    QCOMPARE(sender.nextPayload(), payloadOf(u"sync"_s));
    RawMember late;
    QVERIFY(late.join(m_bus, {u"late"_s}));
    QVERIFY(sender.send(IpmbSelector::unicast(IpmbLabelOp("late")), u"after"_s));
    QCOMPARE(late.nextPayload(), payloadOf(u"after"_s));
}

// A message that matches nobody yet waits its ttl for a member that matches; it comes right after
// that member's Welcome, with the sender block of its sender.
void tst_IpmbController::ttlKeepsForALateMember()
{
    RawMember sender;
    QVERIFY(sender.join(m_bus, {u"sender"_s}));
    QVERIFY(sender.send(IpmbSelector::unicast(IpmbLabelOp("late"), 60s), u"kept"_s));
    QVERIFY(sender.send(IpmbSelector::unicast(IpmbLabelOp("sender")), u"sync"_s));
    QCOMPARE(sender.nextPayload(), payloadOf(u"sync"_s));
    RawMember other, late;
    QVERIFY(other.join(m_bus, {u"other"_s}));   // matches not: the message stays
    QVERIFY(late.join(m_bus, {u"late"_s}));
    const Delivered d = late.next();
    QVERIFY(d.ok);
    QCOMPARE(d.payload, payloadOf(u"kept"_s));
    QCOMPARE(d.sender.endpointId, sender.id());
    QCOMPARE(d.sender.label, sender.label());
    // Delivered once: a second late member does not get it.
    RawMember later;
    QVERIFY(later.join(m_bus, {u"late"_s}));
    QVERIFY(sender.send(IpmbSelector::multicast(IpmbLabelOp("late")), u"marker"_s));
    QCOMPARE(later.nextPayload(), payloadOf(u"marker"_s));
    QCOMPARE(late.nextPayload(), payloadOf(u"marker"_s));
}

void tst_IpmbController::ttlRunsOut()
{
    RawMember sender;
    QVERIFY(sender.join(m_bus, {u"sender"_s}));
    QVERIFY(sender.send(IpmbSelector::unicast(IpmbLabelOp("late"), 200ms), u"expires"_s));
    QVERIFY(sender.send(IpmbSelector::unicast(IpmbLabelOp("late"), 60s), u"kept"_s));
    QVERIFY(sender.send(IpmbSelector::unicast(IpmbLabelOp("sender")), u"sync"_s));
    QCOMPARE(sender.nextPayload(), payloadOf(u"sync"_s));
    // The ttl is what is under test, so time has to pass: wait until the short one has run out.
    const QDeadlineTimer expiry(400);
    QTRY_VERIFY_WITH_TIMEOUT(expiry.hasExpired(), 5000);
    RawMember late;
    QVERIFY(late.join(m_bus, {u"late"_s}));
    QCOMPARE(late.nextPayload(), payloadOf(u"kept"_s));
    QVERIFY(sender.send(IpmbSelector::unicast(IpmbLabelOp("late")), u"marker"_s));
    QCOMPARE(late.nextPayload(), payloadOf(u"marker"_s));
}

// The endpoint in the controller's process is routed to like any member, and sees who sent it.
void tst_IpmbController::hostEndpointIsAMemberToo()
{
    RawMember sender;
    QVERIFY(sender.join(m_bus, {u"moon"_s}));
    QSignalSpy received(m_host.get(), &IpmbEndpoint::messageReceived);
    QVERIFY(sender.send(IpmbSelector::unicast(IpmbLabelOp("host")), 42));
    QTRY_COMPARE_WITH_TIMEOUT(received.size(), 1, 10000);
    const IpmbMessage message = received.at(0).at(0).value<IpmbMessage>();
    QCOMPARE(message.payload(), QVariant(42));
    QCOMPARE(message.senderId(), sender.id());
    QCOMPARE(message.senderLabel(), sender.label());
    QCOMPARE(message.senderPid(), QCoreApplication::applicationPid());

    // And the other way round.
    QVERIFY(m_host->send(IpmbSelector::unicast(IpmbLabelOp("moon")), u"back"_s));
    const Delivered d = sender.next();
    QVERIFY(d.ok);
    QCOMPARE(d.payload, payloadOf(u"back"_s));
    QCOMPARE(d.sender.label, m_host->label());
}

// After a failover an endpoint claims its id and join time again; the controller grants a claim
// only while no live member holds that id.
void tst_IpmbController::claimedIdIsGrantedOnce()
{
    IpmbProtocol::Hello hello = IpmbProtocol::Hello::first(QByteArray(), IpmbLabel{u"back"_s});
    hello.claimedId = 0x12345678;
    hello.joinedAt = 1764650000123;
    hello.features = IpmbProtocol::WatchPeers;
    RawMember back, twin, watcher;
    QVERIFY(back.join(m_bus, hello));
    QCOMPARE(back.id(), 0x12345678u);
    hello.label = IpmbLabel{u"twin"_s};
    QVERIFY(twin.join(m_bus, hello));
    QVERIFY(twin.id() != 0x12345678u && twin.id() != 0);
    QVERIFY(watcher.join(m_bus, IpmbLabel{u"watcher"_s}));
    // back watches: the host's endpoint, then the twin and the watcher join.
    const std::optional<IpmbProtocol::Peer> host = back.nextPeer();
    QVERIFY(host && host->event == IpmbProtocol::PeerEvent::Present);
    QCOMPARE(host->record.sender.endpointId, m_host->endpointId());
    QCOMPARE(host->record.flags, IpmbProtocol::PeerHostsController);
    QCOMPARE(back.nextPeer()->event, IpmbProtocol::PeerEvent::ListEnd);
    const std::optional<IpmbProtocol::Peer> joined = back.nextPeer();
    QVERIFY(joined && joined->event == IpmbProtocol::PeerEvent::Joined);
    QCOMPARE(joined->record.sender.endpointId, twin.id());
    // The twin's claim was refused, so its join time is its own, not the claimed one.
    QVERIFY(joined->record.joinedAt != hello.joinedAt);
    QCOMPARE(joined->record.flags, quint8(0));
    // The twin listed back with the join time back claimed.
    const std::optional<IpmbProtocol::Peer> aboutBack = twin.nextPeer();
    QVERIFY(aboutBack);
    QVERIFY(aboutBack->record.sender.endpointId == back.id() || aboutBack->record.sender.endpointId == m_host->endpointId());
    if (aboutBack->record.sender.endpointId != back.id()) {
        const std::optional<IpmbProtocol::Peer> second = twin.nextPeer();
        QVERIFY(second);
        QCOMPARE(second->record.sender.endpointId, back.id());
        QCOMPARE(second->record.joinedAt, hello.joinedAt);
    } else {
        QCOMPARE(aboutBack->record.joinedAt, hello.joinedAt);
    }
}

// Peer frames go to the members that watch, and only while they do; a member that leaves is
// reported with its id.
void tst_IpmbController::peerFramesOnlyForWatchers()
{
    RawMember watcher, quiet, comer;
    QCOMPARE(watcher.joinWatching(m_bus, IpmbLabel{u"watcher"_s}), QSet<quint32>{m_host->endpointId()});
    QVERIFY(quiet.join(m_bus, IpmbLabel{u"quiet"_s}));
    std::optional<IpmbProtocol::Peer> p = watcher.nextPeer();
    QVERIFY(p && p->event == IpmbProtocol::PeerEvent::Joined);
    QCOMPARE(p->record.sender.endpointId, quiet.id());
    QCOMPARE(p->record.sender.pid, QCoreApplication::applicationPid());
    QCOMPARE(p->record.sender.label, IpmbLabel{u"quiet"_s});

    quiet.close();
    p = watcher.nextPeer();
    QVERIFY(p && p->event == IpmbProtocol::PeerEvent::Left);
    QCOMPARE(p->record.sender.endpointId, quiet.id());

    // Watching off: a join is not reported, and nothing else comes either.
    QByteArray watch;
    IpmbProtocol::appendWatch(watch, 0);
    QVERIFY(watcher.send(watch));
    QVERIFY(comer.join(m_bus, IpmbLabel{u"comer"_s}));
    QVERIFY(!watcher.hasFrameWithin(200));
    // On again: the whole list, the comer in it.
    watch.clear();
    IpmbProtocol::appendWatch(watch, IpmbProtocol::WatchPeers);
    QVERIFY(watcher.send(watch));
    QSet<quint32> listed;
    for (;;) {
        p = watcher.nextPeer();
        QVERIFY(p);
        if (p->event == IpmbProtocol::PeerEvent::ListEnd)
            break;
        QCOMPARE(p->event, IpmbProtocol::PeerEvent::Present);
        listed.insert(p->record.sender.endpointId);
    }
    QCOMPARE(listed, (QSet<quint32>{m_host->endpointId(), comer.id()}));
}

void tst_IpmbController::malformedWatchDropsTheMember()
{
    RawMember member, watcher;
    QVERIFY(watcher.joinWatching(m_bus, IpmbLabel{u"watcher"_s}));
    QVERIFY(member.join(m_bus, IpmbLabel{u"member"_s}));
    QCOMPARE(watcher.nextPeer()->event, IpmbProtocol::PeerEvent::Joined);
    QByteArray watch;
    IpmbProtocol::appendWatch(watch, IpmbProtocol::WatchPeers);
    watch.append('!');  // a byte too many, and a body length that says so
    qToLittleEndian<quint32>(quint32(watch.size() - IpmbProtocol::HeaderSize), watch.data() + 8);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(u"dropping endpoint .*malformed Watch"_s));
    QVERIFY(member.send(watch));
    const std::optional<IpmbProtocol::Peer> p = watcher.nextPeer();
    QVERIFY(p && p->event == IpmbProtocol::PeerEvent::Left);
    QCOMPARE(p->record.sender.endpointId, member.id());
}

// A reply reaches its requester only from the endpoint that got the request, once: a forged
// reply, a second one and one to a request never made are dropped.
void tst_IpmbController::repliesGoOnlyWhereOwed()
{
    RawMember asker, replier, forger;
    QVERIFY(asker.join(m_bus, IpmbLabel{u"asker"_s}));
    QVERIFY(replier.join(m_bus, IpmbLabel{u"replier"_s}));
    QVERIFY(forger.join(m_bus, IpmbLabel{u"forger"_s}));
    const auto frameOf = [](const IpmbProtocol::Call &call, const QVariant &value) {
        QByteArray frame;
        IpmbErrorInfo error;
        if (!IpmbProtocol::appendMessage(frame, IpmbSelector::unicast(IpmbLabelOp("replier")), value, &error, 0, 0, {},
                                         nullptr, call))
            qWarning("cannot write the frame: %s", qPrintable(error.message));
        return frame;
    };
    QVERIFY(asker.send(frameOf({IpmbProtocol::Tracked | IpmbProtocol::Request, 77, 0}, u"question"_s)));
    const Delivered request = replier.next();
    QVERIFY(request.ok);
    QCOMPARE(request.sender.endpointId, asker.id());

    const IpmbProtocol::Call answer {IpmbProtocol::Reply, 77, asker.id()};
    QVERIFY(forger.send(frameOf(answer, u"forged"_s)));                             // not owed by it
    QVERIFY(replier.send(frameOf({IpmbProtocol::Reply, 78, asker.id()}, u"never asked"_s)));
    QVERIFY(replier.send(frameOf(answer, u"answer"_s)));
    QVERIFY(replier.send(frameOf(answer, u"second"_s)));                            // owed no more
    QVERIFY(replier.send(IpmbSelector::unicast(IpmbLabelOp("asker")), u"marker"_s));
    const Delivered first = asker.next();
    QVERIFY(first.ok);
    QCOMPARE(first.sender.endpointId, replier.id());
    QCOMPARE(first.payload, payloadOf(u"answer"_s));
    const Delivered second = asker.next();
    QVERIFY(second.ok);
    QCOMPARE(second.payload, payloadOf(u"marker"_s));  // nothing else came before it
}

void tst_IpmbController::multicastRequestDropsTheMember()
{
    RawMember member, watcher;
    QVERIFY(watcher.joinWatching(m_bus, IpmbLabel{u"watcher"_s}));
    QVERIFY(member.join(m_bus, IpmbLabel{u"member"_s}));
    QCOMPARE(watcher.nextPeer()->event, IpmbProtocol::PeerEvent::Joined);
    // appendMessage() refuses to write it: a hostile peer writes the flag by hand.
    QByteArray frame = messageOf(IpmbSelector::multicast(IpmbLabelOp("watcher")), 1);
    QByteArray body;
    body.resize(8, '\0');
    frame.insert(IpmbProtocol::HeaderSize, body);
    frame[7] = char(IpmbProtocol::Tracked | IpmbProtocol::Request);
    qToLittleEndian<quint32>(qFromLittleEndian<quint32>(frame.constData() + 8) + 8, frame.data() + 8);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(u"dropping endpoint .*a multicast request"_s));
    QVERIFY(member.send(frame));
    const std::optional<IpmbProtocol::Peer> p = watcher.nextPeer();
    QVERIFY(p && p->event == IpmbProtocol::PeerEvent::Left);
    QCOMPARE(p->record.sender.endpointId, member.id());
}

// A asks for B; B hears it with A's sender block, makes a socket pair and answers with one end;
// A gets that end, and the two talk on it without the controller.
void tst_IpmbController::introductionHandsOverASocket()
{
    RawMember a, b;
    QVERIFY(a.join(m_bus, IpmbLabel{u"a"_s}));
    QVERIFY(b.join(m_bus, IpmbLabel{u"b"_s}));
    QByteArray frame;
    IpmbProtocol::appendIntroduce(frame, b.id());
    QVERIFY(a.send(frame));

    const std::optional<RawMember::Frame> introduce = b.take(IpmbProtocol::FrameType::Introduce, 10000);
    QVERIFY(introduce);
    QString why;
    const std::optional<IpmbProtocol::Introduced> introduced = IpmbProtocol::parseIntroduced(introduce->body, &why);
    QVERIFY2(introduced, qPrintable(why));
    QCOMPARE(introduced->introducer, a.id());
    QCOMPARE(introduced->sender.pid, QCoreApplication::applicationPid());
    QCOMPARE(introduced->sender.label, a.label());

    IpmbPlatform::Socket mine, theirs;
    IpmbErrorInfo error;
    QVERIFY(IpmbPlatform::socketPair(&mine, &theirs, &error));
    IpmbConnection channelAtB(mine);
    frame.clear();
    IpmbProtocol::appendChannel(frame, a.id(), IpmbErrorCode::None);
    QVERIFY(b.send(frame, {IpmbNativeHandle::adopt(theirs)}));

    const std::optional<RawMember::Frame> answer = a.take(IpmbProtocol::FrameType::Channel, 10000);
    QVERIFY(answer);
    const std::optional<IpmbProtocol::Channel> channel = IpmbProtocol::parseChannel(answer->header, answer->body, &why);
    QVERIFY2(channel, qPrintable(why));
    QCOMPARE(channel->peer, b.id());
    QCOMPARE(channel->status, IpmbErrorCode::None);
    QCOMPARE(answer->handles.size(), 1);
    QVERIFY(IpmbPlatform::isLocalStreamSocket(answer->handles.at(0).handle()));
    const IpmbPlatform::IoSlice ping {"ping", 4};
    QCOMPARE(IpmbPlatform::write(IpmbPlatform::Socket(answer->handles.at(0).handle()), &ping, 1).bytes, 4);
    char got[4] = {};
    qint64 read = 0;
    QVERIFY(QTest::qWaitFor([&] { return (read = IpmbPlatform::read(mine, got, 4).bytes) != 0; }, 10000));
    QCOMPARE(read, 4);
    QCOMPARE(QByteArrayView(got, 4), "ping");
}

// A Channel nobody asked for is dropped (its socket closed); one whose handle is not a socket
// costs its sender the connection.
void tst_IpmbController::channelsOnlyWhereAsked()
{
    RawMember a, pusher;
    QVERIFY(a.join(m_bus, IpmbLabel{u"a"_s}));
    QVERIFY(pusher.join(m_bus, IpmbLabel{u"pusher"_s}));
    IpmbPlatform::Socket mine, theirs;
    IpmbErrorInfo error;
    QVERIFY(IpmbPlatform::socketPair(&mine, &theirs, &error));
    QByteArray frame;
    IpmbProtocol::appendChannel(frame, a.id(), IpmbErrorCode::None);
    QVERIFY(pusher.send(frame, {IpmbNativeHandle::adopt(theirs)}));
    QVERIFY(pusher.send(IpmbSelector::unicast(IpmbLabelOp("a")), u"marker"_s));
    QCOMPARE(a.nextPayload(), payloadOf(u"marker"_s));  // and no Channel before it
    // The controller closed its copy: the pusher's end sees the end of the stream.
    char byte;
    QVERIFY(QTest::qWaitFor([&] { return IpmbPlatform::read(mine, &byte, 1).status == IpmbPlatform::IoStatus::Closed; }, 10000));
    IpmbPlatform::closeSocket(mine);

    // Even when asked for: a file is not a socket.
    frame.clear();
    IpmbProtocol::appendIntroduce(frame, pusher.id());
    QVERIFY(a.send(frame));
    QVERIFY(pusher.take(IpmbProtocol::FrameType::Introduce, 10000));
    QFile file(QCoreApplication::applicationFilePath());
    QVERIFY(file.open(QIODevice::ReadOnly));
    frame.clear();
    IpmbProtocol::appendChannel(frame, a.id(), IpmbErrorCode::None);
    QVERIFY(pusher.send(frame, {IpmbNativeHandle::duplicate(file.handle())}));
    QVERIFY(pusher.closedWithin(10000));
    // A hears that its introduction failed: the endpoint it asked for has gone.
    const std::optional<RawMember::Frame> answer = a.take(IpmbProtocol::FrameType::Channel, 10000);
    QVERIFY(answer);
    const std::optional<IpmbProtocol::Channel> channel = IpmbProtocol::parseChannel(answer->header, answer->body, nullptr);
    QVERIFY(channel);
    QCOMPARE(channel->status, IpmbErrorCode::PeerLeft);
    QVERIFY(answer->handles.isEmpty());
}

// An introduction to an id nobody holds, or to itself, is answered at once without a socket.
void tst_IpmbController::introductionToNobody()
{
    RawMember a;
    QVERIFY(a.join(m_bus, IpmbLabel{u"a"_s}));
    for (const quint32 target : {a.id() ^ 0x5a5a5a5au, a.id()}) {
        QByteArray frame;
        IpmbProtocol::appendIntroduce(frame, target);
        QVERIFY(a.send(frame));
        const std::optional<RawMember::Frame> answer = a.take(IpmbProtocol::FrameType::Channel, 10000);
        QVERIFY(answer);
        const std::optional<IpmbProtocol::Channel> channel = IpmbProtocol::parseChannel(answer->header, answer->body, nullptr);
        QVERIFY(channel);
        QCOMPARE(channel->peer, target);
        QCOMPARE(channel->status, IpmbErrorCode::NoRoute);
    }
}

// An addressed message goes to its target only, and only if the target's label matches; a tracked
// one that cannot go there is undeliverable, whatever its ttl.
void tst_IpmbController::addressedGoesOnlyToItsTarget()
{
    RawMember sender, one, two;
    QVERIFY(sender.join(m_bus, IpmbLabel{u"sender"_s}));
    QVERIFY(one.join(m_bus, IpmbLabel{u"worker"_s, u"one"_s}));
    QVERIFY(two.join(m_bus, IpmbLabel{u"worker"_s}));
    const auto addressed = [](const IpmbSelector &selector, quint32 target, quint8 flags, const QVariant &value) {
        QByteArray frame;
        IpmbErrorInfo error;
        if (!IpmbProtocol::appendMessage(frame, selector, value, &error, 0, 0, {}, nullptr,
                                         {quint8(flags | IpmbProtocol::Addressed), 5, 0, target}))
            qWarning("cannot write the frame: %s", qPrintable(error.message));
        return frame;
    };
    const IpmbSelector workers = IpmbSelector::unicast(IpmbLabelOp("worker"), 5s);
    for (int i = 0; i < 10; ++i)  // round-robin would give `one` half of them
        QVERIFY(sender.send(addressed(workers, two.id(), 0, i)));
    for (int i = 0; i < 10; ++i)
        QCOMPARE(two.nextPayload(), payloadOf(i));
    // Not matching its target's label, or to an endpoint that left: nobody gets it.
    QVERIFY(sender.send(addressed(IpmbSelector::unicast(IpmbLabelOp("one"), 5s), two.id(), IpmbProtocol::Tracked, 1)));
    const std::optional<RawMember::Frame> notice = sender.take(IpmbProtocol::FrameType::Undeliverable, 10000);
    QVERIFY(notice);
    QCOMPARE(IpmbProtocol::parseUndeliverable(notice->body, nullptr)->error, IpmbErrorCode::NoRoute);
    QVERIFY(sender.send(IpmbSelector::multicast(IpmbLabelOp("worker")), u"marker"_s));
    QCOMPARE(one.nextPayload(), payloadOf(u"marker"_s));
    QCOMPARE(two.nextPayload(), payloadOf(u"marker"_s));
}

QTEST_MAIN(tst_IpmbController)
#include "tst_ipmbcontroller.moc"
