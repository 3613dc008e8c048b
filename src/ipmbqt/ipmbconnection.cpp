// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbconnection_p.h"

#include <cstring>
#include <limits>
#include <utility>

using namespace IpmbPlatform;

// Sizes and limits: IpmbLimits (ReadBufferBytes, LargeFrame, LargeFrameStep, WriteChunkBytes).

IpmbConnection::IpmbConnection(Socket socket)
    : m_socket(socket)
{
}

IpmbConnection::~IpmbConnection()
{
    closeSocket(m_socket);
}

bool IpmbConnection::nextFrame(Frame *frame, bool *needMore)
{
    *needMore = true;
    if (m_largeDelivered) {
        if (m_reuseLarge && m_large.isDetached() && m_large.capacity() <= IpmbLimits::MaxSpareLargeBuffer)
            m_spareLarge = std::move(m_large);
        m_large = QByteArray();
        m_largeFilled = 0;
        m_largeTotal = 0;
        m_largeDelivered = false;
    }
    if (m_largeTotal > 0) {
        if (m_largeFilled < m_largeTotal)
            return false;
        frame->header = m_largeHeader; // checked when the frame began
        frame->body = QByteArrayView(m_large.constData() + IpmbProtocol::HeaderSize,
                                     m_large.size() - IpmbProtocol::HeaderSize);
        frame->storage = &m_large;
        m_largeDelivered = true;
        *needMore = false;
        return takeHandles(frame);
    }

    const qsizetype available = m_inEnd - m_inBegin;
    if (available < IpmbProtocol::HeaderSize)
        return false;
    const char *at = m_in.constData() + m_inBegin;
    const std::optional<IpmbProtocol::Header> header = IpmbProtocol::parseHeader(at, &m_errorString);
    if (!header) {
        *needMore = false;
        return false;
    }
    if (header->bodyLength > m_maxBody) {
        m_errorString = QStringLiteral("a frame of %1 bytes where at most %2 may come now")
                                .arg(header->bodyLength).arg(m_maxBody);
        *needMore = false;
        return false;
    }
    const qint64 total = header->frameLength();
    if (available >= total) {
        frame->header = *header;
        frame->body = QByteArrayView(at + IpmbProtocol::HeaderSize, qsizetype(header->bodyLength));
        frame->storage = nullptr;
        m_inBegin += qsizetype(total);
        *needMore = false;
        return takeHandles(frame);
    }
    if (total > IpmbLimits::LargeFrame) {
        // Its own buffer, which fill() grows as the bytes arrive: what the header claims is not
        // allocated before the peer has sent it.
        m_largeTotal = qsizetype(total);
        m_largeHeader = *header;
        const qsizetype initial = available;
        if (m_spareLarge.capacity() >= initial) {
            m_large = std::move(m_spareLarge);
            m_large.resize(initial);
        } else {
            m_spareLarge = QByteArray();
            m_large = QByteArray(initial, Qt::Uninitialized);
        }
        std::memcpy(m_large.data(), at, size_t(available));
        m_largeFilled = available;
        m_inBegin = m_inEnd = 0;
    }
    return false;
}

// A frame's handles were sent no later than its first byte, so they are here by its last byte.
bool IpmbConnection::takeHandles(Frame *frame)
{
    const size_t count = frame->header.handleCount;
    frame->handles.clear();
    if (count == 0)
        return true;
    if (m_inHandles.size() < count) {
        m_errorString = QStringLiteral("a frame announces %1 handles but %2 arrived")
                                .arg(count).arg(m_inHandles.size());
        return false;
    }
    frame->handles.reserve(qsizetype(count));
    for (size_t i = 0; i < count; ++i)
        frame->handles.append(m_inHandles[i]);
    return true;
}

void IpmbConnection::consume(const Frame &frame)
{
    const size_t count = qMin(size_t(frame.header.handleCount), m_inHandles.size());
    m_inHandles.erase(m_inHandles.begin(), m_inHandles.begin() + qsizetype(count));
}

void IpmbConnection::keep(const Frame &frame)
{
    if (frame.storage)
        m_largeDelivered = false;
    else
        m_inBegin -= qsizetype(frame.header.frameLength()); // the bytes are still there
}

// Reads up to `wanted` bytes to `at`, keeps the handles that came along, and adds the bytes to *filled.
IoResult IpmbConnection::readInto(char *at, qsizetype wanted, qsizetype *filled)
{
    QList<qintptr> handles;
    const IoResult r = read(m_socket, at, wanted, &handles);
    for (qintptr h : std::as_const(handles))
        m_inHandles.push_back(IpmbNativeHandle::adopt(h));
    if (r.status == IoStatus::Ok) {
        *filled += qsizetype(r.bytes);
        // A short read emptied the socket (a read that brought handles may have stopped early:
        // the kernel ends a read at the next message with handles).
        m_drained = r.bytes < wanted && handles.isEmpty();
    }
    return r;
}

IoResult IpmbConnection::fill(qint64 *growthBudget)
{
    m_waitsForMemory = false;
    if (m_largeTotal > 0) {
        if (m_largeFilled == m_large.size()) {
            // Grow geometrically (few copies), from what arrived, never past the frame's end.
            const qsizetype grown = qMin<qint64>(m_largeTotal, m_large.size() + qMax(m_large.size(), IpmbLimits::LargeFrameStep));
            if (grown - m_large.size() > *growthBudget) {
                m_waitsForMemory = true;
                return {IoStatus::WouldBlock, 0, {}};
            }
            *growthBudget -= grown - m_large.size();
            m_large.resize(grown);
        }
        return readInto(m_large.data() + m_largeFilled, m_large.size() - m_largeFilled, &m_largeFilled);
    }
    if (m_in.isEmpty())
        m_in = QByteArray(IpmbLimits::ReadBufferBytes, Qt::Uninitialized);
    if (m_inBegin == m_inEnd) {
        m_inBegin = m_inEnd = 0;
    } else if (m_in.size() - m_inEnd < IpmbLimits::LargeFrame) {
        std::memmove(m_in.data(), m_in.constData() + m_inBegin, size_t(m_inEnd - m_inBegin));
        m_inEnd -= m_inBegin;
        m_inBegin = 0;
    }
    return readInto(m_in.data() + m_inEnd, m_in.size() - m_inEnd, &m_inEnd);
}

// A written chunk's memory from `spares` if there is one (fresh memory costs a page fault per
// 4 KiB), else a new buffer of `capacity`.
static QByteArray takeSpare(std::vector<QByteArray> &spares, qsizetype capacity)
{
    QByteArray chunk;
    if (spares.empty()) {
        chunk.reserve(capacity);
    } else {
        chunk = std::move(spares.back());
        spares.pop_back();
    }
    return chunk;
}

static qsizetype capacityOf(const std::vector<QByteArray> &buffers)
{
    qsizetype bytes = 0;
    for (const QByteArray &buffer : buffers)
        bytes += buffer.capacity();
    return bytes;
}

QByteArray &IpmbFrameBatch::tail(qsizetype size)
{
    Q_ASSERT(size <= IpmbLimits::ShareFrameBytes);
    if (!m_tailGrowable || m_chunks.back().bytes.capacity() - m_chunks.back().bytes.size() < size) {
        if (m_tailGrowable)
            m_sealedBytes += m_chunks.back().bytes.size();
        m_chunks.push_back({takeSpare(m_spares, IpmbLimits::BatchChunkBytes), true});
        m_tailGrowable = true;
    }
    return m_chunks.back().bytes;
}

void IpmbFrameBatch::appendShared(const QByteArray &frame)
{
    if (m_tailGrowable)
        m_sealedBytes += m_chunks.back().bytes.size();
    m_chunks.push_back({frame, false});
    m_sealedBytes += frame.size();
    m_tailGrowable = false;
}

void IpmbFrameBatch::appendHandles(const QList<IpmbNativeHandle> &handles)
{
    if (handles.isEmpty())
        return;
    m_handles.push_back({bytes(), handles});
    m_handleCount += handles.size();
}

void IpmbFrameBatch::takeFrom(IpmbFrameBatch &other)
{
    const qint64 base = bytes();
    if (m_tailGrowable)
        m_sealedBytes += m_chunks.back().bytes.size();
    for (HandleGroup &group : other.m_handles) {
        m_handleCount += group.handles.size();
        m_handles.push_back({base + group.offset, std::move(group.handles)});
    }
    for (Chunk &chunk : other.m_chunks) {
        m_sealedBytes += chunk.bytes.size();
        m_chunks.push_back(std::move(chunk));
    }
    m_tailGrowable = false;  // sealed: the next tail() starts a chunk of its own
    other.clear();
}

void IpmbFrameBatch::clear()
{
    m_chunks.clear();
    m_handles.clear();
    m_sealedBytes = 0;
    m_handleCount = 0;
    m_tailGrowable = false;
}

// Every chunk but the last is counted in m_queuedBefore: bytesToWrite() stays cheap although
// callers append to the last one directly.
void IpmbConnection::pushChunk(Chunk &&chunk)
{
    if (!m_out.empty())
        m_queuedBefore += m_out.back().bytes.size() - m_out.back().begin;
    m_out.push_back(std::move(chunk));
}

QByteArray &IpmbConnection::tail()
{
    if (m_out.empty() || !m_out.back().growable || m_out.back().bytes.size() >= IpmbLimits::WriteChunkBytes) {
        Chunk chunk;
        chunk.growable = true;
        chunk.bytes = takeSpare(m_spareChunks, 64 * 1024);
        pushChunk(std::move(chunk));
    }
    return m_out.back().bytes;
}

void IpmbConnection::appendHandles(const QList<IpmbNativeHandle> &handles)
{
    if (handles.isEmpty())
        return;
    m_outHandles.push_back({m_written + bytesToWrite(), handles});
    m_outHandleCount += handles.size();
}

void IpmbConnection::appendShared(const QByteArray &bytes, qsizetype offset)
{
    // Not growable: tail() starts a new chunk after it. (The chunk before it stays growable, so
    // that its memory is reused once written; only the last chunk is ever appended to.)
    Chunk chunk;
    chunk.bytes = bytes;
    chunk.begin = offset;
    pushChunk(std::move(chunk));
}

void IpmbConnection::appendBatch(IpmbFrameBatch &batch)
{
    const qint64 base = m_written + bytesToWrite();
    for (IpmbFrameBatch::HandleGroup &group : batch.m_handles) {
        m_outHandleCount += group.handles.size();
        m_outHandles.push_back({base + group.offset, std::move(group.handles)});
    }
    for (IpmbFrameBatch::Chunk &from : batch.m_chunks) {
        Chunk chunk;
        chunk.bytes = std::move(from.bytes);
        chunk.growable = from.own; // its memory is reused once written
        if (!chunk.bytes.isEmpty())
            pushChunk(std::move(chunk));
    }
    batch.clear();
    // The batch gets the spare memory (it fills the chunks); it keeps as much as a connection may.
    qsizetype kept = capacityOf(batch.m_spares);
    while (!m_spareChunks.empty() && kept + m_spareChunks.back().capacity() <= IpmbLimits::SpareWriteBytes) {
        kept += m_spareChunks.back().capacity();
        batch.m_spares.push_back(std::move(m_spareChunks.back()));
        m_spareChunks.pop_back();
    }
}

qint64 IpmbConnection::bytesToWrite() const
{
    return m_out.empty() ? 0 : m_queuedBefore + m_out.back().bytes.size() - m_out.back().begin;
}

IoResult IpmbConnection::flush()
{
    qint64 written = 0;
    while (!m_out.empty()) {
        // Handles ride with the write that contains their frame's first byte (or an earlier one),
        // at most MaxHandlesPerWrite per write and at most that many ahead of their frames in all
        // (the reader holds those until their frames arrive, and drops a peer that sends more):
        // a group that does not fit ends the write before its frame.
        while (!m_handlesAhead.empty() && m_handlesAhead.front().offset < m_written) {
            m_handlesAheadCount -= m_handlesAhead.front().count;
            m_handlesAhead.pop_front();
        }
        qintptr handles[IpmbLimits::MaxHandlesPerIo];
        int handleCount = 0;
        size_t groups = 0;
        qint64 limit = std::numeric_limits<qint64>::max();
        for (const HandleGroup &group : m_outHandles) {
            if (m_handlesAheadCount + handleCount + group.handles.size() > IpmbLimits::MaxHandlesPerIo) {
                limit = group.offset - m_written;
                break;
            }
            for (const IpmbNativeHandle &h : group.handles)
                handles[handleCount++] = h.handle();
            ++groups;
        }
        IoSlice slices[64];
        int count = 0;
        qint64 total = 0;
        for (auto it = m_out.begin(); it != m_out.end() && count < 64 && total < limit; ++it) {
            const qint64 size = qMin<qint64>(it->bytes.size() - it->begin, limit - total);
            if (size > 0) {
                slices[count++] = {it->bytes.constData() + it->begin, size};
                total += size;
            }
        }
        if (count == 0)
            break; // only the emptied, reusable tail is left
        IoResult r = write(m_socket, slices, count, handles, handleCount);
        if (r.status != IoStatus::Ok) {
            if (r.status == IoStatus::WouldBlock)
                r.bytes = written;
            return r;
        }
        // The handles went with these bytes (early for frames not fully written: the reader
        // keeps them until their frame is complete).
        written += r.bytes;
        m_written += r.bytes;
        for (size_t i = 0; i < groups; ++i) {
            const HandleGroup &group = m_outHandles[i];
            if (group.offset >= m_written) {
                m_handlesAhead.push_back({group.offset, group.handles.size()});
                m_handlesAheadCount += group.handles.size();
            }
        }
        m_outHandles.erase(m_outHandles.begin(), m_outHandles.begin() + qsizetype(groups));
        m_outHandleCount -= handleCount;
        qint64 left = r.bytes;
        while (!m_out.empty()) {
            Chunk &front = m_out.front();
            const bool last = m_out.size() == 1;
            const qint64 unwritten = front.bytes.size() - front.begin;
            const qint64 done = qMin(left, unwritten);
            if (!last)
                m_queuedBefore -= done;
            if (left < unwritten) {
                front.begin += qsizetype(left);
                break;
            }
            left -= unwritten;
            const bool reusable = front.growable && front.bytes.capacity() <= IpmbLimits::WriteChunkBytes * 2;
            if (last && reusable) {
                front.bytes.truncate(0); // keep the allocation for the next frames
                front.begin = 0;
                break;
            }
            if (reusable && capacityOf(m_spareChunks) + front.bytes.capacity() <= IpmbLimits::SpareWriteBytes) {
                front.bytes.truncate(0);
                m_spareChunks.push_back(std::move(front.bytes));
            }
            m_out.pop_front();
        }
    }
    return {IoStatus::Ok, written, {}};
}
