// SPDX-License-Identifier: BSD-3-Clause
// The frame codec on its own: headers, handshake bodies, and what the strict decoder rejects.

#include "ipmbpayloadcodec_p.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qendian.h>
#include <QtTest/qtest.h>

using namespace IpmbProtocol;
using namespace IpmbLimits;
using namespace Qt::StringLiterals;

static QVariant payloadOf(const MessageSections &sections)
{
    return IpmbPayloadCodec::decode(sections.payload).value;
}

class tst_IpmbProtocol : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void headerRoundTrip();
    void rejectedHeaders_data();
    void rejectedHeaders();
    void messageFrame();
    void payloadTooLarge();
    void payloadInRegion();
    void refuseIsReadableAcrossVersions();
    void helloRoundTrip();
    void peerFrames();
    void callSections();
    void channelFrames();
    void watchFrame();
};

void tst_IpmbProtocol::headerRoundTrip()
{
    Header h;
    h.type = FrameType::Message;
    h.bodyLength = 1000;
    h.senderLength = 10;
    h.selectorLength = 20;
    char bytes[HeaderSize];
    writeHeader(bytes, h);
    QCOMPARE(QByteArray(bytes, 4), QByteArray("IPMB"));
    QString why;
    const std::optional<Header> parsed = parseHeader(bytes, &why);
    QVERIFY2(parsed, qPrintable(why));
    QCOMPARE(parsed->version, Version);
    QCOMPARE(parsed->type, FrameType::Message);
    QCOMPARE(parsed->bodyLength, 1000u);
    QCOMPARE(parsed->senderLength, 10u);
    QCOMPARE(parsed->selectorLength, 20u);
    QCOMPARE(parsed->payloadOffset(), qint64(30));
    QCOMPARE(parsed->frameLength(), qint64(HeaderSize + 1000));
}

void tst_IpmbProtocol::rejectedHeaders_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("reason");
    auto make = [](auto change) {
        Header h;
        h.type = FrameType::Message;
        h.bodyLength = 100;
        QByteArray out(HeaderSize, '\0');
        writeHeader(out.data(), h);
        change(out);
        return out;
    };
    auto put32 = [](QByteArray &b, int at, quint32 v) { qToLittleEndian(v, b.data() + at); };
    QTest::addRow("magic") << make([](QByteArray &b) { b[0] = 'X'; }) << QStringLiteral("magic");
    QTest::addRow("type 0") << make([](QByteArray &b) { b[6] = 0; }) << QStringLiteral("frame type");
    QTest::addRow("type 200") << make([](QByteArray &b) { b[6] = char(200); }) << QStringLiteral("frame type");
    QTest::addRow("huge body") << make([&](QByteArray &b) { put32(b, 8, 0xFFFFFFFFu); }) << QStringLiteral("limit");
    QTest::addRow("huge control body")
            << make([&](QByteArray &b) { b[6] = char(FrameType::Hello); put32(b, 8, 2 * 1024 * 1024); })
            << QStringLiteral("limit");
    QTest::addRow("sections in control frame")
            << make([&](QByteArray &b) { b[6] = char(FrameType::Welcome); put32(b, 16, 4); })
            << QStringLiteral("control frame");
    QTest::addRow("selector beyond body") << make([&](QByteArray &b) { put32(b, 16, 101); })
                                          << QStringLiteral("exceed the body");
    QTest::addRow("sender+selector beyond body")
            << make([&](QByteArray &b) { put32(b, 12, 60); put32(b, 16, 41); }) << QStringLiteral("exceed the body");
    QTest::addRow("huge selector") << make([&](QByteArray &b) { put32(b, 8, 3 * 1024 * 1024); put32(b, 16, 2 * 1024 * 1024); })
                                   << QStringLiteral("selector of 2097152 bytes exceeds the limit");
    QTest::addRow("huge sender block") << make([&](QByteArray &b) { put32(b, 8, 3 * 1024 * 1024); put32(b, 12, 262671); })
                                       << QStringLiteral("sender block of 262671 bytes exceeds the limit of 262670");
    // The payload is what remains of the body: its limit is checked apart from the body's.
    QTest::addRow("payload over its limit") << make([&](QByteArray &b) { put32(b, 8, MaxPayload + 1); })
                                            << QStringLiteral("payload of 268435457 bytes exceeds the limit");
    QTest::addRow("handles without attachment bytes") << make([&](QByteArray &b) { b[24] = 1; })
                                                      << QStringLiteral("attachment section");
    QTest::addRow("attachment bytes without handles") << make([&](QByteArray &b) { put32(b, 20, 4); })
                                                      << QStringLiteral("attachment section");
    QTest::addRow("too many handles") << make([&](QByteArray &b) { b[24] = 65; put32(b, 20, 65); })
                                      << QStringLiteral("exceed the limit");
    QTest::addRow("handles in a control frame")
            << make([&](QByteArray &b) { b[6] = char(FrameType::Welcome); b[24] = 1; }) << QStringLiteral("control frame");
}

void tst_IpmbProtocol::rejectedHeaders()
{
    QFETCH(QByteArray, bytes);
    QFETCH(QString, reason);
    QString why;
    QVERIFY(!parseHeader(bytes.constData(), &why));
    QVERIFY2(why.contains(reason), qPrintable(why));
}

void tst_IpmbProtocol::messageFrame()
{
    QByteArray out = "prefix";
    IpmbErrorInfo error;
    QVERIFY(appendMessage(out, IpmbSelector::multicast(IpmbLabelOp("a") && !IpmbLabelOp("b")),
                          QStringLiteral("hi"), &error));
    QVERIFY(out.startsWith("prefix"));
    const std::optional<Header> h = parseHeader(out.constData() + 6, nullptr);
    QVERIFY(h);
    QCOMPARE(h->frameLength(), qint64(out.size() - 6));
    QCOMPARE(h->senderLength, 0u);
    QVERIFY(h->selectorLength > 0);
}

// doc/protocol.md, "Payloads in a region": the frame keeps its selector and attachments, gains
// one attachment of kind 3, and its payload section becomes the payload's length.
void tst_IpmbProtocol::payloadInRegion()
{
    const IpmbSelector selector = IpmbSelector::unicast(IpmbLabelOp("a"));
    const QByteArray value(1000, 'p');
    IpmbErrorInfo error;
    QByteArray inlineFrame;
    QVERIFY(appendMessage(inlineFrame, selector, value, &error, 2));
    const Header before = *parseHeader(inlineFrame.constData(), nullptr);
    const QByteArray payload =
            messageSections(before, QByteArrayView(inlineFrame).sliced(HeaderSize)).payload.toByteArray();
    QCOMPARE(payload.size(), 1 + 10 + 1000);   // name length, "QByteArray", the bytes
    QVERIFY(payload.endsWith(value));
    const QByteArray selectorAndAttachments = inlineFrame.mid(HeaderSize, before.payloadOffset());

    // A QByteArray is encoded straight into the region.
    QByteArray region;
    PayloadPlacement placement;
    placement.threshold = 1000;
    placement.allocate = [&](qsizetype size) {
        region.resize(size);
        return region.data();
    };
    QByteArray frame;
    bool inRegion = false;
    QVERIFY(appendMessage(frame, selector, value, &error, 2, 0, placement, &inRegion));
    QVERIFY(inRegion);
    QCOMPARE(region, payload);
    const std::optional<Header> after = parseHeader(frame.constData(), nullptr);
    QVERIFY(after);
    QCOMPARE(after->frameLength(), qint64(frame.size()));
    QCOMPARE(after->selectorLength, before.selectorLength);
    QCOMPARE(after->attachmentLength, before.attachmentLength + 1);
    QCOMPARE(after->handleCount, quint16(before.handleCount + 1));
    QVERIFY(frame.mid(HeaderSize).startsWith(selectorAndAttachments));
    QCOMPARE(frame.at(HeaderSize + after->payloadOffset() - 1), char(AttachmentKind::PayloadRegion));
    QString why;
    const MessageSections sections = messageSections(*after, QByteArrayView(frame).sliced(HeaderSize));
    QCOMPARE(parseRegionPayloadLength(sections.payload, &why), std::optional<qint64>(payload.size()));

    // Any other type is encoded inline first, then moved: the same layout.
    const QVariantList list {QByteArray(2000, 'm'), 7};
    QByteArray inlineList, listFrame;
    QVERIFY(appendMessage(inlineList, selector, list, &error, 0, 1));
    const Header listBefore = *parseHeader(inlineList.constData(), nullptr);
    QVERIFY(appendMessage(listFrame, selector, list, &error, 0, 1, placement, &inRegion));
    QVERIFY(inRegion);
    QCOMPARE(region, messageSections(listBefore, QByteArrayView(inlineList).sliced(HeaderSize)).payload.toByteArray());
    const Header listAfter = *parseHeader(listFrame.constData(), nullptr);
    QCOMPARE(listAfter.attachmentLength, 2u);
    QCOMPARE(messageSections(listAfter, QByteArrayView(listFrame).sliced(HeaderSize)).attachments,
             QByteArrayView("\x02\x03"));

    // Below the threshold, or with no region to be had, the payload stays inline.
    QByteArray small;
    QVERIFY(appendMessage(small, selector, QByteArray(10, 's'), &error, 2, 0, placement, &inRegion));
    QVERIFY(!inRegion);
    placement.allocate = [](qsizetype) -> char * { return nullptr; };
    QByteArray noRegion;
    QVERIFY(appendMessage(noRegion, selector, value, &error, 2, 0, placement, &inRegion));
    QVERIFY(!inRegion);
    QCOMPARE(noRegion, inlineFrame);

    // What a receiver refuses: a section of another size, a length over the payload limit.
    QVERIFY(!parseRegionPayloadLength(QByteArray(7, '\0'), &why));
    QVERIFY2(why.contains(QLatin1String("not 8")), qPrintable(why));
    QVERIFY(!parseRegionPayloadLength(QByteArray(9, '\0'), &why));
    QByteArray tooLong(8, '\0');
    qToLittleEndian<quint64>(quint64(MaxPayload) + 1, tooLong.data());
    QVERIFY(!parseRegionPayloadLength(tooLong, &why));
    QVERIFY2(why.contains(QLatin1String("limit")), qPrintable(why));
}

void tst_IpmbProtocol::payloadTooLarge()
{
    QByteArray out = "keep";
    IpmbErrorInfo error;
    const QByteArray big(MaxPayload + 1, 'x');
    QVERIFY(!appendMessage(out, IpmbSelector(), big, &error));
    QVERIFY(error.code == IpmbErrorCode::PayloadTooLarge);
    QVERIFY2(error.message.contains(QString::number(MaxPayload)), qPrintable(error.message));
    QCOMPARE(out, QByteArray("keep")); // nothing half-written
}

void tst_IpmbProtocol::refuseIsReadableAcrossVersions()
{
    QByteArray out;
    appendRefuse(out, IpmbErrorCode::TokenMismatch, QStringLiteral("no entry"));
    // Pretend a controller of version 7 wrote it: the Refuse body layout is frozen.
    qToLittleEndian<quint16>(7, out.data() + 4);
    const std::optional<Header> h = parseHeader(out.constData(), nullptr);
    QVERIFY(h);
    QCOMPARE(h->version, quint16(7));
    const std::optional<Refuse> r = parseRefuse(QByteArrayView(out).sliced(HeaderSize), nullptr);
    QVERIFY(r);
    QVERIFY(r->error == IpmbErrorCode::TokenMismatch);
    // On the wire it is IpmbEndpoint::Error's number, which older and newer endpoints read.
    QCOMPARE(qFromLittleEndian<quint16>(out.constData() + HeaderSize), quint16(4));
    QCOMPARE(r->reason, QStringLiteral("no entry"));
    QVERIFY(!parseRefuse(QByteArrayView(out).sliced(HeaderSize).chopped(1), nullptr));
}

void tst_IpmbProtocol::helloRoundTrip()
{
    QByteArray out;
    Hello sent = Hello::first("token", IpmbLabel{QStringLiteral("x"), QStringLiteral("y")});
    sent.features = WatchPeers | HostsController;
    sent.claimedId = 0xdeadbeef;
    sent.joinedAt = 1764650000123;
    appendHello(out, sent);
    const std::optional<Header> h = parseHeader(out.constData(), nullptr);
    QVERIFY(h);
    QCOMPARE(h->type, FrameType::Hello);
    const std::optional<Hello> hello = parseHello(QByteArrayView(out).sliced(HeaderSize), nullptr);
    QVERIFY(hello);
    QCOMPARE(hello->features, quint32(WatchPeers | HostsController));
    QCOMPARE(hello->claimedId, 0xdeadbeefu);
    QCOMPARE(hello->joinedAt, Q_INT64_C(1764650000123));
    QCOMPARE(hello->token, QByteArray("token"));
    QCOMPARE(hello->label, (IpmbLabel{QStringLiteral("x"), QStringLiteral("y")}));
    QString why;
    QVERIFY(!parseHello(QByteArrayView(out).sliced(HeaderSize, 5), &why));
    QVERIFY(!parseHello(QByteArrayView(out).sliced(HeaderSize, 19), &why));
}

void tst_IpmbProtocol::peerFrames()
{
    const IpmbLabel label{QStringLiteral("viewer"), QStringLiteral("gpu")};
    const QByteArray block = senderBlock(77, 1234, 1000, label);
    QByteArray out;
    appendPeer(out, PeerEvent::Present, PeerHostsController, 1764650000123, block);
    appendPeer(out, PeerEvent::Joined, 0, 5, block);
    appendPeerLeft(out, 77);
    appendPeerListEnd(out);

    QList<Peer> read;
    QByteArrayView rest(out);
    while (!rest.isEmpty()) {
        const std::optional<Header> h = parseHeader(rest.data(), nullptr);
        QVERIFY(h);
        QCOMPARE(h->type, FrameType::Peer);
        QCOMPARE(h->version, Version);
        const QByteArrayView body = rest.sliced(HeaderSize, h->bodyLength);
        const std::optional<Peer> peer = parsePeer(body, nullptr);
        QVERIFY(peer);
        read.append(*peer);
        // Every shorter body is refused, never read past its end.
        for (qsizetype cut = 0; cut < body.size(); ++cut) {
            QVERIFY2(!parsePeer(body.first(cut), nullptr), qPrintable(QStringLiteral("cut at %1").arg(cut)));
        }
        rest = rest.sliced(h->frameLength());
    }
    QCOMPARE(read.size(), 4);
    QCOMPARE(read[0].event, PeerEvent::Present);
    QCOMPARE(read[0].record.flags, quint8(PeerHostsController));
    QCOMPARE(read[0].record.joinedAt, Q_INT64_C(1764650000123));
    QCOMPARE(read[0].record.sender.endpointId, 77u);
    QCOMPARE(read[0].record.sender.pid, 1234);
    QCOMPARE(read[0].record.sender.uid, 1000);
    QCOMPARE(read[0].record.sender.label, label);
    QCOMPARE(read[1].event, PeerEvent::Joined);
    QCOMPARE(read[1].record.joinedAt, 5);
    QCOMPARE(read[2].event, PeerEvent::Left);
    QCOMPARE(read[2].record.sender.endpointId, 77u);
    QCOMPARE(read[3].event, PeerEvent::ListEnd);

    QString why;
    QVERIFY(!parsePeer(QByteArray("\x09", 1), &why));  // no such event
    QVERIFY(why.contains(QLatin1String("event 9")));
    QVERIFY(!parsePeer(QByteArray("\x04\x00", 2), &why));  // a list end with bytes after it
    QVERIFY(!parsePeer(QByteArray("\x02\x00" "01234567" "\x00\x00\x00\x00" "pppp" "uuuu" "\x00\x00", 24), &why));
    QVERIFY(why.contains(QLatin1String("id 0")));
}

// A tracked message, a request and a reply carry a call section after the (empty) sender block;
// a reply has no selector. Flags that are not allowed make the header malformed.
// The frames of an introduction: both forms of Introduce, and a Channel with and without its socket.
void tst_IpmbProtocol::channelFrames()
{
    QString why;
    QByteArray out;
    appendIntroduce(out, 77);
    std::optional<Header> h = parseHeader(out.constData(), &why);
    QVERIFY(h);
    QCOMPARE(h->type, FrameType::Introduce);
    QCOMPARE(parseIntroduce(QByteArrayView(out).sliced(HeaderSize), &why), std::optional<quint32>(77));
    QVERIFY(!parseIntroduce(QByteArrayView("\0\0\0\0", 4), &why));  // endpoint id 0

    const QByteArray block = senderBlock(5, 1234, 1000, IpmbLabel {u"a"_s});
    out.clear();
    appendIntroduced(out, 5, block);
    const std::optional<Introduced> introduced = parseIntroduced(QByteArrayView(out).sliced(HeaderSize), &why);
    QVERIFY2(introduced, qPrintable(why));
    QCOMPARE(introduced->introducer, 5u);
    QCOMPARE(introduced->senderBlock, block);
    QCOMPARE(introduced->sender.pid, 1234);
    out.clear();
    appendIntroduced(out, 6, block);  // the block names another endpoint
    QVERIFY(!parseIntroduced(QByteArrayView(out).sliced(HeaderSize), &why));

    for (const IpmbErrorCode status : {IpmbErrorCode::None, IpmbErrorCode::QueueFull}) {
        out.clear();
        appendChannel(out, 9, status);
        h = parseHeader(out.constData(), &why);
        QVERIFY2(h, qPrintable(why));
        QCOMPARE(h->handleCount, status == IpmbErrorCode::None ? 1 : 0);
        const std::optional<Channel> channel = parseChannel(*h, QByteArrayView(out).sliced(HeaderSize), &why);
        QVERIFY2(channel, qPrintable(why));
        QCOMPARE(channel->peer, 9u);
        QCOMPARE(channel->status, status);
        // A socket without status 0, or status 0 without one: malformed.
        Header wrong = *h;
        wrong.handleCount = status == IpmbErrorCode::None ? 0 : 1;
        QVERIFY(!parseChannel(wrong, QByteArrayView(out).sliced(HeaderSize), &why));
    }
    // Two handles in a Channel, or one in any other control frame, fail the header.
    out.clear();
    appendChannel(out, 9, IpmbErrorCode::None);
    out[24] = 2;
    QVERIFY(!parseHeader(out.constData(), &why));
    out.clear();
    appendClose(out);
    QVERIFY(parseHeader(out.constData(), &why));
    out[24] = 1;
    QVERIFY(!parseHeader(out.constData(), &why));
}

void tst_IpmbProtocol::callSections()
{
    const IpmbSelector selector = IpmbSelector::unicast(IpmbLabelOp("worker"));
    IpmbErrorInfo error;
    struct Case { Call call; qint64 callBytes; };
    const Case cases[] = {
        {{Tracked, 0x0102030405060708, 0}, 8},
        {{Tracked | Request, 42, 0}, 8},
        {{Reply, 42, 0xabcdef01}, 12},
        {{Addressed, 0, 0, 0x11223344}, 4},
        {{Tracked | Addressed, 9, 0, 7}, 12},
        {{Tracked | Request | Addressed, 10, 0, 8}, 12},
    };
    for (const Case &c : cases) {
        QByteArray out;
        QVERIFY(appendMessage(out, selector, u"p"_s, &error, 0, 0, {}, nullptr, c.call));
        const std::optional<Header> h = parseHeader(out.constData(), nullptr);
        QVERIFY(h);
        QCOMPARE(h->flags, c.call.flags);
        QCOMPARE(h->callLength(), c.callBytes);
        const MessageSections sections = messageSections(*h, QByteArrayView(out).sliced(HeaderSize));
        QCOMPARE(sections.call.size(), c.callBytes);
        const Call read = callOf(*h, sections);
        QCOMPARE(read.flags, c.call.flags);
        QCOMPARE(read.id, c.call.id);
        QCOMPARE(read.requester, c.call.requester);
        QCOMPARE(read.target, c.call.target);
        QCOMPARE(sections.selector.isEmpty(), bool(c.call.flags & Reply));
        QCOMPARE(payloadOf(sections), QVariant(u"p"_s));
    }
    // A multicast request is refused where it is written.
    QByteArray out;
    QVERIFY(!appendMessage(out, IpmbSelector::multicast(IpmbLabelOp("w")), 1, &error, 0, 0, {}, nullptr,
                           {Tracked | Request, 1, 0}));
    QCOMPARE(error.code, IpmbErrorCode::InvalidArgument);
    QVERIFY(out.isEmpty());

    // Flags a writer may not use: request without tracked, request and reply, unknown bits.
    QByteArray frame;
    QVERIFY(appendMessage(frame, selector, 1, &error, 0, 0, {}, nullptr, {Tracked, 7, 0}));
    for (const quint8 flags : {quint8(Request), quint8(Request | Reply), quint8(Tracked | Reply), quint8(Reply | Addressed),
                               quint8(0x10), quint8(0x80)}) {
        QByteArray bad = frame;
        bad[7] = char(flags);
        QString why;
        QVERIFY2(!parseHeader(bad.constData(), &why), qPrintable(QString::number(flags)));
        QVERIFY(why.contains(u"flags"_s));
    }
    // A reply with a selector.
    QByteArray reply;
    QVERIFY(appendMessage(reply, selector, 1, &error, 0, 0, {}, nullptr, {Tracked, 7, 0}));
    reply[7] = char(Reply);  // now 8 call bytes are read as 12, and the selector is not empty
    QString why;
    QVERIFY(!parseHeader(reply.constData(), &why));
    QVERIFY(why.contains(u"reply with a selector"_s));
    // setTarget() names the receiver of an addressed frame after it was written (one per copy).
    QByteArray addressed;
    QVERIFY(appendMessage(addressed, selector, 1, &error, 0, 0, {}, nullptr, {Tracked | Addressed, 5, 0, 0}));
    setTarget(addressed, 0xfeedbeef);
    const std::optional<Header> ah = parseHeader(addressed.constData(), nullptr);
    QVERIFY(ah);
    const Call addressedCall = callOf(*ah, messageSections(*ah, QByteArrayView(addressed).sliced(HeaderSize)));
    QCOMPARE(addressedCall.target, 0xfeedbeefu);
    QCOMPARE(addressedCall.id, 5u);
    // The flags of a control frame are not read.
    QByteArray watch;
    appendWatch(watch, 0);
    watch[7] = char(0xff);
    QVERIFY(parseHeader(watch.constData(), nullptr));
}

void tst_IpmbProtocol::watchFrame()
{
    QByteArray out;
    appendWatch(out, WatchPeers);
    const std::optional<Header> h = parseHeader(out.constData(), nullptr);
    QVERIFY(h);
    QCOMPARE(h->type, FrameType::Watch);
    QCOMPARE(parseWatch(QByteArrayView(out).sliced(HeaderSize), nullptr), std::optional<quint32>(WatchPeers));
    QVERIFY(!parseWatch(QByteArrayView(out).sliced(HeaderSize, 3), nullptr));
}

QTEST_MAIN(tst_IpmbProtocol)
#include "tst_ipmbprotocol.moc"
