// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBCONNECTION_P_H
#define IPMBCONNECTION_P_H

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

#include "ipmbnativehandle.h"
#include "ipmbplatform_p.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qbytearray.h>

#include <deque>
#include <vector>
#include <limits>
#include <utility>

// Frames queued away from a connection, to be moved into its write queue later without a copy
// (IpmbConnection::appendBatch()). IpmbOutbox keeps one under its lock for the sending threads, so
// that the thread that writes the socket holds no lock meanwhile. Not thread-safe.
class IPMBQT_AUTOTEST_EXPORT IpmbFrameBatch
{
public:
    // A buffer to append one whole frame of `size` bytes (at most IpmbLimits::ShareFrameBytes) to.
    QByteArray &tail(qsizetype size);
    // A large frame, by reference.
    void appendShared(const QByteArray &frame);
    // The handles of the frame appended next.
    void appendHandles(const QList<IpmbNativeHandle> &handles);
    // Moves the frames of `other` (and their handles) to the end of this batch; `other` is empty.
    void takeFrom(IpmbFrameBatch &other);
    qint64 bytes() const { return m_sealedBytes + (m_tailGrowable ? m_chunks.back().bytes.size() : 0); }
    qsizetype handleCount() const { return m_handleCount; }
    bool isEmpty() const { return bytes() == 0; }
    void clear();
    void releaseSpareChunks() { m_spares.clear(); }

private:
    friend class IpmbConnection;
    struct HandleGroup
    {
        qint64 offset;          // of their frame's first byte in the batch
        QList<IpmbNativeHandle> handles;
    };
    struct Chunk
    {
        QByteArray bytes;
        bool own;               // a buffer of tail(), not a frame appendShared() took
    };
    std::vector<Chunk> m_chunks;
    std::vector<HandleGroup> m_handles;
    qint64 m_sealedBytes = 0;   // every chunk but a growable last one
    qsizetype m_handleCount = 0;
    bool m_tailGrowable = false;
    std::vector<QByteArray> m_spares; // written chunks' memory, back from the connection
};

// One stream socket carrying frames: a read buffer that cuts the byte stream into frames, and a
// write queue that coalesces small frames so that one system call moves many of them.
// Not thread-safe: the owner serialises reading and (separately) writing.
class IPMBQT_AUTOTEST_EXPORT IpmbConnection
{
public:
    explicit IpmbConnection(IpmbPlatform::Socket socket);
    ~IpmbConnection();
    Q_DISABLE_COPY_MOVE(IpmbConnection)

    IpmbPlatform::Socket socket() const { return m_socket; }

    struct Frame
    {
        IpmbProtocol::Header header;
        QByteArrayView body;
        // Set for frames too large for the read buffer: owns `body`, and may be shared (no copy)
        // with write queues; the body starts at HeaderSize.
        const QByteArray *storage = nullptr;
        // The header.handleCount kernel handles that came with this frame.
        QList<IpmbNativeHandle> handles;
    };

    enum class ReadStatus { Ok, Closed, Failed };

    // The largest frame body this connection takes now (a controller allows only a Hello before
    // the Hello): a longer one is a protocol error before anything is allocated for it.
    void setMaxBodyLength(qint64 length) { m_maxBody = length; }
    // Whether the read buffer holds the beginning of a frame whose end has not arrived.
    bool inFrame() const { return m_largeTotal > 0 || m_inEnd > m_inBegin; }
    // Memory held for a large frame being received (its buffer grows with what arrives).
    qint64 heldFrameBytes() const { return m_largeTotal > 0 ? m_large.size() : 0; }
    // The last readFrames() stopped because the frame's buffer could not grow within its growth budget.
    bool waitsForMemory() const { return m_waitsForMemory; }
    // Frames completed so far, and the length of the unfinished one when its header is known (a
    // large frame), else 0: a caller that wants to time out unfinished frames needs both.
    quint64 framesReceived() const { return m_framesReceived; }
    qint64 unfinishedFrameLength() const { return m_largeTotal; }
    // Handles may arrive ahead of their frame, IpmbLimits::MaxHandlesAhead at most (flush()
    // keeps to that); more is a protocol error.
    // What a frame handler did with a frame: Consumed, Stop (consumed, and the connection is being
    // dropped), or Keep (not consumed: it comes first again at the next readFrames()).
    enum class Action { Consumed, Stop, Keep };

    // Reads what the socket has (at most about `budget` bytes, for fairness between connections)
    // and calls handler(const Frame &) -> Action for each complete frame, in order, until it says
    // Stop or Keep. Failed means a malformed frame or an OS error; errorString() says which.
    // It stops reading once the handles received in this call reach `handleBudget`: each open one
    // costs a descriptor, and one read can add up to IpmbLimits::MaxHandlesPerIo more.
    // The buffer of a large frame grows as its bytes arrive, by at most `growthBudget` bytes in
    // this call (then waitsForMemory() says so).
    template <typename Handler>
    ReadStatus readFrames(Handler &&handler, qint64 budget = IpmbLimits::ReadBudget,
                          qsizetype handleBudget = std::numeric_limits<qsizetype>::max(),
                          qint64 growthBudget = std::numeric_limits<qint64>::max());
    QString errorString() const { return m_errorString; }
    // Keep the buffer of a delivered large frame (up to IpmbLimits::MaxSpareLargeBuffer) for the next one,
    // when nobody else holds it by then: fresh memory costs a page fault per 4 KiB. For a reader
    // that copies payloads out (an endpoint); a controller shares frames into write queues.
    void setReusesLargeBuffers(bool reuse) { m_reuseLarge = reuse; }

    // The write queue. tail() is a buffer to append whole frames to; appendShared() queues a large
    // block by reference. Handles of a frame are queued with appendHandles() just before the frame.
    QByteArray &tail();
    void appendHandles(const QList<IpmbNativeHandle> &handles);
    qsizetype handlesToWrite() const { return m_outHandleCount; }
    void appendShared(const QByteArray &bytes, qsizetype offset);
    // Frees that memory.
    void releaseSpareChunks() { m_spareChunks.clear(); }
    // Moves the frames of `batch` (and their handles) to the end of the queue, and gives the
    // batch written chunks' memory back to reuse.
    void appendBatch(IpmbFrameBatch &batch);
    qint64 bytesToWrite() const;
    // Writes as much of the queue as the socket takes now.
    IpmbPlatform::IoResult flush();

private:
    bool nextFrame(Frame *frame, bool *needMore);
    bool takeHandles(Frame *frame);
    void keep(const Frame &frame);
    void consume(const Frame &frame);
    IpmbPlatform::IoResult fill(qint64 *growthBudget);
    IpmbPlatform::IoResult readInto(char *at, qsizetype wanted, qsizetype *filled);

    IpmbPlatform::Socket m_socket;
    QString m_errorString;

    QByteArray m_in;            // read buffer
    qsizetype m_inBegin = 0;
    qsizetype m_inEnd = 0;
    QByteArray m_large;         // a frame larger than the read buffer, being filled; grows as it fills
    qsizetype m_largeFilled = 0;
    qsizetype m_largeTotal = 0; // its header's frame length; 0 when there is none
    IpmbProtocol::Header m_largeHeader; // its header, as parsed and checked when it began
    qint64 m_maxBody = IpmbLimits::MaxMessageBody;
    quint64 m_framesReceived = 0;
    bool m_waitsForMemory = false;
    bool m_largeDelivered = false;
    bool m_reuseLarge = false;
    QByteArray m_spareLarge;    // a delivered m_large nobody else held (m_reuseLarge)
    std::deque<IpmbNativeHandle> m_inHandles; // received, not yet claimed by a frame
    bool m_drained = false;     // the last read was short: the socket had nothing more

    struct Chunk
    {
        QByteArray bytes;
        qsizetype begin = 0;    // already written
        bool growable = false;  // our own buffer: tail() may append to it while it is last, and
                                // its memory is reused once written
    };
    void pushChunk(Chunk &&chunk);
    std::deque<Chunk> m_out;
    qint64 m_queuedBefore = 0;  // unwritten bytes in every chunk of m_out but the last
    std::vector<QByteArray> m_spareChunks; // written growable chunks, for tail() and batches
    struct HandleGroup
    {
        qint64 offset;          // stream position of the first byte of their frame
        QList<IpmbNativeHandle> handles;
    };
    std::deque<HandleGroup> m_outHandles;
    qsizetype m_outHandleCount = 0;
    struct SentAhead
    {
        qint64 offset;          // stream position of their frame, not yet written
        qsizetype count;
    };
    std::deque<SentAhead> m_handlesAhead;   // handles written before their frame's first byte
    qsizetype m_handlesAheadCount = 0;
    qint64 m_written = 0;       // stream position: bytes written so far
};

template <typename Handler>
IpmbConnection::ReadStatus IpmbConnection::readFrames(Handler &&handler, qint64 budget, qsizetype handleBudget,
                                                     qint64 growthBudget)
{
    // "Drained" is about the previous read of this call only: a call that returned early (Keep,
    // Stop, a budget) left it set, and the caller that calls again has polled since.
    m_drained = false;
    qint64 consumed = 0;
    qsizetype handles = 0;
    for (;;) {
        Frame frame;
        bool needMore = false;
        while (nextFrame(&frame, &needMore)) {
            ++m_framesReceived;
            consumed += frame.header.frameLength();
            handles += frame.header.handleCount;
            const Action action = handler(static_cast<const Frame &>(frame));
            if (action == Action::Keep)
                keep(frame);
            else
                consume(frame);
            if (action != Action::Consumed)
                return ReadStatus::Ok;
        }
        if (!needMore)
            return ReadStatus::Failed; // malformed; m_errorString is set
        if (qsizetype(m_inHandles.size()) > IpmbLimits::MaxHandlesAhead) {
            m_errorString = QStringLiteral("%1 handles arrived ahead of their frames (at most %2 may)")
                                    .arg(m_inHandles.size()).arg(IpmbLimits::MaxHandlesAhead);
            return ReadStatus::Failed;
        }
        if (consumed >= budget || handles + qsizetype(m_inHandles.size()) >= handleBudget)
            return ReadStatus::Ok;
        // Nothing more to read now: the caller's poll() says when there is (saves a read that
        // would only fail with EAGAIN, per message when they come one at a time).
        if (std::exchange(m_drained, false))
            return ReadStatus::Ok;
        const IpmbPlatform::IoResult r = fill(&growthBudget);
        if (m_waitsForMemory)
            return ReadStatus::Ok;
        switch (r.status) {
        case IpmbPlatform::IoStatus::Ok:
            break;
        case IpmbPlatform::IoStatus::WouldBlock:
            return ReadStatus::Ok;
        case IpmbPlatform::IoStatus::Closed:
            m_errorString = QStringLiteral("the peer closed the connection");
            return ReadStatus::Closed;
        case IpmbPlatform::IoStatus::Failed:
            m_errorString = r.error.message;
            return ReadStatus::Failed;
        }
    }
}

#endif // IPMBCONNECTION_P_H
