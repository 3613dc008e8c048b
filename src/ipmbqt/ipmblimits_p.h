// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBLIMITS_P_H
#define IPMBLIMITS_P_H

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

#include <QtCore/qglobal.h>

// Every limit, budget and timing of the bus, defined once, each with the reason for its value.
// doc/concepts.md and doc/protocol.md quote them; tst_ipmblimits checks every number the docs tag
// with its name (<!--limit:Name-->) against this file. Depends on nothing: every layer may use it.
namespace IpmbLimits {

constexpr qint64 KiB = 1024;
constexpr qint64 MiB = 1024 * KiB;
constexpr qint64 NsecsPerMsec = 1000 * 1000;

// --- Frames (doc/protocol.md, "Limits"). Each section has its own limit and the limit of a
// whole frame is their sum, so whatever the controller accepts from an endpoint still fits every
// receiver's limit once the controller has put the sender block in front.

// One payload inline or in one region; large enough for a video frame, small enough to allocate.
constexpr qint64 MaxPayload = 256 * MiB;
// Kernel handles and regions of one message: each costs a descriptor in every process it passes.
constexpr int MaxHandles = 64;
// The token's length field is a u16.
constexpr qint64 MaxTokenBytes = 0xFFFF;
// A label or leaf name, in UTF-8 bytes: names are words, not documents.
constexpr int MaxNameBytes = 1024;
// Names in one label: a label describes an endpoint, it is not a database.
constexpr int MaxLabelNames = 256;
// Nesting of a label op, on the wire and in text: the decoders recurse this deep at most.
constexpr int MaxOpDepth = 64;
// Nodes of a label op on the wire: bounds the decoder's work and the selector's size.
constexpr int MaxOpNodes = 1024;
// A label op's text form (IpmbLabelOp::fromString()).
constexpr qsizetype MaxOpTextLength = 64 * KiB;
// A selector's ttl is a u32 of milliseconds on the wire (about 49.7 days).
constexpr qint64 MaxTtlMsecs = 0xFFFFFFFF;

// Derived section limits: a label is a u16 count and u16-prefixed names; a selector is mode and
// ttl, then at most MaxOpNodes nodes of which none is larger than a leaf; the sender block is the
// sender's id, pid and uid, then its label.
constexpr qint64 MaxLabelBytes = 2 + qint64(MaxLabelNames) * (2 + MaxNameBytes);
constexpr qint64 MaxSelectorBytes = 5 + qint64(MaxOpNodes) * (3 + MaxNameBytes);
constexpr qint64 MaxSenderBlockBytes = 12 + MaxLabelBytes;
constexpr qint64 MaxMessageBody = MaxSenderBlockBytes + MaxSelectorBytes + MaxHandles + MaxPayload;
// Hello is the largest control frame (features, claimed id, joined time, token, label); a Peer
// frame is a sender block and 10 bytes; Refuse, Welcome, Dropped and Watch are small.
constexpr qint64 MaxControlBody = 4 + 4 + 8 + 2 + MaxTokenBytes + MaxLabelBytes;
static_assert(MaxControlBody >= 10 + MaxSenderBlockBytes, "a Peer frame fits");
static_assert(MaxMessageBody <= 0xFFFFFFFF, "bodyLength is a u32");
// Monitors (doc/protocol.md, "Monitors"): an Observed frame carries at most this much of a
// message's payload, after a fixed part of ObservationBytes; a monitor's queue holds at most
// MonitorQueueBytes before copies for it are dropped (and counted).
constexpr qint64 MonitorPayloadBytes = 4 * KiB;
constexpr qint64 ObservationBytes = 24;
constexpr qint64 MaxObservedBody = MaxSenderBlockBytes + ObservationBytes + MaxSelectorBytes + MonitorPayloadBytes;
constexpr qint64 MonitorQueueBytes = 4 * MiB;
// An endpoint that hosts no controller (the tools' monitors) gives up a first join when no
// controller has answered for this long.
constexpr int NobodyThereMsecs = 1000;

// --- Descriptors passing through sockets.

// SCM_MAX_FD: the most handles the kernel carries with one write() or read().
constexpr int MaxHandlesPerIo = 253;
// Handles a reader accepts ahead of their frame: a writer sends a frame's handles with the write
// of its first byte or an earlier one, at most one write's worth ahead in all, plus those of the
// frame being received. More is a peer making the reader hold descriptors no frame claims.
constexpr qsizetype MaxHandlesAhead = MaxHandlesPerIo + MaxHandles;

// --- An endpoint's queues (doc/concepts.md, "Sending and receiving", "Kernel handles").

// send() fails with QueueFullError beyond this many bytes, or handles, not yet taken by the
// controller: queued handles are open descriptors here, and a fast sender would run out. The
// bytes are few socket buffers' worth: a queue that a fast sender keeps full is memory that every
// write reads cold (4 KiB messages: 358k msgs/s with 64 MiB, 414k with 8 MiB; doc/performance.md).
constexpr qint64 SendQueueBytes = 8 * MiB;
constexpr qsizetype SendQueueHandles = 1024;
// The I/O thread stops reading while this much waits in the inbox (the controller then queues,
// and past its own limit drops with a Dropped notice). The handle limit is lowered where the
// process may open few descriptors: see inboxHandleLimit().
constexpr qint64 InboxBytes = 64 * MiB;
constexpr qint64 InboxMessages = 100000;
constexpr qsizetype InboxHandles = 1024;
// Once the inbox held this much, or took it in within a second, freed memory goes back to the
// system when it has drained. A message counts its bookkeeping too (its shared data, QVariant and
// queue slot), at about InboxEntryBytes: at 16 B that is most of it (100,000 of them are 4.5 MiB
// of frames).
constexpr qint64 InboxReleaseBytes = 4 * MiB;
constexpr qint64 InboxEntryBytes = 256;
// What the endpoint's thread reads from each socket when it reads for itself (signal delivery):
// at 16 B about 1,500 messages, decoded there in well under a millisecond.
constexpr qint64 EventLoopReadBytes = 64 * KiB;
// Undecodable payload types warned about by name (then no more): a peer could invent millions.
constexpr int MaxWarnedTypes = 64;

// The handles an endpoint may hold in its inbox when the process may open `descriptorLimit`: half
// of what is left after two full reads (the controller's connection and one more), at least 16
// and at most InboxHandles. With a hard limit of 1,024 descriptors that is 259.
constexpr qsizetype inboxHandleLimit(qint64 descriptorLimit)
{
    const qint64 room = (descriptorLimit - 2 * MaxHandlesPerIo) / 2;
    return qsizetype(room < 16 ? 16 : room > InboxHandles ? InboxHandles : room);
}

// --- The controller's budgets (doc/concepts.md, "Delivery promises", "Limits and budgets").

// Queued for one receiver beyond what the kernel buffers: then its senders wait.
constexpr qint64 ReceiverQueueBytes = 16 * MiB;
constexpr qsizetype ReceiverQueueHandles = 1024;
// A receiver that reads nothing this long is declared stuck and its messages are dropped.
constexpr int StallTimeoutMsecs = 1000;
// Messages that match nobody yet, kept for their ttl: the oldest goes when one is over.
constexpr int TtlBufferMessages = 4096;
constexpr qint64 TtlBufferBytes = 64 * MiB;
constexpr qsizetype TtlBufferHandles = 1024;
// A connection must send its Hello this soon, and at most this many may wait for theirs.
constexpr int HelloTimeoutMsecs = 5000;
constexpr int MaxPendingHellos = 128;
// A frame must be complete within FrameTimeoutMsecs plus its length at MinFrameBytesPerSecond of
// the time the controller reads from its sender: a slow drip cannot hold a buffer forever.
constexpr int FrameTimeoutMsecs = 5000;
constexpr qint64 MinFrameBytesPerSecond = 16 * MiB;
// Large frames being received hold at most this much in all: room for the largest frame from two
// senders at once; beyond that their senders wait.
constexpr qint64 MaxHeldFrameBytes = 2 * MaxMessageBody;
// When queues and frames being received held this much, freed memory is given back to the system
// once they are down to an eighth of it.
constexpr qint64 MemoryEpisodeBytes = 4 * MiB;
// After accept() failed for want of descriptors, the listener rests this long.
constexpr int AcceptPauseMsecs = 100;

// --- Reading and writing a connection.

// Most bytes one read pass takes from a socket before the reader looks at other work.
constexpr qint64 ReadBudget = 4 * MiB;
// Frames up to LargeFrame are cut out of a shared read buffer; larger ones get a buffer of their
// own, read into directly and forwarded by reference. It starts at LargeFrameStep (or what has
// arrived) and doubles as it fills: it grows with the bytes that came, never with what a header
// merely claims.
constexpr qsizetype ReadBufferBytes = 256 * KiB;
constexpr qsizetype LargeFrame = 64 * KiB;
constexpr qsizetype LargeFrameStep = 1 * MiB;
// A write queue is a list of chunks; one grows to this size before the next is started, so that
// appending never moves more than this.
constexpr qsizetype WriteChunkBytes = 1 * MiB;
// A batch of frames queued for the writer (IpmbOutbox) is a list of chunks of this fixed capacity,
// about one socket buffer's worth, so they never move as they fill.
constexpr qsizetype BatchChunkBytes = 256 * KiB;
// Written chunks are kept for reuse up to this much memory per connection (fresh memory costs a
// page fault per 4 KiB); a controller has one connection per endpoint, so it stays small. 4 KiB
// messages ran as fast with 1 MiB as with 4 MiB (2026-12-02, three alternating runs).
constexpr qsizetype SpareWriteBytes = 1 * MiB;
// A delivered large frame's buffer up to this size is kept for the next one (fresh memory costs a
// page fault per 4 KiB).
constexpr qsizetype MaxSpareLargeBuffer = 4 * MiB;
// Frames an endpoint sends that are larger than this are queued by reference, not copied.
constexpr qsizetype ShareFrameBytes = 64 * KiB;
// A message sent this soon after the last write is left to the I/O thread, which then writes
// everything that piled up in one call; a message after a pause is written at once.
constexpr qint64 CoalesceWindowNsecs = 20000;

// --- The read role (doc/concepts.md, "Who reads the socket"): after a thread in receive() read
// the socket, the I/O thread stays off it this long, looking again every DirectPollMsecs; a
// receive() thread that held the role this long without a message lets it sleep instead.
constexpr qint64 DirectLingerNsecs = 5 * NsecsPerMsec;
constexpr int DirectPollMsecs = 5;
constexpr qint64 DirectHoldLongNsecs = 100 * NsecsPerMsec;

// --- Payloads in shared memory (doc/memory.md, "Large payloads").

// A payload this large or larger travels in a region of the sender's pool instead of inline: below
// it, a region's set-up (a descriptor through both hops, a mapping) costs more than the copies.
constexpr qint64 PayloadRegionThresholdBytes = 16 * KiB;
// An endpoint's pool of payload regions: sizes in multiples of the minimum, at most this many
// and this much, released after staying free this long.
constexpr qsizetype PayloadRegionMinBytes = 64 * KiB;
constexpr int PayloadRegionsMax = 64;
constexpr qint64 PayloadRegionsMaxBytes = 128 * MiB;
constexpr qint64 PayloadRegionExpiryNsecs = 10000 * NsecsPerMsec;
// alloc() waits only for regions handed out less than this long ago: an older one has more
// likely lost its reference than it is about to come back.
constexpr qint64 PayloadRegionWaitAgeNsecs = 100 * NsecsPerMsec;
// How long send() waits for a pooled region when all are in flight, before the payload goes
// inline.
constexpr int PayloadRegionWaitMsecs = 1;
// Received large QByteArray payloads get reusable buffers: from this size, at most this many and
// this much (as deep as the inbox at 1 MiB).
constexpr qsizetype PayloadBufferMinBytes = 64 * KiB;
constexpr int PayloadBuffersMax = 64;
constexpr qint64 PayloadBuffersMaxBytes = 64 * MiB;
// Idle mappings of received regions a process keeps for reuse: above a sender's payload pool.
constexpr int MappingCacheMaxIdle = 128;
constexpr qint64 MappingCacheMaxIdleBytes = 1024 * MiB;
// How often an endpoint's I/O thread sweeps that cache.
constexpr qint64 MappingSweepNsecs = 1000 * NsecsPerMsec;
// Requests (doc/protocol.md, "Requests, replies and undeliverable messages"): the requests a
// controller remembers per replier until it replies, and those an endpoint waits for at once.
constexpr qsizetype MaxPendingRequests = 65536;
constexpr qsizetype MaxRequestsInFlight = 65536;
// How often a requester's I/O thread looks for requests that timed out or were cancelled: a
// request's timeout is kept to within this.
constexpr int RequestSweepMsecs = 10;
// Presence: what a controller can make a watching endpoint hold. Peer frames waiting for the
// endpoint's thread (more is a protocol error: the connection is dropped), and the endpoints
// listed (more are not listed, with a warning). Bytes are those of the Peer frames' bodies.
constexpr qsizetype MaxPeerNotes = 100000;
constexpr qint64 MaxPeerNoteBytes = 64 * MiB;
constexpr qsizetype MaxPeers = 65536;
constexpr qint64 MaxPeerBytes = 64 * MiB;
// After a failover, how often a watching endpoint looks whether the processes of the peers that
// have not reconnected yet still exist: the one that died is reported as left this soon.
constexpr int PeerCheckMsecs = 50;

// --- Direct channels (doc/protocol.md, "Direct channels").
// Channels an endpoint opens to peers, and accepts from peers, each: beyond, messages go through
// the controller. Each is a descriptor in both processes.
constexpr int MaxChannels = 256;
// Queued on one channel beyond what the kernel buffers (the receiver queue of the controller,
// moved to the sender): then send() fails with QueueFullError, or, once the receiver has read
// nothing for StallTimeoutMsecs, its messages are dropped and counted.
constexpr qint64 ChannelQueueBytes = 16 * MiB;
constexpr qsizetype ChannelQueueHandles = 1024;
// A channel nothing was sent on for this long is closed.
constexpr int ChannelIdleMsecs = 30000;
// After a peer refused a channel, it is not asked again for this long.
constexpr int ChannelRetryMsecs = 1000;

// --- Payloads (doc/payloads.md): a type name has a u8 length on the wire; values nest at most
// this deep (containers in containers), which bounds the decoder's recursion.
constexpr qsizetype MaxPayloadTypeNameBytes = 255;
constexpr int MaxPayloadNesting = 256;

// --- Logging: warnings a peer can cause, per thread and second, so bad input cannot fill a disk.
constexpr int WarningsPerSecond = 10;

} // namespace IpmbLimits

#endif // IPMBLIMITS_P_H
