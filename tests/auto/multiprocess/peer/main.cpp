// SPDX-License-Identifier: BSD-3-Clause
// The helper process of the multi-process tests. It joins a bus as told on the command line,
// reads commands from stdin (one per line) and reports what happens on stdout, one line per event:
//   joined controller=<0|1> pid=<pid> id=<endpointId>    state <StateName>
//   peer-joined id=<id> pid=<pid> label=<a,b> controller=<0|1>    peer-left id=<id> pid=<pid>
//                                            (with --watch-peers, or after "watch 1")
//   peers n=<n> ids=<id,id,...>              (answer to "peers"; ids sorted)
//   error <ErrorName> <errorString>          dropped <n>
//   received type=<name> status=<status> value=<text> from=<pid> uid=<uid> label=<a,b> handles=<n>
//                                            (value: a QEasingCurve's is "curve:<valueForProgress(0.5)>")
//   pipe-read <text>                         (the answer through a pipe sent with "sendpipe")
//   fds ok=<0|1> n=<n>                       (a message from "sendfds" checked)
//   regions ok=<0|1>                         (a message from "sendregions" checked)
//   fdcount <n>                              (open descriptors, answer to "fdcount")
//   mappings mapped=<n> reused=<n> cached=<n> inmaps=<n>
//                                            (the region mapping cache, answer to "mappings";
//                                            inmaps: region mappings in /proc/self/maps)
//   region ok=<0|1> size=<n>                 (a region from "sendregion" checked, written, and held)
//   regioninfo refs=<n> text=<text>          (the last region this peer sent)
//   registry frames=<n> bad=<n> maxcount=<n> count=<n> countattenth=<n> shmemgrowth=<kB> anongrowth=<kB>
//                                            (after "registryflood": RSS growth from 10 % to the end)
//   qshm attached=<0|1> text=<text>          (a QSharedMemory segment handed over by key)
//   count n=<n> dropped=<n> inorder=<0|1> intact=<0|1>   (answer to "count")
//   got <n>                                  (when "expect <n>" is reached)
//   sent <n>                                 (a flood is handed to the controller)
// Commands:
//   send <unicast|multicast> <labelop> <ttlms> <str|int|gadget|bytes|blob> <value>
//   flood <unicast|multicast> <labelop> <count> <size> [<first sequence number>]
//   floodsignal <labelop> <count> <size>: the same, event-driven: on QueueFullError (the first
//       time it prints "queuefull") it waits for bytesWritten(); at the end it prints
//       "sent <count> fullqueues=<times send() refused>"
//   sendpipe <labelop>: send the write end of a pipe; the receiver writes a line into it
//   sendfds <unicast|multicast> <labelop> <ttlms> <n> <times>: send <times> messages, each with
//       <n> memfds whose contents say their position; the receiver checks them
//   sendregion <unicast|multicast> <labelop> <ttlms> <size>: send a region that says "from-sender";
//       a receiver checks it, writes "from-<its pid>" into it (unicast only) and holds the
//       message until "drop"
//   sendregions <unicast|multicast> <labelop> <ttlms> <size> <times>: send <times> messages with
//       a new region each that says "from-sender"; a receiver checks it ("regions ok=<0|1>") and
//       lets it go
//   fillhandles <labelop> <n>: send messages with <n> memfds each until send() refuses one, print
//       "filled sent=<k> error=<Error> fds=<open descriptors> reason=<errorString>", then drain
//   registryflood <labelop> <count> <size> <window>: send <count> frames in regions from an
//       IpmbMemoryRegistry, at most <window> unacknowledged; receivers check and acknowledge them
//   resetframes: forget unacknowledged registryflood frames (acks lost in a failover), print
//       "frames-reset inflight=<n> bad=<n>" (the soak driver sends it before each registryflood)
//   sendqshm <labelop> <text>: create a QSharedMemory segment holding <text> and send its key
//   waitreleased <ms>: IpmbMemoryRegion::waitForReleased() on the last region sent; prints
//       "released ok=<0|1>"
//   keeppayloads: hold every flood payload from now on; verifykept: check them all again, and
//       print "kept n=<n> intact=<0|1>"
//   address: prints "address <the bus address>"
//   watch <0|1>: IpmbEndpoint::setWatchingPeers()
//   rejoin <a,b>: leave, take that label, and join again
//   regioninfo | drop | expect <n> | count | fdcount | mappings | peers | leave
//   quit: leave (once joined, if it is still joining) and exit
// Raw modes for the security tests (no IpmbEndpoint): --raw-hello ADDRESS connects to a bus
// address (see the "address" command) and sends a Hello, then prints "refused <Error> <reason>";
// --squat-loop ADDRESS (a socket path, or @name in the abstract namespace) tries to bind ADDRESS
// over and over, as an attacker racing an election would: it prints "squatting" when it starts and
// "won" if a bind ever succeeds (then it holds the address and accepts nothing).

#include "ipmbprocstatus.h"
#include "ipmbtestcommands.h"
#include "ipmbtesttypes.h"

#include <IpmbQt/IpmbEndpoint>
#include <IpmbQt/IpmbMemoryRegistry>

#include "ipmbmemoryregion_p.h"
#include "ipmbplatform_p.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qbitarray.h>
#include <QtCore/qcommandlineparser.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qeventloop.h>
#include <QtCore/qfile.h>
#include <QtCore/qendian.h>
#include <QtCore/qhash.h>
#include <QtCore/qmetaobject.h>
#include <QtCore/qmutex.h>
#include <QtCore/qsharedmemory.h>
#include <QtCore/qsocketnotifier.h>
#include <QtCore/quuid.h>
#include <QtCore/qtimer.h>

#include <QtCore/qdir.h>
#include <QtCore/qeasingcurve.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <cstddef>
#include <cstring>
#include <cstdio>
#include <limits>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

// A character outside Latin-1, so that a QString payload shows its byte order.
static constexpr QChar Smiley(0x263A);

static void say(const QByteArray &line)
{
    std::fwrite(line.constData(), 1, size_t(line.size()), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

// Until every message sent so far is written (or 30 s pass).
// Until everything queued is written, or nothing moved for 2 s: the queue of a channel to a
// stopped receiver stays full (its later messages are dropped).
static void writeAll(IpmbEndpoint &endpoint)
{
    QDeadlineTimer deadline(30000);
    while (endpoint.bytesToWrite() > 0 && !deadline.hasExpired()
           && endpoint.waitForBytesWritten(int(qMin<qint64>(deadline.remainingTime(), 2000))))
        ;
}

static QByteArray enumName(const QMetaEnum &e, int value)
{
    return QByteArray(e.valueToKey(value));
}

// Flood payloads: "SEQ!" | u64 sequence | pattern bytes derived from the sequence.
static char patternByte(qsizetype at, quint64 sequence)
{
    return char((at * 31 + qsizetype(sequence)) & 0xFF);
}

static QByteArray floodPayload(quint64 sequence, qsizetype size)
{
    QByteArray bytes(qMax<qsizetype>(size, 12), Qt::Uninitialized);
    std::memcpy(bytes.data(), "SEQ!", 4);
    qToLittleEndian(sequence, bytes.data() + 4);
    char *data = bytes.data();
    for (qsizetype i = 12; i < bytes.size(); ++i)
        data[i] = patternByte(i, sequence);
    return bytes;
}

static bool patternIntact(const QByteArray &bytes)
{
    const quint64 sequence = qFromLittleEndian<quint64>(bytes.constData() + 4);
    const char *data = bytes.constData();
    for (qsizetype i = 12; i < bytes.size(); ++i) {
        if (data[i] != patternByte(i, sequence))
            return false;
    }
    return true;
}

class Counter
{
public:
    // Returns true if the message was a flood message (counted, not printed).
    bool take(const IpmbMessage &m)
    {
        if (m.payload().metaType() != QMetaType::fromType<QByteArray>())
            return false;
        const QByteArray bytes = m.payload().toByteArray();
        if (bytes.size() < 12 || !bytes.startsWith("SEQ!"))
            return false;
        const quint64 sequence = qFromLittleEndian<quint64>(bytes.constData() + 4);
        QMutexLocker locker(&m_mutex);
        quint64 &expected = m_next[m.senderPid()];
        if (sequence != expected)
            m_inOrder = false;
        expected = sequence + 1;
        bool seenBefore = false;  // a duplicate counts as damage ("intact=0")
        QBitArray &seen = m_seen[m.senderPid()];
        if (sequence < quint64(std::numeric_limits<int>::max())) {
            if (seen.size() <= qsizetype(sequence))
                seen.resize(qMax<qsizetype>(qsizetype(sequence) + 1, seen.size() * 2));
            seenBefore = seen.testBit(qsizetype(sequence));
            seen.setBit(qsizetype(sequence));
        }
        if (seenBefore)
            m_intact = false;
        if (!m.regions().isEmpty() || !m.handles().isEmpty())
            m_intact = false;   // a payload that travelled in a region must not show it
        m_intact = m_intact && patternIntact(bytes);
        if (m_keep)
            m_kept.append(bytes);
        ++m_count;
        return true;
    }
    // "keeppayloads": hold every flood payload from now on; "verifykept" checks them all again,
    // after later messages have arrived (whose buffers must not be the kept ones).
    void keepPayloads()
    {
        QMutexLocker locker(&m_mutex);
        m_keep = true;
    }
    QByteArray verifyKept()
    {
        QMutexLocker locker(&m_mutex);
        bool intact = true;
        for (const QByteArray &bytes : std::as_const(m_kept))
            intact = intact && patternIntact(bytes);
        return "kept n=" + QByteArray::number(m_kept.size()) + " intact=" + QByteArray::number(intact);
    }
    QByteArray report(quint64 dropped)
    {
        QMutexLocker locker(&m_mutex);
        return "count n=" + QByteArray::number(m_count) + " dropped=" + QByteArray::number(dropped)
                + " inorder=" + QByteArray::number(m_inOrder) + " intact=" + QByteArray::number(m_intact);
    }
    quint64 count()
    {
        QMutexLocker locker(&m_mutex);
        return m_count;
    }

private:
    QMutex m_mutex;
    QHash<qint64, quint64> m_next;
    QHash<qint64, QBitArray> m_seen;
    quint64 m_count = 0;
    bool m_inOrder = true;
    bool m_intact = true;
    bool m_keep = false;
    QList<QByteArray> m_kept;
};

// A memfd holding `text`, as a handle a message can carry.
static IpmbNativeHandle memfdWith(const QByteArray &text)
{
    const int fd = ::memfd_create("ipmbqt-test", MFD_CLOEXEC);
    if (fd >= 0)
        [[maybe_unused]] ssize_t n = ::write(fd, text.constData(), size_t(text.size()));
    return IpmbNativeHandle::adopt(fd);
}

static QByteArray contentsOf(const IpmbNativeHandle &handle)
{
    char buffer[64];
    const ssize_t n = ::pread(int(handle.handle()), buffer, sizeof(buffer), 0);
    return n > 0 ? QByteArray(buffer, n) : QByteArray();
}

// A line of /proc/self/status in KiB: RssShmem (shared memory: the regions), RssAnon (heap).
static qint64 residentKiB(const QByteArray &key)
{
    return IpmbTest::procStatusKiB(QCoreApplication::applicationPid(), key);
}

static int openDescriptors()
{
    return int(QDir(QStringLiteral("/proc/self/fd")).entryList(QDir::Files | QDir::System).size());
}

// Mappings of IpmbMemoryRegion memfds in /proc/self/maps (views included).
static int regionMappings()
{
    QFile maps(QStringLiteral("/proc/self/maps"));
    return maps.open(QIODevice::ReadOnly) ? int(maps.readAll().count("/memfd:ipmbqt-region")) : -1;
}

static IpmbSelector parseSelector(const QByteArray &mode, const QByteArray &op, qint64 ttl)
{
    const std::optional<IpmbLabelOp> labelOp = IpmbLabelOp::fromString(QString::fromUtf8(op));
    if (!labelOp)
        say("error InvalidArgumentError bad label op " + op);
    return IpmbSelector(mode == "multicast" ? IpmbSelector::Multicast : IpmbSelector::Unicast,
                        labelOp.value_or(IpmbLabelOp::matchNone()), std::chrono::milliseconds(ttl));
}

static int rawHello(const QByteArray &address, const QByteArray &token, quint16 version)
{
    IpmbErrorInfo error;
    IpmbPlatform::Socket socket = IpmbPlatform::InvalidSocket;
    if (IpmbPlatform::connectTo(address, &socket, &error) != IpmbPlatform::ConnectStatus::Connected) {
        say("error cannot connect " + error.message.toUtf8());
        return 1;
    }
    QByteArray hello;
    IpmbProtocol::appendHello(hello, IpmbProtocol::Hello::first(token, IpmbLabel{QStringLiteral("intruder")}), version);
    const IpmbPlatform::IoSlice slice {hello.constData(), hello.size()};
    IpmbPlatform::write(socket, &slice, 1);
    QByteArray in;
    for (int i = 0; i < 500; ++i) {
        IpmbPlatform::PollEntry entry {socket, true, false, false, false};
        IpmbPlatform::poll(&entry, 1, 10);
        char buffer[4096];
        const IpmbPlatform::IoResult r = IpmbPlatform::read(socket, buffer, sizeof(buffer));
        if (r.status == IpmbPlatform::IoStatus::Ok)
            in.append(buffer, r.bytes);
        else if (r.status != IpmbPlatform::IoStatus::WouldBlock)
            break;
    }
    const std::optional<IpmbProtocol::Header> header =
            in.size() >= IpmbProtocol::HeaderSize ? IpmbProtocol::parseHeader(in.constData(), nullptr) : std::nullopt;
    if (!header || header->type != IpmbProtocol::FrameType::Refuse) {
        say("accepted");
        return 0;
    }
    const auto refuse = IpmbProtocol::parseRefuse(QByteArrayView(in).sliced(IpmbProtocol::HeaderSize), nullptr);
    say("refused " + enumName(QMetaEnum::fromType<IpmbEndpoint::Error>(), refuse ? int(refuse->error) : 0) + ' '
        + (refuse ? refuse->reason.toUtf8() : QByteArray()));
    return 0;
}

static int squatLoop(const QByteArray &address, int watchdogMsecs)
{
    // The loop never returns to the event loop, where the watchdog timer lives: SIGALRM ends it.
    ::alarm(unsigned(qMax(1, watchdogMsecs / 1000)));
    sockaddr_un sa = {};
    sa.sun_family = AF_UNIX;
    const bool abstract = address.startsWith('@');
    const QByteArray name = abstract ? address.mid(1) : address;
    if (name.size() >= qsizetype(sizeof(sa.sun_path)) - 1) {
        say("error address too long");
        return 1;
    }
    std::memcpy(sa.sun_path + (abstract ? 1 : 0), name.constData(), size_t(name.size()));
    const socklen_t length = socklen_t(offsetof(sockaddr_un, sun_path) + (abstract ? 1 : 0) + size_t(name.size())
                                       + (abstract ? 0 : 1));
    say("squatting");
    for (;;) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::bind(fd, reinterpret_cast<const sockaddr *>(&sa), length) == 0 && ::listen(fd, 16) == 0) {
            say("won");
            for (;;)
                ::pause(); // until SIGALRM
        }
        ::close(fd);
    }
}

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QCommandLineParser parser;
    parser.addOptions({
            {QStringLiteral("bus"), QStringLiteral("Bus identifier."), QStringLiteral("id")},
            {QStringLiteral("label"), QStringLiteral("Comma-separated label."), QStringLiteral("names")},
            {QStringLiteral("token"), QStringLiteral("Token."), QStringLiteral("token")},
            {QStringLiteral("watchdog"), QStringLiteral("Exit with 3 after ms."), QStringLiteral("ms"), QStringLiteral("60000")},
            {QStringLiteral("no-gadget"), QStringLiteral("Do not register TestPoint.")},
            {QStringLiteral("watch-peers"), QStringLiteral("Watch the other endpoints (presence).")},
            {QStringLiteral("receive-thread"), QStringLiteral("Take messages with receive() in a worker thread.")},
            {QStringLiteral("receive-threads"), QStringLiteral("With --receive-thread: how many such threads."),
             QStringLiteral("n"), QStringLiteral("1")},
            {QStringLiteral("raw-hello"), QStringLiteral("Send a raw Hello to this bus address."), QStringLiteral("address")},
            {QStringLiteral("raw-version"), QStringLiteral("Protocol version of the raw Hello."), QStringLiteral("v")},
            {QStringLiteral("squat-loop"), QStringLiteral("Try to bind this address until it works."), QStringLiteral("address")},
    });
    parser.process(app);
    const QString bus = parser.value(QStringLiteral("bus"));
    QTimer::singleShot(parser.value(QStringLiteral("watchdog")).toInt(), &app, [] {
        say("error watchdog expired");
        std::fflush(stdout);
        ::_exit(3);
    });
    if (parser.isSet(QStringLiteral("squat-loop")))
        return squatLoop(parser.value(QStringLiteral("squat-loop")).toUtf8(),
                         parser.value(QStringLiteral("watchdog")).toInt());
    if (!parser.isSet(QStringLiteral("no-gadget")))
        qRegisterMetaType<TestPoint>();
    if (parser.isSet(QStringLiteral("raw-hello"))) {
        const quint16 version = parser.isSet(QStringLiteral("raw-version"))
                ? quint16(parser.value(QStringLiteral("raw-version")).toUInt()) : IpmbProtocol::Version;
        return rawHello(parser.value(QStringLiteral("raw-hello")).toUtf8(), parser.value(QStringLiteral("token")).toUtf8(),
                        version);
    }

    const QMetaEnum errors = QMetaEnum::fromType<IpmbEndpoint::Error>();
    const QMetaEnum states = QMetaEnum::fromType<IpmbEndpoint::State>();
    const QMetaEnum statuses = QMetaEnum::fromType<IpmbMessage::PayloadStatus>();

    IpmbEndpoint endpoint;
    endpoint.setIdentifier(bus);
    endpoint.setLabel(IpmbLabel(parser.value(QStringLiteral("label")).split(QLatin1Char(','), Qt::SkipEmptyParts)));
    endpoint.setToken(parser.value(QStringLiteral("token")).toUtf8());
    Counter counter;
    QList<IpmbMessage> held;       // messages whose regions this peer keeps mapped
    std::vector<std::unique_ptr<QSharedMemory>> segments; // created by "sendqshm"
    int framesInFlight = 0;        // registryflood: sent, not yet acknowledged
    int badFrames = 0;
    IpmbMemoryRegion lastRegion;   // the last region this peer sent
    quint64 expected = 0;
    bool expecting = false;

    auto checkExpect = [&] {
        if (expecting && counter.count() >= expected) {
            expecting = false;
            say("got " + QByteArray::number(counter.count()));
        }
    };
    auto onMessage = [&](const IpmbMessage &m) {
        if (counter.take(m))
            return;
        const QList<IpmbNativeHandle> handles = m.handles();
        // Converted once, and only if it is text: a 256 MiB QByteArray payload took seconds per
        // conversion to QString (tst_hostile::largestMessage).
        const QString str = m.payload().typeId() == QMetaType::QString ? m.payload().toString() : QString();
        if (str == QLatin1String("pipe") && handles.size() == 1) {
            const QByteArray line = "hello-from-" + QByteArray::number(QCoreApplication::applicationPid()) + '\n';
            [[maybe_unused]] ssize_t n = ::write(int(handles.first().handle()), line.constData(), size_t(line.size()));
        }
        const QVariantMap map = m.payload().toMap();
        if (map.contains(QStringLiteral("qsharedmemory"))) {
            // QSharedMemory interop: the bus carries the segment's native key; attach by it.
            QSharedMemory segment;
            segment.setNativeKey(map.value(QStringLiteral("qsharedmemory")).toString());
            const bool attached = segment.attach(QSharedMemory::ReadOnly);
            QByteArray text;
            if (attached) {
                segment.lock();
                text = QByteArray(static_cast<const char *>(segment.constData()));
                segment.unlock();
            }
            say("qshm attached=" + QByteArray::number(attached) + " text=" + text);
            return;
        }
        if (str.startsWith(QLatin1String("ack:"))) {
            --framesInFlight;
            badFrames += str.endsWith(QLatin1String(":0"));
            return;
        }
        if (str.startsWith(QLatin1String("frame:")) && m.regions().size() == 1) {
            const QByteArray expected = str.mid(6).toUtf8();
            const bool ok = std::strncmp(static_cast<const char *>(m.regions().first().constData()),
                                         expected.constData(), size_t(expected.size()) + 1) == 0;
            const QString to = m.senderLabel().toStringList().value(0);
            endpoint.send(IpmbSelector::unicast(IpmbLabelOp(to)),
                          QStringLiteral("ack:%1:%2").arg(QString::fromUtf8(expected)).arg(int(ok)));
            return; // the message, and with it the region, is released when this slot returns
        }
        if (str == QLatin1String("region") && m.regions().size() == 1) {
            IpmbMemoryRegion region = m.regions().first();
            const bool ok = std::strncmp(static_cast<const char *>(region.constData()), "from-sender", 11) == 0;
            if (m.selector().mode() == IpmbSelector::Unicast) { // multicast receivers only read
                const QByteArray mine = "from-" + QByteArray::number(QCoreApplication::applicationPid());
                std::memcpy(region.data(), mine.constData(), size_t(mine.size()) + 1);
            }
            held.append(m);
            say("region ok=" + QByteArray::number(ok) + " size=" + QByteArray::number(region.size()));
            return;
        }
        if (str == QLatin1String("regions")) {
            const bool ok = m.regions().size() == 1
                    && std::strncmp(static_cast<const char *>(m.regions().first().constData()), "from-sender", 11) == 0;
            say("regions ok=" + QByteArray::number(ok));
            return;
        }
        if (str == QLatin1String("fds")) {
            bool ok = true;
            for (qsizetype i = 0; i < handles.size(); ++i)
                ok = ok && contentsOf(handles.at(i)) == "fd-" + QByteArray::number(i);
            say("fds ok=" + QByteArray::number(ok) + " n=" + QByteArray::number(handles.size()));
            return;
        }
        QByteArray value;
        if (m.payload().metaType() == QMetaType::fromType<TestPoint>()) {
            const TestPoint p = m.payload().value<TestPoint>();
            value = QByteArray::number(p.x) + ',' + QByteArray::number(p.y) + ',' + p.name.toUtf8();
        } else if (m.payload().metaType() == QMetaType::fromType<QByteArray>()) {
            value = "bytes:" + QByteArray::number(m.payload().toByteArray().size());
        } else if (m.payload().metaType() == QMetaType::fromType<QEasingCurve>()) {
            // Calls the curve: a function pointer taken from the bytes would crash here.
            value = "curve:" + QByteArray::number(m.payload().value<QEasingCurve>().valueForProgress(0.5));
        } else if (const QString text = m.payload().toString(); text.size() > 1 && text == QString(text.size(), Smiley)) {
            value = "smileys:" + QByteArray::number(text.size());
        } else if (const QVariantList list = m.payload().toList(); list.size() == 2 && list.at(1) == QVariant(7)
                   && list.at(0).toByteArray() == QByteArray(list.at(0).toByteArray().size(), 'l')) {
            value = "list:" + QByteArray::number(list.at(0).toByteArray().size());
        } else {
            value = m.payload().toString().toUtf8();
        }
        say("received type=" + m.payloadTypeName() + " status=" + enumName(statuses, m.payloadStatus())
            + " value=" + value + " from=" + QByteArray::number(m.senderPid()) + " uid="
            + QByteArray::number(m.senderUid()) + " label=" + m.senderLabel().toStringList().join(QLatin1Char(',')).toUtf8()
            + " handles=" + QByteArray::number(handles.size()));
    };

    QObject::connect(&endpoint, &IpmbEndpoint::stateChanged, [&](IpmbEndpoint::State s) {
        say("state " + enumName(states, s));
    });
    QObject::connect(&endpoint, &IpmbEndpoint::joined, [&] {
        say("joined controller=" + QByteArray::number(endpoint.isController()) + " pid="
            + QByteArray::number(QCoreApplication::applicationPid()) + " id=" + QByteArray::number(endpoint.endpointId()));
    });
    endpoint.setWatchingPeers(parser.isSet(QStringLiteral("watch-peers")));
    QObject::connect(&endpoint, &IpmbEndpoint::peerJoined, [&](const IpmbPeer &peer) {
        say("peer-joined id=" + QByteArray::number(peer.endpointId()) + " pid=" + QByteArray::number(peer.pid())
            + " label=" + peer.label().toStringList().join(QLatin1Char(',')).toUtf8()
            + " controller=" + QByteArray::number(peer.isController()));
    });
    QObject::connect(&endpoint, &IpmbEndpoint::peerLeft, [&](const IpmbPeer &peer) {
        say("peer-left id=" + QByteArray::number(peer.endpointId()) + " pid=" + QByteArray::number(peer.pid()));
    });
    QObject::connect(&endpoint, &IpmbEndpoint::errorOccurred, [&](IpmbEndpoint::Error e) {
        say("error " + enumName(errors, e) + ' ' + endpoint.errorString().toUtf8());
    });
    QObject::connect(&endpoint, &IpmbEndpoint::messagesDropped, [&](quint64 n) {
        say("dropped " + QByteArray::number(n));
    });

    // Receive threads hand what they take to the main thread through a queue under a mutex, and a
    // pipe that wakes it: not with queued calls, whose hand-over inside libQt6Core
    // ThreadSanitizer cannot see (./dev.sh tsan then reports the message as a race).
    std::atomic<bool> done {false};
    std::vector<std::thread> receivers;
    QMutex handOverMutex;
    std::deque<IpmbMessage> handedOver;
    int handOverPipe[2] = {-1, -1};
    std::unique_ptr<QSocketNotifier> handOverNotifier;
    const auto startReceivers = [&] {
        if (::pipe2(handOverPipe, O_CLOEXEC | O_NONBLOCK) != 0)
            say("error ResourceError pipe2 failed");
        handOverNotifier = std::make_unique<QSocketNotifier>(handOverPipe[0], QSocketNotifier::Read);
        QObject::connect(handOverNotifier.get(), &QSocketNotifier::activated, [&] {
            char drain[256];
            while (::read(handOverPipe[0], drain, sizeof(drain)) > 0) { }
            std::deque<IpmbMessage> batch;
            {
                QMutexLocker locker(&handOverMutex);
                batch.swap(handedOver);
            }
            for (const IpmbMessage &message : batch)
                onMessage(message);
            checkExpect();
        });
        for (int i = 0; i < qMax(1, parser.value(QStringLiteral("receive-threads")).toInt()); ++i) {
            receivers.emplace_back([&] {
                while (!done) {
                    if (std::optional<IpmbMessage> m = endpoint.receive(50)) {
                        if (!counter.take(*m)) {
                            QMutexLocker locker(&handOverMutex);
                            handedOver.push_back(*m);
                        }
                        [[maybe_unused]] ssize_t n = ::write(handOverPipe[1], "m", 1);  // full: a wake-up is due
                    }
                }
            });
        }
    };
    if (!parser.isSet(QStringLiteral("receive-thread"))) {
        QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, [&](const IpmbMessage &m) {
            onMessage(m);
            checkExpect();
        });
    }

    // send(), waiting while the queue is full; false (the error line printed) on any other error.
    auto sendOrWait = [&](const IpmbMessage &message) {
        while (!endpoint.send(message)) {
            if (endpoint.error() != IpmbEndpoint::QueueFullError)
                return false;
            endpoint.waitForBytesWritten(1000);
        }
        return true;
    };

    auto command = [&](const QByteArray &line) {
        const QList<QByteArray> w = line.simplified().split(' ');
        if (w.value(0) == "send" && w.size() >= 6) {
            const IpmbSelector selector = parseSelector(w[1], w[2], w[3].toLongLong());
            QVariant payload;
            if (w[4] == "int") {
                payload = w[5].toInt();
            } else if (w[4] == "gadget") {
                const QList<QByteArray> p = w[5].split(',');
                payload = QVariant::fromValue(TestPoint{p.value(0).toInt(), p.value(1).toInt(), QString::fromUtf8(p.value(2))});
            } else if (w[4] == "bytes") {
                payload = floodPayload(0, w[5].toLongLong());
            } else if (w[4] == "blob") {  // not a flood payload: printed as "bytes:<size>"
                payload = QByteArray(w[5].toLongLong(), 'b');
            } else if (w[4] == "smileys") {  // printed as "smileys:<count>"
                payload = QString(w[5].toLongLong(), Smiley);
            } else if (w[4] == "list") {  // {blob, 7}: printed as "list:<blob size>"
                payload = QVariantList{QByteArray(w[5].toLongLong(), 'l'), 7};
            } else {
                payload = QString::fromUtf8(w[5]);
            }
            if (endpoint.send(selector, payload))
                say("sent 1");
        } else if (w.value(0) == "flood" && w.size() >= 5) {
            const IpmbSelector selector = parseSelector(w[1], w[2], 0);
            const quint64 count = w[3].toULongLong();
            const qsizetype size = w[4].toLongLong();
            const quint64 first = w.value(5, "0").toULongLong();  // goes on from an earlier flood
            for (quint64 i = first; i < first + count; ++i) {
                if (!sendOrWait(IpmbMessage(selector, floodPayload(i, size))))
                    return;
            }
            writeAll(endpoint);
            say("sent " + QByteArray::number(count));
        } else if (w.value(0) == "floodsignal" && w.size() >= 4) {
            // Event-driven: send until QueueFullError, go on when bytesWritten() says so.
            struct Flood
            {
                IpmbSelector selector;
                quint64 count = 0;
                qsizetype size = 0;
                quint64 next = 0;
                int fullQueues = 0;
                QMetaObject::Connection resume;
            };
            auto flood = std::make_shared<Flood>();
            flood->selector = parseSelector("unicast", w[1], 0);
            flood->count = w[2].toULongLong();
            flood->size = w[3].toLongLong();
            auto pump = [&endpoint, flood](qint64 = 0) {
                for (; flood->next < flood->count; ++flood->next) {
                    if (!endpoint.send(flood->selector, floodPayload(flood->next, flood->size))) {
                        if (endpoint.error() != IpmbEndpoint::QueueFullError)
                            return QObject::disconnect(flood->resume), void();
                        if (++flood->fullQueues == 1)
                            say("queuefull");
                        return; // bytesWritten() calls again
                    }
                }
                QObject::disconnect(flood->resume);
                say("sent " + QByteArray::number(flood->count) + " fullqueues=" + QByteArray::number(flood->fullQueues));
            };
            flood->resume = QObject::connect(&endpoint, &IpmbEndpoint::bytesWritten, pump);
            pump();
        } else if (w.value(0) == "sendpipe" && w.size() >= 2) {
            int fds[2];
            if (::pipe2(fds, O_CLOEXEC) != 0)
                return say("error pipe");
            IpmbMessage message(parseSelector("unicast", w[1], 0), QStringLiteral("pipe"));
            message.addHandle(IpmbNativeHandle::adopt(fds[1])); // closed here once it is sent
            const int readEnd = fds[0];
            std::thread([readEnd] {
                QByteArray line;
                char c;
                while (::read(readEnd, &c, 1) == 1 && c != '\n')
                    line.append(c);
                ::close(readEnd);
                say("pipe-read " + line);
            }).detach();
            if (endpoint.send(message))
                say("sent 1");
        } else if (w.value(0) == "sendfds" && w.size() >= 6) {
            const IpmbSelector selector = parseSelector(w[1], w[2], w[3].toLongLong());
            const int n = w[4].toInt();
            const int times = w[5].toInt();
            int sent = 0;
            for (int t = 0; t < times; ++t) {
                IpmbMessage message(selector, QStringLiteral("fds"));
                for (int i = 0; i < n; ++i)
                    message.addHandle(memfdWith("fd-" + QByteArray::number(i)));
                if (!sendOrWait(message))
                    return;
                ++sent;
            }
            writeAll(endpoint);
            say("sent " + QByteArray::number(sent));
        } else if (w.value(0) == "sendregions" && w.size() >= 6) {
            const IpmbSelector selector = parseSelector(w[1], w[2], w[3].toLongLong());
            const int times = w[5].toInt();
            for (int t = 0; t < times; ++t) {
                IpmbMessage message(selector, QStringLiteral("regions"));
                IpmbMemoryRegion region = IpmbMemoryRegion::create(w[4].toLongLong());
                std::memcpy(region.data(), "from-sender", 12);
                message.addRegion(region);
                if (!sendOrWait(message))
                    return;
            }
            writeAll(endpoint);
            say("sent " + QByteArray::number(times));
        } else if (w.value(0) == "fillhandles" && w.size() >= 3) {
            // Sends messages with <n> memfds each until send() refuses one, then lets them drain.
            const IpmbSelector selector = parseSelector("unicast", w[1], 0);
            int sent = 0;
            for (;; ++sent) {
                IpmbMessage message(selector, QStringLiteral("fds"));
                for (int i = 0; i < w[2].toInt(); ++i)
                    message.addHandle(memfdWith("fd-" + QByteArray::number(i)));
                if (!endpoint.send(message))
                    break;
            }
            say("filled sent=" + QByteArray::number(sent) + " error=" + enumName(errors, endpoint.error())
                + " fds=" + QByteArray::number(openDescriptors()) + " reason=" + endpoint.errorString().toUtf8());
            writeAll(endpoint);
            say("sent " + QByteArray::number(sent));
        } else if (w.value(0) == "sendregion" && w.size() >= 5) {
            lastRegion = IpmbMemoryRegion::create(w[4].toLongLong());
            if (lastRegion.isNull())
                return say("error region " + lastRegion.errorString().toUtf8());
            std::memcpy(lastRegion.data(), "from-sender", 12);
            IpmbMessage message(parseSelector(w[1], w[2], w[3].toLongLong()), QStringLiteral("region"));
            message.addRegion(lastRegion);
            if (endpoint.send(message))
                say("sent 1");
        } else if (w.value(0) == "registryflood" && w.size() >= 5) {
            IpmbMemoryRegistry registry;
            const IpmbSelector selector = parseSelector("unicast", w[1], 0);
            const int frames = w[2].toInt();
            const qsizetype size = w[3].toLongLong();
            const int window = w[4].toInt();
            int maxCount = 0;
            qint64 shmemAtTenth = 0;
            qint64 anonAtTenth = 0;
            int countAtTenth = 0;
            auto waitForAcks = [&](int atMost) {
                QDeadlineTimer deadline(30000);
                while (framesInFlight > atMost && !deadline.hasExpired())
                    QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 100);
            };
            for (int i = 0; i < frames; ++i) {
                waitForAcks(window - 1);
                IpmbMemoryRegion region = registry.alloc(size);
                auto *bytes = static_cast<char *>(region.data());
                for (qsizetype page = 0; page < region.size(); page += 4096)
                    bytes[page] = char(i); // touch every page, as a real frame would
                const QByteArray text = QByteArray::number(i);
                std::memcpy(bytes, text.constData(), size_t(text.size()) + 1);
                IpmbMessage message(selector, QStringLiteral("frame:%1").arg(i));
                message.addRegion(region);
                if (!endpoint.send(message))
                    return;
                ++framesInFlight;
                maxCount = qMax(maxCount, registry.count());
                if (i == frames / 10) {
                    shmemAtTenth = residentKiB("RssShmem");
                    anonAtTenth = residentKiB("RssAnon");
                    countAtTenth = registry.count();
                }
            }
            waitForAcks(0);
            say("registry frames=" + QByteArray::number(frames) + " bad=" + QByteArray::number(badFrames)
                + " maxcount=" + QByteArray::number(maxCount) + " count=" + QByteArray::number(registry.count())
                + " countattenth=" + QByteArray::number(countAtTenth)
                + " shmemgrowth=" + QByteArray::number(residentKiB("RssShmem") - shmemAtTenth)
                + " anongrowth=" + QByteArray::number(residentKiB("RssAnon") - anonAtTenth));
        } else if (w.value(0) == "resetframes") {
            say("frames-reset inflight=" + QByteArray::number(framesInFlight) + " bad=" + QByteArray::number(badFrames));
            framesInFlight = 0;
            badFrames = 0;
        } else if (w.value(0) == "sendqshm" && w.size() >= 3) {
            auto segment = std::make_unique<QSharedMemory>(QUuid::createUuid().toString(QUuid::WithoutBraces));
            if (!segment->create(4096))
                return say("error qshm " + segment->errorString().toUtf8());
            segment->lock();
            std::memcpy(segment->data(), w[2].constData(), size_t(w[2].size()) + 1);
            segment->unlock();
            const QVariantMap payload {{QStringLiteral("qsharedmemory"), segment->nativeKey()}};
            segments.push_back(std::move(segment)); // alive until this peer exits
            if (endpoint.send(parseSelector("unicast", w[1], 0), payload))
                say("sent 1");
        } else if (w.value(0) == "regioninfo") {
            say("regioninfo refs=" + QByteArray::number(lastRegion.refCount()) + " text="
                + QByteArray(static_cast<const char *>(lastRegion.constData())));
        } else if (w.value(0) == "waitreleased" && w.size() >= 2) {
            say("released ok=" + QByteArray::number(lastRegion.waitForReleased(w[1].toInt())));
        } else if (w.value(0) == "drop") {
            held.clear();
            say("dropped-held");
        } else if (w.value(0) == "mappings") {
            const IpmbMemoryRegionPrivate::MappingStats stats = IpmbMemoryRegionPrivate::mappingStats();
            say("mappings mapped=" + QByteArray::number(stats.mapped) + " reused=" + QByteArray::number(stats.reused)
                + " cached=" + QByteArray::number(stats.cached) + " inmaps=" + QByteArray::number(regionMappings()));
        } else if (w.value(0) == "address") {
            QByteArray address;
            IpmbErrorInfo error;
            say(IpmbPlatform::busAddress(endpoint.identifier(), &address, &error) ? "address " + address
                                                                                  : "error " + error.message.toUtf8());
        } else if (w.value(0) == "fdcount") {
            say("fdcount " + QByteArray::number(openDescriptors()));
        } else if (w.value(0) == "expect" && w.size() >= 2) {
            expected = w[1].toULongLong();
            expecting = true;
            checkExpect();
        } else if (w.value(0) == "keeppayloads") {
            counter.keepPayloads();
            say("keeping");
        } else if (w.value(0) == "verifykept") {
            say(counter.verifyKept());
        } else if (w.value(0) == "peers") {
            QList<quint32> ids;
            for (const IpmbPeer &peer : endpoint.peers())
                ids.append(peer.endpointId());
            std::sort(ids.begin(), ids.end());
            QByteArrayList text;
            for (const quint32 id : ids)
                text.append(QByteArray::number(id));
            say("peers n=" + QByteArray::number(ids.size()) + " ids=" + text.join(','));
        } else if (w.value(0) == "watch" && w.size() == 2) {
            endpoint.setWatchingPeers(w[1] == "1");
        } else if (w.value(0) == "count") {
            say(counter.report(endpoint.droppedMessageCount()));
        } else if (w.value(0) == "leave") {
            endpoint.leave();
        } else if (w.value(0) == "rejoin" && w.size() == 2) {
            endpoint.leave();
            endpoint.setLabel(IpmbLabel(QString::fromUtf8(w[1]).split(QLatin1Char(','), Qt::SkipEmptyParts)));
            endpoint.join();  // "joined ..." again, with a new id
        } else if (w.value(0) == "quit") {
            if (endpoint.state() == IpmbEndpoint::JoiningState)
                endpoint.waitForJoined(10000);  // what was sent while joining goes out first
            endpoint.leave();
            QCoreApplication::quit();
        }
    };

    // stdin is watched by the event loop: commands run in the order they arrive, and nothing
    // outlives the application.
    IpmbTest::readCommands(&app, command);

    endpoint.join();
    // Only now: receive() on an endpoint that is not joining returns at once (DisconnectedError).
    if (parser.isSet(QStringLiteral("receive-thread")))
        startReceivers();
    const int result = app.exec();
    done = true;
    for (std::thread &receiver : receivers)
        receiver.join();
    return result;
}
