// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbprotocol_p.h"
#include "ipmbpayloadcodec_p.h"
#include "ipmbselectorcodec_p.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qendian.h>

#include <cstring>

namespace IpmbProtocol {

static constexpr char Magic[4] = {'I', 'P', 'M', 'B'};

template <typename T>
static void put(char *out, T value)
{
    qToLittleEndian(value, out);
}

template <typename T>
static T get(const char *in)
{
    return qFromLittleEndian<T>(in);
}

template <typename T>
static void append(QByteArray &out, T value)
{
    char bytes[sizeof(T)];
    qToLittleEndian(value, bytes);
    out.append(bytes, sizeof(T));
}

// Bounds-checked reading of a body; every read fails once anything was out of range.
class Cursor
{
public:
    explicit Cursor(QByteArrayView bytes) : m_bytes(bytes) { }

    template <typename T>
    T read()
    {
        if (!take(sizeof(T)))
            return T(0);
        return get<T>(m_bytes.data() + m_pos - qsizetype(sizeof(T)));
    }
    QByteArrayView readBytes(qsizetype n)
    {
        if (!take(n))
            return {};
        return m_bytes.sliced(m_pos - n, n);
    }
    QByteArrayView rest() { return readBytes(m_bytes.size() - m_pos); }
    bool ok() const { return m_ok; }
    bool atEnd() const { return m_ok && m_pos == m_bytes.size(); }

private:
    bool take(qsizetype n)
    {
        if (!m_ok || n < 0 || n > m_bytes.size() - m_pos) {
            m_ok = false;
            return false;
        }
        m_pos += n;
        return true;
    }
    QByteArrayView m_bytes;
    qsizetype m_pos = 0;
    bool m_ok = true;
};

template <typename T>
static std::optional<T> fail(QString *errorString, const QString &reason)
{
    if (errorString)
        *errorString = reason;
    return std::nullopt;
}

void writeHeader(char *out, const Header &header)
{
    std::memcpy(out, Magic, 4);
    put<quint16>(out + 4, header.version);
    out[6] = char(header.type);
    out[7] = char(header.flags);
    put<quint32>(out + 8, header.bodyLength);
    put<quint32>(out + 12, header.senderLength);
    put<quint32>(out + 16, header.selectorLength);
    put<quint32>(out + 20, header.attachmentLength);
    put<quint16>(out + 24, header.handleCount);
    put<quint16>(out + 26, 0);
}

std::optional<Header> parseHeader(const char *in, QString *errorString)
{
    if (std::memcmp(in, Magic, 4) != 0)
        return fail<Header>(errorString, QStringLiteral("bad magic (not an IpmbQt peer)"));
    Header h;
    h.version = get<quint16>(in + 4);
    const quint8 type = quint8(in[6]);
    if (type < quint8(FrameType::Hello) || type > quint8(FrameType::Monitoring))
        return fail<Header>(errorString, QStringLiteral("unknown frame type %1").arg(type));
    h.type = FrameType(type);
    h.flags = quint8(in[7]);
    h.bodyLength = get<quint32>(in + 8);
    h.senderLength = get<quint32>(in + 12);
    h.selectorLength = get<quint32>(in + 16);
    h.attachmentLength = get<quint32>(in + 20);
    h.handleCount = get<quint16>(in + 24);

    const bool observed = h.type == FrameType::Observed;
    const qint64 maxBody = h.type == FrameType::Message ? IpmbLimits::MaxMessageBody
            : observed ? IpmbLimits::MaxObservedBody : IpmbLimits::MaxControlBody;
    if (h.bodyLength > maxBody)
        return fail<Header>(errorString, QStringLiteral("body length %1 exceeds the limit of %2")
                                                 .arg(h.bodyLength).arg(maxBody));
    if (h.type != FrameType::Message && !observed && (h.senderLength || h.selectorLength || h.attachmentLength))
        return fail<Header>(errorString, QStringLiteral("section lengths in a control frame"));
    if (observed && (h.attachmentLength || h.flags
                     || qint64(h.senderLength) + IpmbLimits::ObservationBytes + h.selectorLength > h.bodyLength
                     || h.bodyLength - h.senderLength - IpmbLimits::ObservationBytes - h.selectorLength
                                > IpmbLimits::MonitorPayloadBytes)) {
        return fail<Header>(errorString, QStringLiteral("malformed Observed header"));
    }
    if (h.senderLength > IpmbLimits::MaxSenderBlockBytes)
        return fail<Header>(errorString, QStringLiteral("sender block of %1 bytes exceeds the limit of %2")
                                                 .arg(h.senderLength).arg(IpmbLimits::MaxSenderBlockBytes));
    if (h.selectorLength > IpmbLimits::MaxSelectorBytes)
        return fail<Header>(errorString, QStringLiteral("selector of %1 bytes exceeds the limit of %2")
                                                 .arg(h.selectorLength).arg(IpmbLimits::MaxSelectorBytes));
    // A Channel frame carries its socket (one handle, no attachment byte); no other control frame has any.
    if (h.type != FrameType::Message && h.handleCount > (h.type == FrameType::Channel ? 1 : 0))
        return fail<Header>(errorString, QStringLiteral("handles in a control frame"));
    if (h.handleCount > IpmbLimits::MaxHandles)
        return fail<Header>(errorString, QStringLiteral("%1 handles exceed the limit of %2").arg(h.handleCount).arg(IpmbLimits::MaxHandles));
    // One attachment byte per handle says what it is.
    if (h.type == FrameType::Message && h.attachmentLength != h.handleCount)
        return fail<Header>(errorString, QStringLiteral("attachment section of %1 bytes for %2 handles")
                                                 .arg(h.attachmentLength).arg(h.handleCount));
    if (h.type == FrameType::Message) {
        if (callSectionSize(h.flags) < 0)
            return fail<Header>(errorString, QStringLiteral("message flags 0x%1").arg(h.flags, 0, 16));
        if ((h.flags & Reply) && h.selectorLength != 0)
            return fail<Header>(errorString, QStringLiteral("a reply with a selector"));
    }
    if (h.payloadOffset() > h.bodyLength)
        return fail<Header>(errorString, QStringLiteral("sections (%1 bytes) exceed the body (%2 bytes)")
                                                 .arg(h.payloadOffset()).arg(h.bodyLength));
    if (h.bodyLength - h.payloadOffset() > IpmbLimits::MaxPayload)
        return fail<Header>(errorString, QStringLiteral("payload of %1 bytes exceeds the limit of %2")
                                                 .arg(h.bodyLength - h.payloadOffset()).arg(IpmbLimits::MaxPayload));
    return h;
}

// Appends a header for a body that the caller appends next, and returns where it starts.
static void appendControlFrame(QByteArray &out, FrameType type, const QByteArray &body,
                               quint16 version = Version)
{
    Header h;
    h.version = version;
    h.type = type;
    h.bodyLength = quint32(body.size());
    const qsizetype at = out.size();
    out.resize(at + HeaderSize);
    writeHeader(out.data() + at, h);
    out.append(body);
}

void appendHello(QByteArray &out, const Hello &hello, quint16 version)
{
    QByteArray body;
    append<quint32>(body, hello.features);
    append<quint32>(body, hello.claimedId);
    append<qint64>(body, hello.joinedAt);
    append<quint16>(body, quint16(qMin<qsizetype>(hello.token.size(), IpmbLimits::MaxTokenBytes)));
    body.append(hello.token.left(IpmbLimits::MaxTokenBytes));
    IpmbSelectorCodec::appendLabel(body, hello.label);
    appendControlFrame(out, FrameType::Hello, body, version);
}

void appendWelcome(QByteArray &out, quint32 endpointId, quint32 controllerPid, quint32 features)
{
    QByteArray body;
    append<quint32>(body, endpointId);
    append<quint32>(body, controllerPid);
    append<quint32>(body, features);
    appendControlFrame(out, FrameType::Welcome, body);
}

void appendRefuse(QByteArray &out, IpmbErrorCode error, const QString &reason)
{
    const QByteArray text = reason.toUtf8().left(0xFFFF);
    QByteArray body;
    append<quint16>(body, quint16(error));
    append<quint16>(body, Version);
    append<quint16>(body, quint16(text.size()));
    body.append(text);
    appendControlFrame(out, FrameType::Refuse, body);
}

void appendDropped(QByteArray &out, quint64 count)
{
    QByteArray body;
    append<quint64>(body, count);
    appendControlFrame(out, FrameType::Dropped, body);
}

void appendWatch(QByteArray &out, quint32 features)
{
    QByteArray body;
    append<quint32>(body, features);
    appendControlFrame(out, FrameType::Watch, body);
}

void appendUndeliverable(QByteArray &out, quint64 id, IpmbErrorCode error)
{
    QByteArray body;
    append<quint64>(body, id);
    append<quint16>(body, quint16(error));
    appendControlFrame(out, FrameType::Undeliverable, body);
}

void appendPeer(QByteArray &out, PeerEvent event, quint8 flags, qint64 joinedAt, QByteArrayView senderBlock)
{
    Q_ASSERT(event == PeerEvent::Present || event == PeerEvent::Joined);
    QByteArray body;
    body.reserve(10 + senderBlock.size());
    append<quint8>(body, quint8(event));
    append<quint8>(body, flags);
    append<qint64>(body, joinedAt);
    body.append(senderBlock);
    appendControlFrame(out, FrameType::Peer, body);
}

void appendPeerLeft(QByteArray &out, quint32 endpointId)
{
    QByteArray body;
    append<quint8>(body, quint8(PeerEvent::Left));
    append<quint32>(body, endpointId);
    appendControlFrame(out, FrameType::Peer, body);
}

void appendPeerListEnd(QByteArray &out)
{
    QByteArray body;
    append<quint8>(body, quint8(PeerEvent::ListEnd));
    appendControlFrame(out, FrameType::Peer, body);
}

void appendIntroduce(QByteArray &out, quint32 target)
{
    QByteArray body;
    append<quint32>(body, target);
    appendControlFrame(out, FrameType::Introduce, body);
}

std::optional<quint32> parseIntroduce(QByteArrayView body, QString *errorString)
{
    Cursor c(body);
    const quint32 target = c.read<quint32>();
    if (!c.atEnd() || target == 0)
        return fail<quint32>(errorString, QStringLiteral("malformed Introduce"));
    return target;
}

void appendIntroduced(QByteArray &out, quint32 introducer, QByteArrayView senderBlock)
{
    QByteArray body;
    append<quint32>(body, introducer);
    body.append(senderBlock);
    appendControlFrame(out, FrameType::Introduce, body);
}

std::optional<Introduced> parseIntroduced(QByteArrayView body, QString *errorString)
{
    Cursor c(body);
    Introduced introduced;
    introduced.introducer = c.read<quint32>();
    if (!c.ok() || introduced.introducer == 0)
        return fail<Introduced>(errorString, QStringLiteral("malformed Introduce"));
    const QByteArrayView block = c.rest();
    std::optional<Sender> sender = parseSenderBlock(block, errorString);
    if (!sender)
        return std::nullopt;
    if (sender->endpointId != introduced.introducer)
        return fail<Introduced>(errorString, QStringLiteral("an Introduce whose sender block is another endpoint's"));
    introduced.senderBlock = block.toByteArray();
    introduced.sender = std::move(*sender);
    return introduced;
}

void appendChannel(QByteArray &out, quint32 peer, IpmbErrorCode status)
{
    QByteArray body;
    append<quint32>(body, peer);
    append<quint16>(body, quint16(status));
    Header h;
    h.type = FrameType::Channel;
    h.bodyLength = quint32(body.size());
    h.handleCount = status == IpmbErrorCode::None ? 1 : 0;
    const qsizetype at = out.size();
    out.resize(at + HeaderSize);
    writeHeader(out.data() + at, h);
    out.append(body);
}

std::optional<Channel> parseChannel(const Header &header, QByteArrayView body, QString *errorString)
{
    Cursor c(body);
    Channel channel;
    channel.peer = c.read<quint32>();
    const quint16 code = c.read<quint16>();
    if (!c.atEnd() || channel.peer == 0)
        return fail<Channel>(errorString, QStringLiteral("malformed Channel"));
    const bool known = code > quint16(IpmbErrorCode::None) && code <= quint16(IpmbErrorCode::LastPublic);
    channel.status = code == 0 ? IpmbErrorCode::None : known ? IpmbErrorCode(code) : IpmbErrorCode::Unknown;
    // The socket comes exactly when the status says there is a channel.
    if ((channel.status == IpmbErrorCode::None) != (header.handleCount == 1))
        return fail<Channel>(errorString, QStringLiteral("a Channel with %1 handles and status %2")
                                                  .arg(header.handleCount).arg(code));
    return channel;
}

void appendClose(QByteArray &out)
{
    appendControlFrame(out, FrameType::Close, QByteArray());
}

void setTarget(QByteArray &frame, quint32 target)
{
    const quint8 flags = quint8(frame.at(7));
    Q_ASSERT((flags & Addressed) && quint32(get<quint32>(frame.constData() + 12)) == 0);  // no sender block
    const qsizetype at = HeaderSize + qsizetype(callSectionSize(flags)) - 4;
    qToLittleEndian<quint32>(target, frame.data() + at);
}

std::optional<Hello> parseHello(QByteArrayView body, QString *errorString)
{
    Cursor c(body);
    Hello hello;
    hello.features = c.read<quint32>();
    hello.claimedId = c.read<quint32>();
    hello.joinedAt = c.read<qint64>();
    const quint16 tokenLength = c.read<quint16>();
    hello.token = c.readBytes(tokenLength).toByteArray();
    if (!c.ok())
        return fail<Hello>(errorString, QStringLiteral("truncated Hello"));
    std::optional<IpmbLabel> label = IpmbSelectorCodec::decodeLabel(c.rest(), errorString);
    if (!label)
        return std::nullopt;
    hello.label = *label;
    return hello;
}

std::optional<Welcome> parseWelcome(QByteArrayView body, QString *errorString)
{
    Cursor c(body);
    Welcome w;
    w.endpointId = c.read<quint32>();
    w.controllerPid = c.read<quint32>();
    w.features = c.read<quint32>();
    if (!c.atEnd())
        return fail<Welcome>(errorString, QStringLiteral("malformed Welcome"));
    return w;
}

std::optional<Refuse> parseRefuse(QByteArrayView body, QString *errorString)
{
    Cursor c(body);
    Refuse r;
    const quint16 code = c.read<quint16>();
    r.controllerVersion = c.read<quint16>();
    const quint16 length = c.read<quint16>();
    const QByteArrayView text = c.readBytes(length);
    if (!c.atEnd())
        return fail<Refuse>(errorString, QStringLiteral("malformed Refuse"));
    // On the wire: the numbers of IpmbEndpoint::Error, None to Unknown (doc/protocol.md).
    const bool known = code > quint16(IpmbErrorCode::None) && code <= quint16(IpmbErrorCode::LastPublic);
    r.error = known ? IpmbErrorCode(code) : IpmbErrorCode::Unknown;
    r.reason = QString::fromUtf8(text);
    return r;
}

std::optional<quint64> parseDropped(QByteArrayView body, QString *errorString)
{
    Cursor c(body);
    const quint64 count = c.read<quint64>();
    if (!c.atEnd())
        return fail<quint64>(errorString, QStringLiteral("malformed Dropped"));
    return count;
}

std::optional<quint32> parseWatch(QByteArrayView body, QString *errorString)
{
    Cursor c(body);
    const quint32 features = c.read<quint32>();
    if (!c.atEnd())
        return fail<quint32>(errorString, QStringLiteral("malformed Watch"));
    return features;
}

std::optional<Undeliverable> parseUndeliverable(QByteArrayView body, QString *errorString)
{
    Cursor c(body);
    Undeliverable u;
    u.id = c.read<quint64>();
    const quint16 code = c.read<quint16>();
    if (!c.atEnd())
        return fail<Undeliverable>(errorString, QStringLiteral("malformed Undeliverable"));
    // The numbers of IpmbEndpoint::Error; one this version does not know is an unknown error.
    const bool known = code > quint16(IpmbErrorCode::None) && code <= quint16(IpmbErrorCode::LastPublic);
    u.error = known ? IpmbErrorCode(code) : IpmbErrorCode::Unknown;
    return u;
}

std::optional<Peer> parsePeer(QByteArrayView body, QString *errorString)
{
    Cursor c(body);
    Peer peer;
    const quint8 event = c.read<quint8>();
    if (!c.ok() || event < quint8(PeerEvent::Present) || event > quint8(PeerEvent::ListEnd))
        return fail<Peer>(errorString, QStringLiteral("malformed Peer frame (event %1)").arg(event));
    peer.event = PeerEvent(event);
    switch (peer.event) {
    case PeerEvent::Present:
    case PeerEvent::Joined: {
        peer.record.flags = c.read<quint8>();
        peer.record.joinedAt = c.read<qint64>();
        if (!c.ok())
            return fail<Peer>(errorString, QStringLiteral("truncated Peer frame"));
        std::optional<Sender> sender = parseSenderBlock(c.rest(), errorString);
        if (!sender)
            return std::nullopt;
        if (sender->endpointId == 0)
            return fail<Peer>(errorString, QStringLiteral("a Peer frame for endpoint id 0"));
        peer.record.sender = std::move(*sender);
        return peer;
    }
    case PeerEvent::Left:
        peer.record.sender.endpointId = c.read<quint32>();
        break;
    case PeerEvent::ListEnd:
        break;
    }
    if (!c.atEnd())
        return fail<Peer>(errorString, QStringLiteral("malformed Peer frame"));
    return peer;
}

QByteArray senderBlock(quint32 endpointId, qint64 pid, qint64 uid, const IpmbLabel &label)
{
    QByteArray out;
    append<quint32>(out, endpointId);
    append<quint32>(out, quint32(pid));
    append<quint32>(out, quint32(uid));
    IpmbSelectorCodec::appendLabel(out, label);
    return out;
}

std::optional<Sender> parseSenderBlock(QByteArrayView bytes, QString *errorString)
{
    Cursor c(bytes);
    Sender s;
    s.endpointId = c.read<quint32>();
    s.pid = c.read<quint32>();
    s.uid = c.read<quint32>();
    if (!c.ok())
        return fail<Sender>(errorString, QStringLiteral("truncated sender block"));
    std::optional<IpmbLabel> label = IpmbSelectorCodec::decodeLabel(c.rest(), errorString);
    if (!label)
        return std::nullopt;
    s.label = *label;
    return s;
}

MessageSections messageSections(const Header &header, QByteArrayView body)
{
    Q_ASSERT(body.size() == qsizetype(header.bodyLength) && header.payloadOffset() <= body.size());
    MessageSections sections;
    qsizetype at = 0;
    const auto next = [&](qint64 length) {
        const QByteArrayView section = body.sliced(at, qsizetype(length));
        at += qsizetype(length);
        return section;
    };
    sections.sender = next(header.senderLength);
    sections.call = next(header.callLength());
    sections.selector = next(header.selectorLength);
    sections.attachments = next(header.attachmentLength);
    sections.payload = body.sliced(at);
    return sections;
}

Call callOf(const Header &header, const MessageSections &sections)
{
    Call call;
    if (sections.call.isEmpty())
        return call;  // most messages: no call section
    call.flags = header.flags;
    Cursor c(sections.call);
    if (call.flags & (Tracked | Request | Reply))
        call.id = c.read<quint64>();
    if (call.flags & Reply)
        call.requester = c.read<quint32>();
    if (call.flags & Addressed)
        call.target = c.read<quint32>();
    return call;
}

void appendObserved(QByteArray &out, const Observation &observation, QByteArrayView senderBlock,
                    QByteArrayView selector, QByteArrayView payloadPrefix)
{
    payloadPrefix = payloadPrefix.first(qMin<qsizetype>(payloadPrefix.size(), IpmbLimits::MonitorPayloadBytes));
    Header h;
    h.type = FrameType::Observed;
    h.senderLength = quint32(senderBlock.size());
    h.selectorLength = quint32(selector.size());
    h.bodyLength = quint32(senderBlock.size() + IpmbLimits::ObservationBytes + selector.size() + payloadPrefix.size());
    const qsizetype at = out.size();
    out.resize(at + HeaderSize);
    writeHeader(out.data() + at, h);
    out.append(senderBlock);
    append<quint8>(out, observation.path);
    append<quint8>(out, observation.messageFlags);
    append<quint16>(out, observation.handleCount);
    append<quint16>(out, observation.regionCount);
    append<quint8>(out, observation.payloadInRegion ? 1 : 0);
    append<quint8>(out, 0);
    append<quint32>(out, observation.target);
    append<quint32>(out, observation.deliveries);
    append<quint64>(out, observation.payloadLength);
    out.append(selector);
    out.append(payloadPrefix);
}

std::optional<ObservedSections> parseObserved(const Header &header, QByteArrayView body, QString *errorString)
{
    ObservedSections s;
    s.sender = body.first(header.senderLength);
    Cursor c(body.sliced(header.senderLength, IpmbLimits::ObservationBytes));
    Observation &o = s.observation;
    o.path = c.read<quint8>();
    o.messageFlags = c.read<quint8>();
    o.handleCount = c.read<quint16>();
    o.regionCount = c.read<quint16>();
    const quint8 inRegion = c.read<quint8>();
    c.read<quint8>();
    o.target = c.read<quint32>();
    o.deliveries = c.read<quint32>();
    o.payloadLength = c.read<quint64>();
    o.payloadInRegion = inRegion == 1;
    s.selector = body.sliced(header.senderLength + IpmbLimits::ObservationBytes, header.selectorLength);
    s.payloadPrefix = body.sliced(header.senderLength + IpmbLimits::ObservationBytes + header.selectorLength);
    if (o.path > Observation::OnChannel || inRegion > 1 || callSectionSize(o.messageFlags) < 0
        || o.handleCount > IpmbLimits::MaxHandles || o.regionCount > o.handleCount
        || o.payloadLength > quint64(IpmbLimits::MaxPayload) || quint64(s.payloadPrefix.size()) > o.payloadLength
        || (o.payloadInRegion && !s.payloadPrefix.isEmpty()) || ((o.messageFlags & Reply) && !s.selector.isEmpty())) {
        return fail<ObservedSections>(errorString, QStringLiteral("malformed Observed"));
    }
    return s;
}

Observation observationOf(const Header &header, const MessageSections &sections)
{
    Observation o;
    o.messageFlags = header.flags;
    o.handleCount = header.handleCount;
    for (const char kind : sections.attachments) {
        if (isRegion(kind))
            ++o.regionCount;
        if (kind == char(AttachmentKind::PayloadRegion))
            o.payloadInRegion = true;
    }
    if (o.payloadInRegion) {
        o.payloadLength = quint64(parseRegionPayloadLength(sections.payload, nullptr).value_or(0));
    } else {
        o.payloadLength = quint64(sections.payload.size());
    }
    return o;
}

void appendMonitoring(QByteArray &out, quint32 monitors)
{
    QByteArray body;
    append<quint32>(body, monitors);
    appendControlFrame(out, FrameType::Monitoring, body);
}

std::optional<quint32> parseMonitoring(QByteArrayView body, QString *errorString)
{
    Cursor c(body);
    const quint32 monitors = c.read<quint32>();
    if (!c.atEnd())
        return fail<quint32>(errorString, QStringLiteral("malformed Monitoring"));
    return monitors;
}

void appendForwardedHeader(QByteArray &out, const Header &received, QByteArrayView senderBlock)
{
    Header header = received;
    header.senderLength = quint32(senderBlock.size());
    header.bodyLength += header.senderLength;
    const qsizetype at = out.size();
    out.resize(at + HeaderSize);
    writeHeader(out.data() + at, header);
    out.append(senderBlock);
}

// The selector bytes of `selector`, checked against the limits: a sender mostly uses one selector
// over and over, so the last one is kept per thread.
static const QByteArray *encodedSelector(const IpmbSelector &selector, QString *why)
{
    thread_local IpmbSelector lastSelector;
    thread_local QByteArray lastSelectorBytes;
    // A selector can encode to a megabyte; the thread keeps only ordinary ones.
    if (lastSelectorBytes.capacity() > 4 * IpmbLimits::KiB) {
        lastSelectorBytes = QByteArray();
        lastSelector = IpmbSelector();
    }
    if (lastSelectorBytes.isEmpty() || !(selector == lastSelector)) {
        lastSelectorBytes.clear();
        if (!IpmbSelectorCodec::fitsLimits(selector, why))
            return nullptr;
        IpmbSelectorCodec::appendSelector(lastSelectorBytes, selector);
        lastSelector = selector;
    }
    return &lastSelectorBytes;
}

static IpmbErrorInfo payloadTooLarge(qint64 length)
{
    return IpmbErrorInfo(IpmbErrorCode::PayloadTooLarge,
                         QCoreApplication::translate("IpmbEndpoint", "The payload is %1 bytes; the limit is %2 bytes")
                                 .arg(length).arg(IpmbLimits::MaxPayload));
}

bool appendMessage(QByteArray &out, const IpmbSelector &selector, const QVariant &payload, IpmbErrorInfo *error,
                   qsizetype handles, qsizetype regions, const PayloadPlacement &placement, bool *inRegion,
                   const Call &call)
{
    Q_ASSERT(callSectionSize(call.flags) >= 0);
    if (inRegion)
        *inRegion = false;
    const qsizetype attached = handles + regions;
    if (attached > IpmbLimits::MaxHandles) {
        *error = IpmbErrorInfo(IpmbErrorCode::InvalidArgument,
                               QCoreApplication::translate("IpmbEndpoint", "A message carries at most %1 handles and regions, not %2")
                                       .arg(IpmbLimits::MaxHandles).arg(attached));
        return false;
    }
    QString why;
    // A reply goes to its requester, named in the call section: it has no selector.
    static const QByteArray noSelector;
    const QByteArray *selectorBytes = call.flags & Reply ? &noSelector : encodedSelector(selector, &why);
    if (!selectorBytes) {
        *error = IpmbErrorInfo(IpmbErrorCode::InvalidArgument, why);
        return false;
    }
    if ((call.flags & Request) && selector.mode() != IpmbSelector::Unicast) {
        *error = IpmbErrorInfo(IpmbErrorCode::InvalidArgument,
                               QCoreApplication::translate("IpmbEndpoint", "A request goes to one endpoint: its selector must be unicast"));
        return false;
    }
    // The payload region takes one more attachment, so it needs room for one.
    const bool mayMove = placement.threshold > 0 && placement.allocate && attached < IpmbLimits::MaxHandles;
    // A QByteArray or QString has a known encoded size: it is encoded once, straight to where it
    // travels. Anything else is encoded inline and moved to a region afterwards if it is large.
    const qsizetype rawSize = IpmbPayloadCodec::rawEncodedSize(payload);
    if (rawSize > IpmbLimits::MaxPayload) {
        *error = payloadTooLarge(rawSize);
        return false;
    }
    char *region = nullptr;
    if (mayMove && rawSize >= placement.threshold) {
        region = placement.allocate(rawSize);
        if (region)
            IpmbPayloadCodec::encodeRaw(payload, region);
    }

    const qsizetype start = out.size();
    out.resize(start + HeaderSize);
    if (call.flags & (Tracked | Request | Reply))
        append<quint64>(out, call.id);
    if (call.flags & Reply)
        append<quint32>(out, call.requester);
    if (call.flags & Addressed)
        append<quint32>(out, call.target);
    out.append(*selectorBytes);
    out.append(handles, char(AttachmentKind::Handle));
    out.append(regions, char(AttachmentKind::MemoryRegion));
    qsizetype attachmentLength = attached;
    const auto payloadToRegion = [&](qint64 payloadLength) {
        out.append(char(AttachmentKind::PayloadRegion));
        ++attachmentLength;
        append<quint64>(out, quint64(payloadLength));
        if (inRegion)
            *inRegion = true;
    };
    if (region) {
        payloadToRegion(rawSize);
    } else {
        const qsizetype payloadStart = out.size();
        if (!IpmbPayloadCodec::encode(payload, out, &why)) {
            out.truncate(start);
            *error = IpmbErrorInfo(IpmbErrorCode::InvalidArgument, why);
            return false;
        }
        const qint64 payloadLength = out.size() - payloadStart;
        if (payloadLength > IpmbLimits::MaxPayload) {
            out.truncate(start);
            *error = payloadTooLarge(payloadLength);
            return false;
        }
        // A large payload of another type: copied to a region once encoded. The attachment kinds
        // end where the payload begins, so the region's kind byte goes in its place.
        if (mayMove && rawSize < 0 && payloadLength >= placement.threshold) {
            region = placement.allocate(payloadLength);
            if (region) {
                std::memcpy(region, out.constData() + payloadStart, size_t(payloadLength));
                out.truncate(payloadStart);
                payloadToRegion(payloadLength);
            }
        }
    }
    Header h;
    h.type = FrameType::Message;
    h.flags = call.flags;
    h.selectorLength = quint32(selectorBytes->size());
    h.attachmentLength = quint32(attachmentLength);
    h.handleCount = quint16(attachmentLength);
    h.bodyLength = quint32(out.size() - start - HeaderSize);
    writeHeader(out.data() + start, h);
    return true;
}

std::optional<qint64> parseRegionPayloadLength(QByteArrayView section, QString *errorString)
{
    if (section.size() != RegionPayloadSectionSize) {
        return fail<qint64>(errorString, QStringLiteral("the payload section of a message whose payload is "
                                                        "in a region has %1 bytes, not 8").arg(section.size()));
    }
    const quint64 length = get<quint64>(section.data());
    if (length > quint64(IpmbLimits::MaxPayload))
        return fail<qint64>(errorString, QStringLiteral("a payload of %1 bytes in a region is over the limit").arg(length));
    return qint64(length);
}

bool constantTimeEquals(const QByteArray &a, const QByteArray &b)
{
    if (a.size() != b.size())
        return false;
    unsigned char diff = 0;
    for (qsizetype i = 0; i < a.size(); ++i)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

} // namespace IpmbProtocol
