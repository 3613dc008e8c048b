// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBPROTOCOL_P_H
#define IPMBPROTOCOL_P_H

//
//  W A R N I N G
//  -------------
//
// This file is not part of the IpmbQt API. It exists purely as an
// implementation detail. This header file may change from version to
// version without notice, or even be removed.
//
// We mean it.
//

// Framing and handshake bodies of doc/protocol.md. No OS code here.

#include "ipmbqtglobal.h"
#include "ipmblabel.h"
#include "ipmberror_p.h"
#include "ipmbselector.h"
#include "ipmbselectorcodec_p.h"

#include "ipmblimits_p.h"

#include <QtCore/qbytearray.h>
#include <QtCore/qbytearrayview.h>
#include <QtCore/qstring.h>

#include <cstring>
#include <functional>
#include <optional>

namespace IpmbProtocol {

constexpr quint16 Version = 6;     // 2: attachment kind 3 (payload in a region); 3: presence; 4: requests; 5: direct channels; 6: monitors
constexpr qsizetype HeaderSize = 28;
// The limits of each section of a frame are in ipmblimits_p.h (doc/protocol.md, "Limits").

// What each handle of a Message is: one byte per handle in the attachment section.
enum class AttachmentKind : quint8 { Handle = 1, MemoryRegion = 2, PayloadRegion = 3 };
inline bool isRegion(char kind)
{
    return kind == char(AttachmentKind::MemoryRegion) || kind == char(AttachmentKind::PayloadRegion);
}
// The payload section of a frame whose payload is in a region: its length there (doc/protocol.md).
constexpr qsizetype RegionPayloadSectionSize = 8;

enum class FrameType : quint8 { Hello = 1, Welcome = 2, Refuse = 3, Message = 4, Dropped = 5, Peer = 6, Watch = 7,
                                Undeliverable = 8, Introduce = 9, Channel = 10, Close = 11, Observed = 12,
                                Monitoring = 13 };

// The flags of a Message header, and its call section (doc/protocol.md, "Requests, replies and
// undeliverable messages").
constexpr quint8 Tracked = 0x1;    // the sender hears if it reaches nobody
constexpr quint8 Request = 0x2;    // expects one reply; always tracked too
constexpr quint8 Reply = 0x4;
constexpr quint8 Addressed = 0x8;  // for one endpoint, named in the call section ("Direct channels")
struct Call
{
    quint8 flags = 0;
    quint64 id = 0;
    quint32 requester = 0;         // replies: the endpoint id of the request's sender
    quint32 target = 0;            // addressed messages: the endpoint id of the receiver
};
// The size of the call section of a Message with these flags; -1 for flags that are not allowed.
constexpr qint64 callSectionSize(quint8 flags)
{
    const quint8 kind = flags & ~Addressed;
    const qint64 size = kind == 0 ? 0
            : kind == Tracked || kind == (Tracked | Request) ? 8
            : kind == Reply ? 12
            : -1;
    if (size < 0 || !(flags & Addressed))
        return size;
    return kind == Reply ? -1 : size + 4;
}

// Bits of the features of a Hello or a Watch (doc/protocol.md, "Presence").
constexpr quint32 WatchPeers = 0x1;       // send this endpoint Peer frames
constexpr quint32 HostsController = 0x2;  // Hello only: the endpoint started this controller in its own process
constexpr quint32 RoutesItself = 0x4;     // send this endpoint Peer frames for its own routing (not its user)
constexpr quint32 IsMonitor = 0x8;        // Hello only: a monitor (doc/protocol.md, "Monitors")
// Bits of the features of a Welcome.
constexpr quint32 BusMonitored = 0x1;     // the bus has monitors: report channel traffic

struct Header
{
    quint16 version = Version;
    FrameType type = FrameType::Message;
    quint8 flags = 0;
    quint32 bodyLength = 0;
    quint32 senderLength = 0;
    quint32 selectorLength = 0;
    quint32 attachmentLength = 0;
    quint16 handleCount = 0;

    qint64 frameLength() const { return HeaderSize + qint64(bodyLength); }
    // parseHeader() checked that the flags are allowed.
    qint64 callLength() const { return type == FrameType::Message ? qMax<qint64>(callSectionSize(flags), 0) : 0; }
    qint64 payloadOffset() const { return qint64(senderLength) + callLength() + selectorLength + attachmentLength; }
};

// Writes a header at `out` (HeaderSize bytes).
IPMBQT_AUTOTEST_EXPORT void writeHeader(char *out, const Header &header);
// Checks what can be checked without the body: magic, type, every length against its limit and
// against bodyLength. The version is not checked here (a Refuse of any version must be readable).
IPMBQT_AUTOTEST_EXPORT std::optional<Header> parseHeader(const char *in, QString *errorString);

// Appends a complete frame.
struct Hello
{
    quint32 features = 0;
    quint32 claimedId = 0;  // the id this endpoint had before a failover; 0: none
    qint64 joinedAt = 0;    // ms since the epoch at which it first joined; 0: none
    QByteArray token;
    IpmbLabel label;

    // The Hello of a first join, that claims nothing.
    static Hello first(const QByteArray &token, const IpmbLabel &label)
    {
        Hello hello;
        hello.token = token;
        hello.label = label;
        return hello;
    }
};
IPMBQT_AUTOTEST_EXPORT void appendHello(QByteArray &out, const Hello &hello, quint16 version = Version);
IPMBQT_AUTOTEST_EXPORT void appendWelcome(QByteArray &out, quint32 endpointId, quint32 controllerPid, quint32 features = 0);
IPMBQT_AUTOTEST_EXPORT void appendRefuse(QByteArray &out, IpmbErrorCode error, const QString &reason);
IPMBQT_AUTOTEST_EXPORT void appendDropped(QByteArray &out, quint64 count);
IPMBQT_AUTOTEST_EXPORT void appendWatch(QByteArray &out, quint32 features);
IPMBQT_AUTOTEST_EXPORT void appendUndeliverable(QByteArray &out, quint64 id, IpmbErrorCode error);
IPMBQT_AUTOTEST_EXPORT std::optional<Hello> parseHello(QByteArrayView body, QString *errorString);

struct Welcome
{
    quint32 endpointId = 0;
    quint32 controllerPid = 0;
    quint32 features = 0;
};
IPMBQT_AUTOTEST_EXPORT std::optional<Welcome> parseWelcome(QByteArrayView body, QString *errorString);

struct Refuse
{
    IpmbErrorCode error = IpmbErrorCode::Unknown;
    quint16 controllerVersion = 0;
    QString reason;
};
IPMBQT_AUTOTEST_EXPORT std::optional<Refuse> parseRefuse(QByteArrayView body, QString *errorString);
IPMBQT_AUTOTEST_EXPORT std::optional<quint64> parseDropped(QByteArrayView body, QString *errorString);
IPMBQT_AUTOTEST_EXPORT std::optional<quint32> parseWatch(QByteArrayView body, QString *errorString);
struct Undeliverable
{
    quint64 id = 0;
    IpmbErrorCode error = IpmbErrorCode::Unknown;
};
IPMBQT_AUTOTEST_EXPORT std::optional<Undeliverable> parseUndeliverable(QByteArrayView body, QString *errorString);


// The sender block the controller inserts in front of every forwarded Message.
IPMBQT_AUTOTEST_EXPORT QByteArray senderBlock(quint32 endpointId, qint64 pid, qint64 uid, const IpmbLabel &label);
struct Sender
{
    quint32 endpointId = 0;
    qint64 pid = -1;
    qint64 uid = -1;
    IpmbLabel label;
};
IPMBQT_AUTOTEST_EXPORT std::optional<Sender> parseSenderBlock(QByteArrayView bytes, QString *errorString);

// A Peer frame (doc/protocol.md, "Presence"): an event about one other endpoint.
enum class PeerEvent : quint8 { Present = 1, Joined = 2, Left = 3, ListEnd = 4 };
constexpr quint8 PeerHostsController = 0x1;  // PeerRecord::flags
struct PeerRecord
{
    quint8 flags = 0;
    qint64 joinedAt = 0;    // ms since the epoch
    Sender sender;          // endpointId only, for Left
};
// For Present and Joined, `senderBlock` is that endpoint's; Left has only `endpointId`.
IPMBQT_AUTOTEST_EXPORT void appendPeer(QByteArray &out, PeerEvent event, quint8 flags, qint64 joinedAt,
                                       QByteArrayView senderBlock);
IPMBQT_AUTOTEST_EXPORT void appendPeerLeft(QByteArray &out, quint32 endpointId);
IPMBQT_AUTOTEST_EXPORT void appendPeerListEnd(QByteArray &out);
struct Peer
{
    PeerEvent event = PeerEvent::ListEnd;
    PeerRecord record;
};
IPMBQT_AUTOTEST_EXPORT std::optional<Peer> parsePeer(QByteArrayView body, QString *errorString);

// Direct channels (doc/protocol.md, "Direct channels").
IPMBQT_AUTOTEST_EXPORT void appendIntroduce(QByteArray &out, quint32 target);             // endpoint -> controller
IPMBQT_AUTOTEST_EXPORT std::optional<quint32> parseIntroduce(QByteArrayView body, QString *errorString);
struct Introduced                                                                           // controller -> endpoint
{
    quint32 introducer = 0;
    QByteArray senderBlock;     // the introducer's, as the controller wrote it
    Sender sender;              // parsed from it
};
IPMBQT_AUTOTEST_EXPORT void appendIntroduced(QByteArray &out, quint32 introducer, QByteArrayView senderBlock);
IPMBQT_AUTOTEST_EXPORT std::optional<Introduced> parseIntroduced(QByteArrayView body, QString *errorString);
struct Channel
{
    quint32 peer = 0;
    IpmbErrorCode status = IpmbErrorCode::None;  // None: the frame carries the socket
};
// A Channel frame; with status None the caller attaches the socket as its one handle.
IPMBQT_AUTOTEST_EXPORT void appendChannel(QByteArray &out, quint32 peer, IpmbErrorCode status);
IPMBQT_AUTOTEST_EXPORT std::optional<Channel> parseChannel(const Header &header, QByteArrayView body, QString *errorString);
IPMBQT_AUTOTEST_EXPORT void appendClose(QByteArray &out);
// Sets the target of an addressed Message that appendMessage() wrote at the start of `frame`.
IPMBQT_AUTOTEST_EXPORT void setTarget(QByteArray &frame, quint32 target);

// The sections of a Message body (doc/protocol.md, "Message"), sliced in this one place.
// parseHeader() checked that they fit in bodyLength; `body` is that many bytes.
struct MessageSections
{
    QByteArrayView sender;      // the sender block; empty in a frame an endpoint wrote
    QByteArrayView call;        // empty unless the flags say the message has one
    QByteArrayView selector;
    QByteArrayView attachments; // one AttachmentKind byte per handle
    QByteArrayView payload;     // the encoded payload, or its length when it is in a region
};
IPMBQT_AUTOTEST_EXPORT MessageSections messageSections(const Header &header, QByteArrayView body);
// The call of a Message (flags and call section; parseHeader() checked its size).
IPMBQT_AUTOTEST_EXPORT Call callOf(const Header &header, const MessageSections &sections);

// Monitors (doc/protocol.md, "Monitors"). The fixed part of an Observed frame:
struct Observation
{
    enum Path : quint8 { ThroughController = 0, OnChannel = 1 };
    static constexpr quint32 KeptForTtl = 0xFFFFFFFF;  // `deliveries` of a message kept for its ttl
    quint8 path = ThroughController;
    quint8 messageFlags = 0;
    quint16 handleCount = 0;
    quint16 regionCount = 0;
    bool payloadInRegion = false;
    quint32 target = 0;
    quint32 deliveries = 0;
    quint64 payloadLength = 0;
};
// Appends an Observed frame: with `senderBlock` as the controller writes it for a monitor, without
// as an endpoint writes it. `payloadPrefix` is cut to MonitorPayloadBytes here.
IPMBQT_AUTOTEST_EXPORT void appendObserved(QByteArray &out, const Observation &observation, QByteArrayView senderBlock,
                                           QByteArrayView selector, QByteArrayView payloadPrefix);
struct ObservedSections
{
    Observation observation;
    QByteArrayView sender;
    QByteArrayView selector;
    QByteArrayView payloadPrefix;
};
// Checks the fixed part and the prefix against payloadLength (parseHeader() checked the lengths).
IPMBQT_AUTOTEST_EXPORT std::optional<ObservedSections> parseObserved(const Header &header, QByteArrayView body,
                                                                     QString *errorString);
// The same observation for a Message as its sender wrote it (`sections` from an endpoint's
// frame: no sender block): flags, attachments, payload length; path, target and deliveries are the
// caller's.
IPMBQT_AUTOTEST_EXPORT Observation observationOf(const Header &header, const MessageSections &sections);
IPMBQT_AUTOTEST_EXPORT void appendMonitoring(QByteArray &out, quint32 monitors);
IPMBQT_AUTOTEST_EXPORT std::optional<quint32> parseMonitoring(QByteArrayView body, QString *errorString);

// Appends the header and sender block that a controller puts in front of the body of a Message
// it received (header `received`) from the endpoint whose sender block is `senderBlock`.
IPMBQT_AUTOTEST_EXPORT void appendForwardedHeader(QByteArray &out, const Header &received, QByteArrayView senderBlock);

// Where the payload of a Message travels (doc/memory.md, "Large payloads"): inline, or, from
// `threshold` encoded bytes on (0: never), in memory that allocate(size) returns; nullptr keeps it
// inline after all. The caller owns that memory (a pooled region) and attaches its handle last.
struct PayloadPlacement
{
    qint64 threshold = 0;
    std::function<char *(qsizetype size)> allocate;
};

// Appends a Message frame as an endpoint writes it (no sender block): the header, the selector,
// one attachment kind byte per handle (`handles` plain handles, then `regions` memory regions,
// then the payload's region if `placement` put it in one: *inRegion says so) and the payload
// section. It owns that layout: every byte is written once, in order, and nothing is parsed back.
// On failure `out` is left unchanged and `error` says why (payload not streamable, too large,
// label op over the limits, too many handles).
IPMBQT_AUTOTEST_EXPORT bool appendMessage(QByteArray &out, const IpmbSelector &selector,
                                          const QVariant &payload, IpmbErrorInfo *error,
                                          qsizetype handles = 0, qsizetype regions = 0,
                                          const PayloadPlacement &placement = {}, bool *inRegion = nullptr,
                                          const Call &call = {});

// The payload length that a region-payload section holds; nullopt (with the reason) if the
// section is not RegionPayloadSectionSize bytes or the length is above the payload limit.
IPMBQT_AUTOTEST_EXPORT std::optional<qint64> parseRegionPayloadLength(QByteArrayView section, QString *errorString);

bool constantTimeEquals(const QByteArray &a, const QByteArray &b);

// For the caches of the last decoded sender block / selector: are these the same bytes?
inline bool sameBytes(const QByteArray &cached, QByteArrayView bytes)
{
    return cached.size() == bytes.size() && std::memcmp(cached.constData(), bytes.data(), size_t(bytes.size())) == 0;
}

} // namespace IpmbProtocol

#endif // IPMBPROTOCOL_P_H
