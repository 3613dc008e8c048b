// SPDX-License-Identifier: BSD-3-Clause
// IpmbConnection on its own, over a Unix socketpair (the transport the bus uses): frames cut out
// of the byte stream however it is split, the write queue and its shared blocks, kernel handles
// with their frames, and the peer's mistakes (a body over the limit, handles no frame claims, a
// connection closed mid-frame). One side is a connection; the other is a connection too or this
// test writing bytes by hand.

#include "ipmbconnection_p.h"
#include "ipmblimits_p.h"
#include "ipmbplatform_p.h"
#include "ipmbprotocol_p.h"
#include "ipmbtestraw.h"

#include <QtCore/qdeadlinetimer.h>
#include <QtTest/qtest.h>

#include <memory>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace IpmbTest;
using Action = IpmbConnection::Action;
using ReadStatus = IpmbConnection::ReadStatus;

Q_DECLARE_METATYPE(IpmbConnection::ReadStatus)

namespace {

// A frame as the handler saw it, copied out of the connection's buffers.
struct Received
{
    IpmbProtocol::Header header;
    QByteArray body;
    bool ownBuffer = false;     // came in a buffer of its own (Frame::storage), not the read buffer
    QList<IpmbNativeHandle> handles;
};

Received copyOf(const IpmbConnection::Frame &frame)
{
    Received r;
    r.header = frame.header;
    r.body = frame.body.toByteArray();
    r.ownBuffer = frame.storage != nullptr;
    r.handles = frame.handles;
    return r;
}

// A Message frame whose payload section is `payload` (the connection does not look inside).
QByteArray message(const QByteArray &payload, int handles = 0)
{
    return messageFrame(IpmbSelector::unicast(IpmbLabelOp("r")), payload,
                        QByteArray(handles, char(IpmbProtocol::AttachmentKind::Handle)));
}

// The body of a frame made by message() or any append*() of the protocol.
QByteArray bodyOf(const QByteArray &frame)
{
    return frame.mid(IpmbProtocol::HeaderSize);
}

// Recognisable bytes: `size` of them, starting with `tag`.
QByteArray pattern(qsizetype size, char tag)
{
    QByteArray bytes(size, Qt::Uninitialized);
    for (qsizetype i = 0; i < size; ++i)
        bytes[i] = char(tag + i % 251);
    return bytes;
}

bool waitReadable(IpmbPlatform::Socket socket, const QDeadlineTimer &deadline)
{
    IpmbPlatform::PollEntry entry {socket, true, false, false, false};
    return IpmbPlatform::poll(&entry, 1, int(qMax<qint64>(1, deadline.remainingTime()))) && entry.readable;
}

// Calls readFrames() (the frames go to *out) until `count` frames came, the connection ended or
// failed, or `msecs` passed, waiting for the socket in between.
ReadStatus readUntil(IpmbConnection &reader, QList<Received> *out, qsizetype count, int msecs = 5000)
{
    const QDeadlineTimer deadline(msecs);
    for (;;) {
        const ReadStatus status = reader.readFrames([&](const IpmbConnection::Frame &frame) {
            out->append(copyOf(frame));
            return Action::Consumed;
        });
        if (status != ReadStatus::Ok || out->size() >= count || deadline.hasExpired())
            return status;
        waitReadable(reader.socket(), deadline);
    }
}

// Flushes `writer` and reads with `reader` in turns until `count` frames came: for queues larger
// than the socket's buffer.
ReadStatus pump(IpmbConnection &writer, IpmbConnection &reader, QList<Received> *out, qsizetype count,
                int msecs = 10000)
{
    const QDeadlineTimer deadline(msecs);
    for (;;) {
        const IpmbPlatform::IoResult w = writer.flush();
        if (w.status != IpmbPlatform::IoStatus::Ok && w.status != IpmbPlatform::IoStatus::WouldBlock) {
            qWarning("flush: %s", qPrintable(w.error.message));
            return ReadStatus::Failed;
        }
        const ReadStatus status = reader.readFrames([&](const IpmbConnection::Frame &frame) {
            out->append(copyOf(frame));
            return Action::Consumed;
        });
        if (status != ReadStatus::Ok || out->size() >= count || deadline.hasExpired())
            return status;
        if (writer.bytesToWrite() == 0)
            waitReadable(reader.socket(), deadline);
    }
}

// Writes `bytes` on a raw socket (with `handles` alongside), all of it.
bool writeRaw(IpmbPlatform::Socket socket, QByteArrayView bytes, const QList<qintptr> &handles = {})
{
    return writeAll(socket, bytes, handles);
}

// The kernel object behind a descriptor, to tell whether two refer to the same one.
QByteArray identity(qintptr fd)
{
    struct stat st;
    if (::fstat(int(fd), &st) != 0)
        return {};
    return QByteArray::number(quint64(st.st_dev)) + ':' + QByteArray::number(quint64(st.st_ino));
}

} // namespace

class tst_IpmbConnection : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void framesInOrder();
    void sharedBlocksKeepTheirPlace();
    void queueLargerThanTheSocket();
    void frameSplitOverReads_data();
    void frameSplitOverReads();
    void largeClaimIsNotAllocated();
    void growthBudget();
    void handlesTravelWithTheirFrame();
    void handlesOverSeveralWrites();
    void frameWithoutItsHandles();
    void tooManyHandlesAhead();
    void oversizedBody_data();
    void oversizedBody();
    void handlerActions();
    void readAfterPeerClosed();
    void peerClosedMidFrame();

private:
    // m_reader and m_writer are connected; m_raw is the writer's descriptor when a test writes
    // by hand (then m_writer is not created).
    bool makePair(bool rawWriter = false);
    std::unique_ptr<IpmbConnection> m_reader;
    std::unique_ptr<IpmbConnection> m_writer;
    IpmbPlatform::Socket m_raw = IpmbPlatform::InvalidSocket;
};

void tst_IpmbConnection::initTestCase()
{
    // Handles in flight are open descriptors on both sides.
    IpmbPlatform::raiseHandleLimit();
}

void tst_IpmbConnection::init()
{
    QVERIFY(makePair());
}

void tst_IpmbConnection::cleanup()
{
    m_reader.reset();
    m_writer.reset();
    IpmbPlatform::closeSocket(m_raw);
    m_raw = IpmbPlatform::InvalidSocket;
}

bool tst_IpmbConnection::makePair(bool rawWriter)
{
    cleanup();
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
        return false;
    m_reader = std::make_unique<IpmbConnection>(fds[0]);
    if (rawWriter)
        m_raw = fds[1];
    else
        m_writer = std::make_unique<IpmbConnection>(fds[1]);
    return true;
}

void tst_IpmbConnection::framesInOrder()
{
    QList<QByteArray> frames;
    IpmbProtocol::appendWelcome(frames.emplace_back(), 7, 4242);
    IpmbProtocol::appendDropped(frames.emplace_back(), 12345);
    for (int i = 0; i < 20; ++i)
        frames.append(message(pattern(i * 3000, char('a' + i))));   // up to 57 KB: the read buffer
    frames.append(message(QByteArray()));

    qint64 total = 0;
    for (const QByteArray &frame : std::as_const(frames)) {
        m_writer->tail().append(frame);
        total += frame.size();
    }
    QCOMPARE(m_writer->bytesToWrite(), total);
    QList<Received> received;
    QCOMPARE(pump(*m_writer, *m_reader, &received, frames.size()), ReadStatus::Ok);
    QCOMPARE(m_writer->bytesToWrite(), 0);

    QCOMPARE(received.size(), frames.size());
    for (qsizetype i = 0; i < frames.size(); ++i) {
        QCOMPARE(received.at(i).body, bodyOf(frames.at(i)));
        QCOMPARE(received.at(i).header.frameLength(), frames.at(i).size());
        QVERIFY(!received.at(i).ownBuffer);
        QVERIFY(received.at(i).handles.isEmpty());
    }
    QCOMPARE(received.at(0).header.type, IpmbProtocol::FrameType::Welcome);
    const std::optional<IpmbProtocol::Welcome> welcome = IpmbProtocol::parseWelcome(received.at(0).body, nullptr);
    QVERIFY(welcome);
    QCOMPARE(welcome->endpointId, 7u);
    QCOMPARE(welcome->controllerPid, 4242u);
    QCOMPARE(received.at(1).header.type, IpmbProtocol::FrameType::Dropped);
    QCOMPARE(IpmbProtocol::parseDropped(received.at(1).body, nullptr), std::optional<quint64>(12345));
    QCOMPARE(m_reader->framesReceived(), quint64(frames.size()));
    QVERIFY(!m_reader->inFrame());
    QCOMPARE(m_reader->heldFrameBytes(), 0);
}

// A block queued by reference goes out between the frames appended before and after it, from
// its offset on (as the controller forwards a large body behind a header of its own).
void tst_IpmbConnection::sharedBlocksKeepTheirPlace()
{
    const QByteArray before = message("before");
    const QByteArray large = message(pattern(3 * 1024 * 1024 + 17, 'L'));
    const QByteArray after = message("after");
    // The large frame's header goes in the queue; its body comes from a buffer that holds
    // something else in front of it.
    const QByteArray storage = QByteArray("junk in front of the body") + bodyOf(large);
    m_writer->tail().append(before);
    m_writer->tail().append(large.first(IpmbProtocol::HeaderSize));
    m_writer->appendShared(storage, storage.size() - bodyOf(large).size());
    m_writer->tail().append(after);
    QCOMPARE(m_writer->bytesToWrite(), before.size() + large.size() + after.size());

    QList<Received> received;
    QCOMPARE(pump(*m_writer, *m_reader, &received, 3), ReadStatus::Ok);
    QCOMPARE(received.size(), 3);
    QCOMPARE(received.at(0).body, bodyOf(before));
    QCOMPARE(received.at(1).body.size(), bodyOf(large).size());
    QVERIFY(received.at(1).body == bodyOf(large));
    QVERIFY(received.at(1).ownBuffer);   // larger than IpmbLimits::LargeFrame
    QCOMPARE(received.at(2).body, bodyOf(after));
    QCOMPARE(m_writer->bytesToWrite(), 0);
}

// More than the kernel buffers: flush() writes what fits and keeps the rest; nothing is lost,
// reordered or written twice.
void tst_IpmbConnection::queueLargerThanTheSocket()
{
    constexpr int Count = 8000;
    for (int i = 0; i < Count; ++i)
        m_writer->tail().append(message(QByteArray::number(i) + ':' + pattern(1000, char(i))));
    const qint64 queued = m_writer->bytesToWrite();
    QVERIFY(queued > 4 * 1024 * 1024);
    const IpmbPlatform::IoResult first = m_writer->flush();
    QCOMPARE(first.status, IpmbPlatform::IoStatus::WouldBlock);
    QVERIFY(first.bytes > 0);
    QCOMPARE(m_writer->bytesToWrite(), queued - first.bytes);

    QList<Received> received;
    QCOMPARE(pump(*m_writer, *m_reader, &received, Count), ReadStatus::Ok);
    QCOMPARE(received.size(), Count);
    for (int i = 0; i < Count; ++i) {
        const QByteArray expected = bodyOf(message(QByteArray::number(i) + ':' + pattern(1000, char(i))));
        if (received.at(i).body != expected)
            QFAIL(qPrintable(QStringLiteral("frame %1 differs").arg(i)));
    }
}

void tst_IpmbConnection::frameSplitOverReads_data()
{
    QTest::addColumn<QByteArray>("frame");
    QTest::addColumn<int>("piece");
    const QByteArray small = message(pattern(100, 's'));
    const QByteArray large = message(pattern(1024 * 1024 + 5, 'l'));
    QTest::addRow("small, byte by byte") << small << 1;
    QTest::addRow("small, header split") << small << 27;
    QTest::addRow("small, in two") << small << int(small.size() / 2 + 1);
    QTest::addRow("large, 64 KiB pieces") << large << 64 * 1024;
    QTest::addRow("large, odd pieces") << large << 100003;
    QTest::addRow("large, header split") << large << 13;
}

// However the stream is cut, a frame comes out whole, once, when its last byte is there.
void tst_IpmbConnection::frameSplitOverReads()
{
    QFETCH(QByteArray, frame);
    QFETCH(int, piece);
    QVERIFY(makePair(true));
    const QByteArray next = message("next");
    const QByteArray stream = frame + next;
    QList<Received> received;
    qsizetype sent = 0;
    // Small pieces of a large frame would take a long time: only its first ones are that small.
    while (sent < frame.size()) {
        const qsizetype size = qMin<qsizetype>(sent < 4096 ? piece : qMax(piece, 64 * 1024), frame.size() - sent);
        QVERIFY(writeRaw(m_raw, QByteArrayView(stream).sliced(sent, size)));
        sent += size;
        if (sent == frame.size())
            break;
        QCOMPARE(readUntil(*m_reader, &received, 1, 0), ReadStatus::Ok);
        QVERIFY2(received.isEmpty(), qPrintable(QStringLiteral("a frame came out after %1 of %2 bytes")
                                                        .arg(sent).arg(frame.size())));
        QVERIFY(m_reader->inFrame());
        if (sent >= IpmbProtocol::HeaderSize && frame.size() > IpmbLimits::LargeFrame)
            QCOMPARE(m_reader->unfinishedFrameLength(), frame.size());
    }
    QVERIFY(writeRaw(m_raw, next));
    QCOMPARE(readUntil(*m_reader, &received, 2), ReadStatus::Ok);
    QCOMPARE(received.size(), 2);
    QVERIFY(received.at(0).body == bodyOf(frame));
    QCOMPARE(received.at(0).ownBuffer, frame.size() > IpmbLimits::LargeFrame);
    QCOMPARE(received.at(1).body, bodyOf(next));
    QVERIFY(!m_reader->inFrame());
    QCOMPARE(m_reader->unfinishedFrameLength(), 0);
}

// A header may claim up to the body limit; the buffer grows with the bytes that came, never with
// what the header claims.
void tst_IpmbConnection::largeClaimIsNotAllocated()
{
    QVERIFY(makePair(true));
    QVERIFY(writeRaw(m_raw, messageHeader(quint32(IpmbLimits::MaxPayload)) + pattern(100 * 1024, 'c')));
    QList<Received> received;
    QCOMPARE(readUntil(*m_reader, &received, 1, 100), ReadStatus::Ok);
    QVERIFY(received.isEmpty());
    QVERIFY(m_reader->inFrame());
    QCOMPARE(m_reader->unfinishedFrameLength(), IpmbProtocol::HeaderSize + IpmbLimits::MaxPayload);
    QVERIFY2(m_reader->heldFrameBytes() <= IpmbLimits::LargeFrameStep + 100 * 1024 + IpmbProtocol::HeaderSize,
             qPrintable(QString::number(m_reader->heldFrameBytes())));
}

// With no room to grow a large frame's buffer, readFrames() stops and says so; with room, the
// frame completes.
void tst_IpmbConnection::growthBudget()
{
    const QByteArray frame = message(pattern(3 * 1024 * 1024, 'g'));
    QVERIFY(makePair(true));
    // Less than the socket buffers, so that it is all there before the first read.
    QVERIFY(writeRaw(m_raw, frame.first(128 * 1024)));
    QList<Received> received;
    const auto collect = [&](const IpmbConnection::Frame &f) {
        received.append(copyOf(f));
        return Action::Consumed;
    };
    // The first call may end at the short read that brought the header; the next wants to grow.
    for (int i = 0; i < 3 && !m_reader->waitsForMemory(); ++i) {
        QCOMPARE(m_reader->readFrames(collect, IpmbLimits::ReadBudget, std::numeric_limits<qsizetype>::max(), 0),
                 ReadStatus::Ok);
    }
    QVERIFY(received.isEmpty());
    QVERIFY(m_reader->waitsForMemory());
    const qint64 held = m_reader->heldFrameBytes();
    QVERIFY(held <= 128 * 1024);
    QCOMPARE(m_reader->readFrames(collect, IpmbLimits::ReadBudget, std::numeric_limits<qsizetype>::max(), 0),
             ReadStatus::Ok);
    QCOMPARE(m_reader->heldFrameBytes(), held);   // still no room: nothing grew

    // Room again: the rest arrives (in pieces, as the socket takes them).
    qsizetype sent = 128 * 1024;
    const QDeadlineTimer deadline(10000);
    while (received.isEmpty() && !deadline.hasExpired()) {
        if (sent < frame.size()) {
            const qsizetype size = qMin<qsizetype>(64 * 1024, frame.size() - sent);
            QVERIFY(writeRaw(m_raw, QByteArrayView(frame).sliced(sent, size)));
            sent += size;
        }
        QCOMPARE(m_reader->readFrames(collect), ReadStatus::Ok);
    }
    QVERIFY(!m_reader->waitsForMemory());
    QCOMPARE(received.size(), 1);
    QVERIFY(received.at(0).body == bodyOf(frame));
}

// The handles queued before a frame arrive with it, as new descriptors for the same objects.
void tst_IpmbConnection::handlesTravelWithTheirFrame()
{
    int fds[2];
    QCOMPARE(::pipe2(fds, O_CLOEXEC), 0);
    const IpmbNativeHandle readEnd = IpmbNativeHandle::adopt(fds[0]);
    const IpmbNativeHandle writeEnd = IpmbNativeHandle::adopt(fds[1]);

    m_writer->tail().append(message("no handles"));
    m_writer->appendHandles({writeEnd, readEnd});
    QCOMPARE(m_writer->handlesToWrite(), 2);
    m_writer->tail().append(message("two handles", 2));
    m_writer->tail().append(message("none again"));
    QList<Received> received;
    QCOMPARE(pump(*m_writer, *m_reader, &received, 3), ReadStatus::Ok);
    QCOMPARE(m_writer->handlesToWrite(), 0);
    QCOMPARE(received.size(), 3);
    QVERIFY(received.at(0).handles.isEmpty());
    QVERIFY(received.at(2).handles.isEmpty());
    const QList<IpmbNativeHandle> handles = received.at(1).handles;
    QCOMPARE(handles.size(), 2);
    QVERIFY(handles.at(0).handle() != writeEnd.handle() && handles.at(1).handle() != readEnd.handle());
    QCOMPARE(identity(handles.at(0).handle()), identity(writeEnd.handle()));
    QCOMPARE(identity(handles.at(1).handle()), identity(readEnd.handle()));
    // Written through the received write end, read through the original read end.
    QCOMPARE(::write(int(handles.at(0).handle()), "ping", 4), ssize_t(4));
    char buffer[8] = {};
    QCOMPARE(::read(fds[0], buffer, sizeof(buffer)), ssize_t(4));
    QCOMPARE(QByteArray(buffer), QByteArray("ping"));
}

// More handles than one write carries (IpmbLimits::MaxHandlesPerIo): flush() spreads them over
// several writes, each frame still gets its own.
void tst_IpmbConnection::handlesOverSeveralWrites()
{
    constexpr int Frames = 6;
    constexpr int PerFrame = IpmbLimits::MaxHandles;
    static_assert(Frames * PerFrame > IpmbLimits::MaxHandlesPerIo);
    QList<IpmbNativeHandle> pipes;   // a pipe's write end per frame; the frame carries copies of it
    for (int i = 0; i < Frames; ++i) {
        int fds[2];
        QCOMPARE(::pipe2(fds, O_CLOEXEC), 0);
        ::close(fds[0]);
        pipes.append(IpmbNativeHandle::adopt(fds[1]));
        QList<IpmbNativeHandle> handles;
        for (int h = 0; h < PerFrame; ++h) {
            handles.append(IpmbNativeHandle::duplicate(fds[1]));
            QVERIFY(!handles.last().isNull());
        }
        m_writer->appendHandles(handles);
        m_writer->tail().append(message(QByteArray::number(i), PerFrame));
    }
    QCOMPARE(m_writer->handlesToWrite(), Frames * PerFrame);
    QList<Received> received;
    QCOMPARE(pump(*m_writer, *m_reader, &received, Frames), ReadStatus::Ok);
    QCOMPARE(received.size(), Frames);
    QCOMPARE(m_writer->handlesToWrite(), 0);
    for (int i = 0; i < Frames; ++i) {
        QCOMPARE(received.at(i).handles.size(), PerFrame);
        const QByteArray expected = identity(pipes.at(i).handle());
        for (const IpmbNativeHandle &handle : received.at(i).handles)
            QCOMPARE(identity(handle.handle()), expected);
    }
}

// A header that announces handles the peer never sent is a protocol error, said as such.
void tst_IpmbConnection::frameWithoutItsHandles()
{
    QVERIFY(makePair(true));
    QVERIFY(writeRaw(m_raw, message("claims two", 2)));
    QList<Received> received;
    QCOMPARE(readUntil(*m_reader, &received, 1), ReadStatus::Failed);
    QVERIFY(received.isEmpty());
    QCOMPARE(m_reader->errorString(), QStringLiteral("a frame announces 2 handles but 0 arrived"));
}

// Handles that no frame claims are held at most IpmbLimits::MaxHandlesAhead; a peer that sends
// more is refused before it runs the reader out of descriptors.
void tst_IpmbConnection::tooManyHandlesAhead()
{
    QVERIFY(makePair(true));
    int fds[2];
    QCOMPARE(::pipe2(fds, O_CLOEXEC), 0);
    const QList<qintptr> batch(IpmbLimits::MaxHandlesPerIo, qintptr(fds[0]));
    // The start of a header, then one more byte with each batch.
    QVERIFY(writeRaw(m_raw, "IPMB", batch));
    QVERIFY(writeRaw(m_raw, "\x02", batch));
    ::close(fds[0]);
    ::close(fds[1]);
    QList<Received> received;
    QCOMPARE(readUntil(*m_reader, &received, 1), ReadStatus::Failed);
    QVERIFY2(m_reader->errorString().contains(QStringLiteral("handles arrived ahead of their frames (at most %1 may)")
                                                      .arg(IpmbLimits::MaxHandlesAhead)),
             qPrintable(m_reader->errorString()));
}

void tst_IpmbConnection::oversizedBody_data()
{
    QTest::addColumn<QByteArray>("header");
    QTest::addColumn<qint64>("maxBody");     // setMaxBodyLength(); -1 for the default
    QTest::addColumn<QString>("error");

    QTest::addRow("over setMaxBodyLength()")
            << messageHeader(101) << qint64(100) << QStringLiteral("a frame of 101 bytes where at most 100 may come now");
    // The controller's rule before a Hello: nothing larger than a Hello.
    QTest::addRow("a message before the Hello")
            << messageHeader(quint32(IpmbLimits::MaxControlBody + 1)) << IpmbLimits::MaxControlBody
            << QStringLiteral("a frame of %1 bytes where at most %2 may come now")
                       .arg(IpmbLimits::MaxControlBody + 1).arg(IpmbLimits::MaxControlBody);
    QTest::addRow("over the message limit")
            << messageHeader(quint32(IpmbLimits::MaxMessageBody + 1)) << qint64(-1)
            << QStringLiteral("body length %1 exceeds the limit of %2")
                       .arg(IpmbLimits::MaxMessageBody + 1).arg(IpmbLimits::MaxMessageBody);
    IpmbProtocol::Header control;
    control.type = IpmbProtocol::FrameType::Dropped;
    control.bodyLength = quint32(IpmbLimits::MaxControlBody + 1);
    QByteArray controlHeader(IpmbProtocol::HeaderSize, Qt::Uninitialized);
    IpmbProtocol::writeHeader(controlHeader.data(), control);
    QTest::addRow("a control frame over its limit")
            << controlHeader << qint64(-1)
            << QStringLiteral("body length %1 exceeds the limit of %2")
                       .arg(IpmbLimits::MaxControlBody + 1).arg(IpmbLimits::MaxControlBody);
}

// A frame over the limit is refused on its header, before anything is allocated for its body.
void tst_IpmbConnection::oversizedBody()
{
    QFETCH(QByteArray, header);
    QFETCH(qint64, maxBody);
    QFETCH(QString, error);
    QVERIFY(makePair(true));
    if (maxBody >= 0)
        m_reader->setMaxBodyLength(maxBody);
    QVERIFY(writeRaw(m_raw, header + pattern(1000, 'o')));
    QList<Received> received;
    QCOMPARE(readUntil(*m_reader, &received, 1), ReadStatus::Failed);
    QVERIFY(received.isEmpty());
    QCOMPARE(m_reader->errorString(), error);
    QCOMPARE(m_reader->heldFrameBytes(), 0);
}

// Keep: the frame comes first again at the next call (a controller retries it once there is
// room); Stop: consumed, and the call returns with the rest unread.
void tst_IpmbConnection::handlerActions()
{
    const QList<QByteArray> frames {message("first"), message(pattern(200 * 1024, 'B')), message("third")};
    for (const QByteArray &frame : frames)
        m_writer->tail().append(frame);
    while (m_writer->bytesToWrite() > 0) {
        const IpmbPlatform::IoResult r = m_writer->flush();
        QVERIFY(r.status == IpmbPlatform::IoStatus::Ok || r.status == IpmbPlatform::IoStatus::WouldBlock);
        if (r.status == IpmbPlatform::IoStatus::WouldBlock)
            break;   // the large one waits in the queue; the reader takes it below
    }

    QList<QByteArray> seen;
    const auto handler = [&](Action action) {
        return [&seen, action](const IpmbConnection::Frame &frame) {
            seen.append(frame.body.toByteArray());
            return action;
        };
    };
    QCOMPARE(m_reader->readFrames(handler(Action::Keep)), ReadStatus::Ok);
    QCOMPARE(seen, QList<QByteArray>{bodyOf(frames.at(0))});
    QCOMPARE(m_reader->readFrames(handler(Action::Stop)), ReadStatus::Ok);
    QCOMPARE(seen.size(), 2);
    QCOMPARE(seen.at(1), bodyOf(frames.at(0)));   // the kept one again

    // The large frame, kept while in its own buffer, then consumed.
    const QDeadlineTimer deadline(5000);
    while (seen.size() < 3 && !deadline.hasExpired()) {
        m_writer->flush();
        QCOMPARE(m_reader->readFrames(handler(Action::Keep)), ReadStatus::Ok);
        waitReadable(m_reader->socket(), QDeadlineTimer(10));
    }
    QCOMPARE(seen.size(), 3);
    QVERIFY(seen.at(2) == bodyOf(frames.at(1)));
    QCOMPARE(m_reader->readFrames(handler(Action::Stop)), ReadStatus::Ok);
    QCOMPARE(seen.size(), 4);
    QVERIFY(seen.at(3) == bodyOf(frames.at(1)));

    QList<Received> rest;
    QCOMPARE(readUntil(*m_reader, &rest, 1), ReadStatus::Ok);
    QCOMPARE(rest.size(), 1);
    QCOMPARE(rest.at(0).body, bodyOf(frames.at(2)));
}

// What the peer wrote before it closed still comes out; then the connection says Closed.
void tst_IpmbConnection::readAfterPeerClosed()
{
    m_writer->tail().append(message("one"));
    m_writer->tail().append(message(pattern(100 * 1024, '2')));
    QCOMPARE(m_writer->flush().status, IpmbPlatform::IoStatus::Ok);
    QCOMPARE(m_writer->bytesToWrite(), 0);
    m_writer.reset();   // closes its socket

    QList<Received> received;
    QCOMPARE(readUntil(*m_reader, &received, 3), ReadStatus::Closed);
    QCOMPARE(received.size(), 2);
    QCOMPARE(received.at(0).body, bodyOf(message("one")));
    QVERIFY(received.at(1).body == bodyOf(message(pattern(100 * 1024, '2'))));
    QCOMPARE(m_reader->errorString(), QStringLiteral("the peer closed the connection"));
    // And again: a closed connection stays closed.
    QCOMPARE(readUntil(*m_reader, &received, 3, 0), ReadStatus::Closed);
    QCOMPARE(received.size(), 2);

    // Writing to it fails instead of raising SIGPIPE.
    m_reader->tail().append(message("to nobody"));
    QCOMPARE(m_reader->flush().status, IpmbPlatform::IoStatus::Closed);
}

// A peer that dies mid-frame: no frame comes out of the half one.
void tst_IpmbConnection::peerClosedMidFrame()
{
    QVERIFY(makePair(true));
    const QByteArray frame = message(pattern(300 * 1024, 'h'));
    QVERIFY(writeRaw(m_raw, message("whole")));
    QVERIFY(writeRaw(m_raw, frame.first(frame.size() / 2)));
    IpmbPlatform::closeSocket(m_raw);
    m_raw = IpmbPlatform::InvalidSocket;
    QList<Received> received;
    QCOMPARE(readUntil(*m_reader, &received, 2), ReadStatus::Closed);
    QCOMPARE(received.size(), 1);
    QCOMPARE(received.at(0).body, bodyOf(message("whole")));
    QVERIFY(m_reader->inFrame());
    QCOMPARE(m_reader->unfinishedFrameLength(), frame.size());
}

QTEST_GUILESS_MAIN(tst_IpmbConnection)
#include "tst_ipmbconnection.moc"
