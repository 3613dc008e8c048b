// SPDX-License-Identifier: BSD-3-Clause
// IpmbMemoryRegion on its own: creation, mappings, views, the reference count, handles that are not
// regions, and the lock, in one process and across processes (helper ipmbqt_test_region, which
// inherits the region's descriptor; passing regions over the bus is tested with the bus).
// Crafting foreign and broken shared-memory objects needs Linux calls, as does the library.

#include "ipmbmemoryregion_p.h"
#include "ipmbpayloadregionpool_p.h"
#include "ipmbtestutil.h"
#include "ipmbtestvalue.h"

#include <IpmbQt/IpmbMemoryRegion>

#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qprocess.h>
#include <QtCore/qregularexpression.h>
#include <QtCore/qtemporaryfile.h>
#include <QtCore/qvariant.h>
#include <QtTest/qtest.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>
#include <thread>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

using IpmbTest::PeerOutput;

constexpr qsizetype HeaderSize = IpmbMemoryRegionHeader::Size;

// The whole shared-memory object behind a region, header included, read with pread().
static QByteArray imageOf(const IpmbMemoryRegion &region)
{
    QByteArray bytes(HeaderSize + region.size(), Qt::Uninitialized);
    const ssize_t n = ::pread(int(region.nativeHandle().handle()), bytes.data(), size_t(bytes.size()), 0);
    return n == bytes.size() ? bytes : QByteArray();
}

// A memfd holding `bytes`, optionally truncated to `size` afterwards and sealed against shrinking.
static IpmbNativeHandle memfdWith(const QByteArray &bytes, qint64 size = -1, bool seal = true)
{
    const int fd = ::memfd_create("tst_ipmbmemoryregion", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return {};
    IpmbNativeHandle handle = IpmbNativeHandle::adopt(fd);
    if (!bytes.isEmpty() && ::pwrite(fd, bytes.constData(), size_t(bytes.size()), 0) != bytes.size())
        return {};
    if (size >= 0 && ::ftruncate(fd, off_t(size)) != 0)
        return {};
    if (seal && ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) != 0)
        return {};
    return handle;
}

static QByteArray validImage(qsizetype userSize)
{
    const IpmbMemoryRegion region = IpmbMemoryRegion::create(userSize);
    return region.isNull() ? QByteArray() : imageOf(region);
}

static bool allZero(const void *data, qsizetype size)
{
    const uchar *bytes = static_cast<const uchar *>(data);
    for (qsizetype i = 0; i < size; ++i) {
        if (bytes[i])
            return false;
    }
    return true;
}

class tst_IpmbMemoryRegion : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void nullRegion();
    void create_data();
    void create();
    void createFails_data();
    void createFails();
    void valueSemantics();
    void secondMapping();
    void sealedAgainstShrinking();
    void views_data();
    void views();
    void viewKeepsRegion();
    void viewOutOfRange_data();
    void viewOutOfRange();
    void refCount();
    void adoptAndAddReferences();
    void mappingReuse();
    void waitForReleased();
    void payloadRegionPool();
    void payloadRegionPoolWaits();
    void mappingCacheLimit();
    void notARegion_data();
    void notARegion();
    void lockUnlock();
    void errorBelongsToTheCopy();
    void destroyedWhileLocked();

    // Across processes.
    void crossProcessWrites();
    void crossProcessRefCount();
    void lockBlocksOtherProcess();
    void lockedIncrements_data();
    void lockedIncrements();
    void holderKilledWhileLocked();

private:
    // Starts the helper with the region's descriptor: it stays close-on-exec here, and is made
    // inheritable only in the child, between fork and exec, so no other child ever gets it.
    static void startHelper(QProcess *process, const IpmbMemoryRegion &region, const QStringList &arguments);
    static bool finish(QProcess *process);
};

void tst_IpmbMemoryRegion::startHelper(QProcess *process, const IpmbMemoryRegion &region,
                                       const QStringList &arguments)
{
    const int fd = int(region.nativeHandle().handle());
    process->setChildProcessModifier([fd] { ::fcntl(fd, F_SETFD, 0); });
    process->setProcessChannelMode(QProcess::ForwardedErrorChannel);
    QStringList all = arguments;
    all.insert(1, QString::number(fd));
    process->start(QStringLiteral(IPMBQT_REGION_HELPER), all);
}

bool tst_IpmbMemoryRegion::finish(QProcess *process)
{
    // waitForFinished() returns false for a process that has already finished.
    if (process->state() != QProcess::NotRunning && !process->waitForFinished(30000)) {
        qWarning("helper did not finish");
        return false;
    }
    if (process->exitStatus() != QProcess::NormalExit || process->exitCode() != 0) {
        qWarning("helper exited with status %d, code %d", int(process->exitStatus()), process->exitCode());
        return false;
    }
    return true;
}

void tst_IpmbMemoryRegion::nullRegion()
{
    IpmbMemoryRegion region;
    QVERIFY(region.isNull());
    QCOMPARE(region.size(), 0);
    QCOMPARE(region.data(), nullptr);
    QCOMPARE(region.constData(), nullptr);
    QCOMPARE(region.refCount(), 0);
    QCOMPARE(region.id(), 0u);
    QVERIFY(region.nativeHandle().isNull());
    QCOMPARE(region.error(), IpmbMemoryRegion::NoError);
    QVERIFY(region.errorString().isEmpty());
    QCOMPARE(region, IpmbMemoryRegion());

    const IpmbMemoryRegion view = region.map(0, 1);
    QVERIFY(view.isNull());
    QCOMPARE(view.error(), IpmbMemoryRegion::InvalidHandleError);

    QVERIFY(!region.lock());
    QCOMPARE(region.error(), IpmbMemoryRegion::LockError);
    QVERIFY(!region.unlock());
    QCOMPARE(region.error(), IpmbMemoryRegion::LockError);
}

void tst_IpmbMemoryRegion::create_data()
{
    QTest::addColumn<qsizetype>("size");
    QTest::addRow("1 byte") << qsizetype(1);
    QTest::addRow("100 bytes") << qsizetype(100);
    QTest::addRow("one page") << qsizetype(4096);
    QTest::addRow("one page + 1") << qsizetype(4097);
    QTest::addRow("1 MiB") << qsizetype(1) * 1024 * 1024;
    QTest::addRow("16 MiB") << qsizetype(16) * 1024 * 1024;
}

void tst_IpmbMemoryRegion::create()
{
    QFETCH(qsizetype, size);
    IpmbMemoryRegion region = IpmbMemoryRegion::create(size);
    QVERIFY2(!region.isNull(), qPrintable(region.errorString()));
    QCOMPARE(region.error(), IpmbMemoryRegion::NoError);
    QVERIFY(region.errorString().isEmpty());
    QCOMPARE(region.size(), size);
    QVERIFY(region.data());
    QCOMPARE(region.constData(), region.data());
    QCOMPARE(quintptr(region.data()) % 4096, 0u);
    QVERIFY(allZero(region.constData(), size));
    QCOMPARE(region.refCount(), 1);
    QVERIFY(region.id() != 0);
    QVERIFY(!region.nativeHandle().isNull());

    // The first and last byte are writable.
    static_cast<char *>(region.data())[0] = 'a';
    static_cast<char *>(region.data())[size - 1] = 'z';
    QCOMPARE(static_cast<const char *>(region.constData())[size - 1], 'z');

    // The header, as doc/memory.md describes it.
    const QByteArray image = imageOf(region);
    QCOMPARE(image.size(), HeaderSize + size);
    QCOMPARE(image.left(4), QByteArray("IPMR"));
    quint32 version;
    quint64 userSize;
    qint32 refs;
    std::memcpy(&version, image.constData() + 4, 4);
    std::memcpy(&userSize, image.constData() + 8, 8);
    std::memcpy(&refs, image.constData() + 16, 4);
    QCOMPARE(version, 1u);
    QCOMPARE(userSize, quint64(size));
    QCOMPARE(refs, 1);
    QCOMPARE(image.at(HeaderSize), size == 1 ? 'z' : 'a');
    QCOMPARE(image.at(HeaderSize + size - 1), 'z');
}

void tst_IpmbMemoryRegion::createFails_data()
{
    QTest::addColumn<qsizetype>("size");
    QTest::addColumn<IpmbMemoryRegion::Error>("error");
    QTest::addRow("zero") << qsizetype(0) << IpmbMemoryRegion::OutOfRangeError;
    QTest::addRow("negative") << qsizetype(-1) << IpmbMemoryRegion::OutOfRangeError;
    QTest::addRow("maximum") << std::numeric_limits<qsizetype>::max() << IpmbMemoryRegion::OutOfRangeError;
    QTest::addRow("1 PiB") << (qsizetype(1) << 50) << IpmbMemoryRegion::ResourceError;
}

void tst_IpmbMemoryRegion::createFails()
{
    QFETCH(qsizetype, size);
    QFETCH(IpmbMemoryRegion::Error, error);
    const IpmbMemoryRegion region = IpmbMemoryRegion::create(size);
    QVERIFY(region.isNull());
    QCOMPARE(region.error(), error);
    QVERIFY(!region.errorString().isEmpty());
    QCOMPARE(region.size(), 0);
    QCOMPARE(region.data(), nullptr);
    QCOMPARE(region.refCount(), 0);
    QVERIFY(region.nativeHandle().isNull());
    qDebug() << region;
}

void tst_IpmbMemoryRegion::valueSemantics()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(100);
    QVERIFY(!region.isNull());
    void *data = region.data();

    IpmbMemoryRegion other = IpmbMemoryRegion::create(100);
    QVERIFY(!other.isNull());
    IpmbTest::checkValueSemantics(region, other);
    IPMBTEST_RETURN_IF_FAILED();

    // Explicitly shared: copies, moves and QVariants hold the same mapping, not another one, and
    // share the one reference.
    IpmbMemoryRegion copy = region;
    QCOMPARE(copy.data(), data);
    QCOMPARE(region.refCount(), 1);
    IpmbMemoryRegion moved = std::move(copy);
    QCOMPARE(moved.data(), data);
    other.swap(moved);
    QCOMPARE(other.data(), data);
    QVERIFY(moved.id() != region.id());
    QCOMPARE(QVariant::fromValue(region).value<IpmbMemoryRegion>().data(), data);

    QString text;
    QDebug(&text) << region;
    QVERIFY2(text.startsWith(QStringLiteral("IpmbMemoryRegion(id=")), qPrintable(text));

    // The mapping lives as long as any copy.
    region = IpmbMemoryRegion();
    std::memset(other.data(), 0x5a, 100);
    QCOMPARE(static_cast<const uchar *>(other.constData())[99], uchar(0x5a));
}

void tst_IpmbMemoryRegion::secondMapping()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(3 * 4096);
    QVERIFY(!region.isNull());
    const IpmbNativeHandle duplicate = IpmbNativeHandle::duplicate(region.nativeHandle().handle());
    QVERIFY(!duplicate.isNull());
    QVERIFY(duplicate != region.nativeHandle());

    IpmbMemoryRegion second = IpmbMemoryRegion::fromHandle(duplicate);
    QVERIFY2(!second.isNull(), qPrintable(second.errorString()));
    QCOMPARE(second.size(), region.size());
    QCOMPARE(second.id(), region.id());
    QCOMPARE(second.nativeHandle(), duplicate);
    QVERIFY(second.data() != region.data());  // another mapping of the same memory...
    QCOMPARE(second, region);                  // ...which compares equal
    QCOMPARE(qHash(second), qHash(region));

    std::strcpy(static_cast<char *>(region.data()) + 5000, "through the first");
    QCOMPARE(static_cast<const char *>(second.constData()) + 5000, "through the first");
    std::strcpy(static_cast<char *>(second.data()) + 3 * 4096 - 20, "through the second");
    QCOMPARE(static_cast<const char *>(region.constData()) + 3 * 4096 - 20, "through the second");
}

void tst_IpmbMemoryRegion::sealedAgainstShrinking()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(8192);
    const int fd = int(region.nativeHandle().handle());
    QCOMPARE(::ftruncate(fd, 4096), -1);
    QCOMPARE(errno, EPERM);
    // Nobody can add seals either (F_SEAL_FUTURE_WRITE would keep receivers from mapping it).
    QCOMPARE(::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
    static_cast<char *>(region.data())[8191] = 1;
}

void tst_IpmbMemoryRegion::views_data()
{
    QTest::addColumn<qsizetype>("offset");
    QTest::addColumn<qsizetype>("length");
    constexpr qsizetype Size = 5 * 4096;
    QTest::addRow("first byte") << qsizetype(0) << qsizetype(1);
    QTest::addRow("across a page boundary") << qsizetype(4095) << qsizetype(2);
    QTest::addRow("second page") << qsizetype(4096) << qsizetype(4096);
    QTest::addRow("unaligned to the end") << qsizetype(100) << Size - 100;
    QTest::addRow("last byte") << Size - 1 << qsizetype(1);
    QTest::addRow("everything") << qsizetype(0) << Size;
}

void tst_IpmbMemoryRegion::views()
{
    QFETCH(qsizetype, offset);
    QFETCH(qsizetype, length);
    IpmbMemoryRegion region = IpmbMemoryRegion::create(5 * 4096);
    uchar *bytes = static_cast<uchar *>(region.data());
    for (qsizetype i = 0; i < region.size(); ++i)
        bytes[i] = uchar(i * 7);

    IpmbMemoryRegion view = region.map(offset, length);
    QVERIFY2(!view.isNull(), qPrintable(view.errorString()));
    QCOMPARE(view.error(), IpmbMemoryRegion::NoError);
    QCOMPARE(view.size(), length);
    QCOMPARE(view.id(), region.id());
    QCOMPARE(view.nativeHandle(), region.nativeHandle());
    QCOMPARE(view.refCount(), 1);  // the view shares the region's reference
    QCOMPARE(region.refCount(), 1);
    QVERIFY(view.data() != bytes + offset);  // a mapping of its own
    QCOMPARE(std::memcmp(view.constData(), bytes + offset, size_t(length)), 0);
    QCOMPARE(view == region, offset == 0 && length == region.size());

    // Writes go both ways.
    uchar *viewBytes = static_cast<uchar *>(view.data());
    viewBytes[length - 1] = 0xdd;
    QCOMPARE(bytes[offset + length - 1], uchar(0xdd));
    viewBytes[0] = 0xee;
    QCOMPARE(bytes[offset], uchar(0xee));
    bytes[offset] = 0x11;
    QCOMPARE(viewBytes[0], uchar(0x11));

    // A view of a view is relative to it.
    const IpmbMemoryRegion inner = view.map(length - 1, 1);
    QVERIFY2(!inner.isNull(), qPrintable(inner.errorString()));
    QCOMPARE(*static_cast<const uchar *>(inner.constData()), length == 1 ? uchar(0x11) : uchar(0xdd));
    QCOMPARE(inner, region.map(offset + length - 1, 1));
    QVERIFY(inner != region.map(offset, 1) || length == 1);
}

void tst_IpmbMemoryRegion::viewKeepsRegion()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(2 * 4096);
    IpmbMemoryRegion observer = IpmbMemoryRegion::fromHandle(IpmbNativeHandle::duplicate(region.nativeHandle().handle()));
    QCOMPARE(observer.refCount(), 2);

    IpmbMemoryRegion view = region.map(4096, 4096);
    QVERIFY(!view.isNull());
    region = IpmbMemoryRegion();
    QCOMPARE(observer.refCount(), 2);  // the view still holds the region's reference
    static_cast<char *>(view.data())[10] = 'v';
    QCOMPARE(static_cast<const char *>(observer.constData())[4096 + 10], 'v');
    QCOMPARE(view.refCount(), 2);

    view = IpmbMemoryRegion();
    QCOMPARE(observer.refCount(), 1);
}

void tst_IpmbMemoryRegion::viewOutOfRange_data()
{
    QTest::addColumn<qsizetype>("offset");
    QTest::addColumn<qsizetype>("length");
    constexpr qsizetype Size = 3 * 4096;
    constexpr qsizetype Max = std::numeric_limits<qsizetype>::max();
    QTest::addRow("negative offset") << qsizetype(-1) << qsizetype(1);
    QTest::addRow("zero length") << qsizetype(0) << qsizetype(0);
    QTest::addRow("negative length") << qsizetype(0) << qsizetype(-1);
    QTest::addRow("offset at the end") << Size << qsizetype(1);
    QTest::addRow("one byte too long") << Size - 1 << qsizetype(2);
    QTest::addRow("all but shifted") << qsizetype(1) << Size;
    QTest::addRow("overflowing") << Max << Max;
    QTest::addRow("huge length") << qsizetype(4096) << Max;
}

void tst_IpmbMemoryRegion::viewOutOfRange()
{
    QFETCH(qsizetype, offset);
    QFETCH(qsizetype, length);
    IpmbMemoryRegion region = IpmbMemoryRegion::create(3 * 4096);
    const IpmbMemoryRegion view = region.map(offset, length);
    QVERIFY(view.isNull());
    QCOMPARE(view.error(), IpmbMemoryRegion::OutOfRangeError);
    QVERIFY(view.errorString().contains(QStringLiteral("offset")));
    QCOMPARE(region.error(), IpmbMemoryRegion::NoError);  // the region itself is fine
    QCOMPARE(region.refCount(), 1);
}

void tst_IpmbMemoryRegion::refCount()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(64);
    QCOMPARE(region.refCount(), 1);
    const qintptr fd = region.nativeHandle().handle();
    {
        const IpmbMemoryRegion first = IpmbMemoryRegion::fromHandle(IpmbNativeHandle::duplicate(fd));
        QCOMPARE(region.refCount(), 2);
        QCOMPARE(first.refCount(), 2);
        {
            const IpmbMemoryRegion second = IpmbMemoryRegion::fromHandle(IpmbNativeHandle::duplicate(fd));
            const IpmbMemoryRegion copyOfSecond = second;
            QCOMPARE(region.refCount(), 3);
        }
        QCOMPARE(region.refCount(), 2);
    }
    QCOMPARE(region.refCount(), 1);

    // Mapping the creator's own handle again is another holder too.
    const IpmbMemoryRegion again = IpmbMemoryRegion::fromHandle(region.nativeHandle());
    QCOMPARE(region.refCount(), 2);
}

void tst_IpmbMemoryRegion::adoptAndAddReferences()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(64);
    const IpmbNativeHandle handle = region.nativeHandle();

    // What a sender does before sending, and the receiver then: the reference is already counted.
    QVERIFY(IpmbMemoryRegionPrivate::addReferences(handle, 1));
    QCOMPARE(region.refCount(), 2);
    {
        const IpmbMemoryRegion received =
                IpmbMemoryRegionPrivate::adoptReceived(IpmbNativeHandle::duplicate(handle.handle()));
        QVERIFY2(!received.isNull(), qPrintable(received.errorString()));
        QCOMPARE(region.refCount(), 2);
    }
    QCOMPARE(region.refCount(), 1);

    {
        const IpmbMemoryRegion taken =
                IpmbMemoryRegion::fromHandle(IpmbNativeHandle::duplicate(handle.handle()));
        QCOMPARE(region.refCount(), 2);
    }
    QCOMPARE(region.refCount(), 1);

    // Multicast to three, and the controller dropping one of them.
    QVERIFY(IpmbMemoryRegionPrivate::addReferences(handle, 3));
    QCOMPARE(region.refCount(), 4);
    QVERIFY(IpmbMemoryRegionPrivate::addReferences(handle, -1));
    QCOMPARE(region.refCount(), 3);
    QVERIFY(IpmbMemoryRegionPrivate::addReferences(handle, 0));
    QCOMPARE(region.refCount(), 3);
    QVERIFY(IpmbMemoryRegionPrivate::addReferences(handle, -2));
    QCOMPARE(region.refCount(), 1);

    int fds[2];
    QCOMPARE(::pipe2(fds, O_CLOEXEC), 0);
    const IpmbNativeHandle readEnd = IpmbNativeHandle::adopt(fds[0]);
    const IpmbNativeHandle writeEnd = IpmbNativeHandle::adopt(fds[1]);
    IpmbErrorInfo error;
    QVERIFY(!IpmbMemoryRegionPrivate::addReferences(readEnd, 1, &error));
    QVERIFY(error.code == IpmbErrorCode::InvalidHandle);
    QVERIFY(error.message.contains(QStringLiteral("pipe")));
    QVERIFY(!IpmbMemoryRegionPrivate::addReferences(IpmbNativeHandle(), 1));
    QVERIFY(IpmbMemoryRegionPrivate::adoptReceived(readEnd).isNull());
}

// A region made elsewhere (not in this process's mapping cache), with this process as its only
// holder: what a receiver sees of a producer's region.
static IpmbMemoryRegion foreignRegion(qsizetype size)
{
    IpmbMemoryRegion region = IpmbMemoryRegion::fromHandle(memfdWith(validImage(size)));
    // The image carries its creator's count of 1 and fromHandle() added ours: keep ours only.
    IpmbMemoryRegionPrivate::addReferences(region, -1);
    return region;
}

// What the sender, the controller and the receiving endpoint do with a region in flight; returns
// the received region and, in *descriptor, the descriptor that came with it.
static IpmbMemoryRegion deliver(const IpmbMemoryRegion &region, int *descriptor)
{
    const IpmbNativeHandle inFlight = IpmbNativeHandle::duplicate(region.nativeHandle().handle());
    *descriptor = int(inFlight.handle());
    IpmbMemoryRegionPrivate::addReferences(region, +1);
    return IpmbMemoryRegionPrivate::adoptReceived(inFlight);
}

static bool isOpen(int descriptor)
{
    return ::fcntl(descriptor, F_GETFD) != -1;
}

// doc/memory.md, "Mapping reuse": a region is mapped once per process, whatever the messages.
void tst_IpmbMemoryRegion::mappingReuse()
{
    const auto mappingStats = &IpmbMemoryRegionPrivate::mappingStats;
    IpmbMemoryRegion producer = foreignRegion(8192);
    QVERIFY2(!producer.isNull(), qPrintable(producer.errorString()));
    QCOMPARE(producer.refCount(), 1);
    const auto before = mappingStats();

    int descriptor = -1;
    IpmbMemoryRegion first = deliver(producer, &descriptor);
    QVERIFY2(!first.isNull(), qPrintable(first.errorString()));
    QCOMPARE(mappingStats().mapped, before.mapped + 1);
    QCOMPARE(first.nativeHandle().handle(), descriptor);   // kept: it is the mapping's now
    QCOMPARE(producer.refCount(), 2);
    std::memcpy(first.data(), "frame-1", 8);
    QCOMPARE(static_cast<const char *>(producer.constData()), "frame-1");
    const void *address = first.constData();
    const IpmbNativeHandle cachedHandle = first.nativeHandle();

    // Dropped: the reference goes, the mapping stays (idle).
    first = IpmbMemoryRegion();
    QCOMPARE(producer.refCount(), 1);
    QCOMPARE(mappingStats().cached, before.cached + 1);
    QCOMPARE(mappingStats().idle, before.idle + 1);

    // The same region again, twice at once: the same mapping; the descriptors that came with the
    // messages are closed at once; one reference each.
    IpmbMemoryRegion second = deliver(producer, &descriptor);
    QVERIFY(!isOpen(descriptor));
    IpmbMemoryRegion third = deliver(producer, &descriptor);
    QVERIFY(!isOpen(descriptor));
    QCOMPARE(second.constData(), address);
    QCOMPARE(third.constData(), address);
    QCOMPARE(second.nativeHandle(), cachedHandle);
    QCOMPARE(static_cast<const char *>(third.constData()), "frame-1");
    QCOMPARE(mappingStats().mapped, before.mapped + 1);
    QCOMPARE(mappingStats().reused, before.reused + 2);
    QCOMPARE(mappingStats().idle, before.idle);
    QCOMPARE(producer.refCount(), 3);
    second = IpmbMemoryRegion();
    third = IpmbMemoryRegion();
    QCOMPARE(producer.refCount(), 1);

    // Freed by its last holder: the idle mapping goes with it, and its descriptor is closed.
    const int cachedDescriptor = int(cachedHandle.handle());
    producer = IpmbMemoryRegion();
    QCOMPARE(mappingStats().cached, before.cached);
    QVERIFY(isOpen(cachedDescriptor));    // our copy of the handle still holds it
}

// The waiter count in the header (offset 20), read as another process would.
static quint32 waitersOf(const IpmbNativeHandle &handle)
{
    quint32 waiters = 0;
    const ssize_t n = ::pread(int(handle.handle()), &waiters, sizeof(waiters), 20);
    return n == sizeof(waiters) ? waiters : ~0u;
}

static quint32 waitersOf(const IpmbMemoryRegion &region)
{
    return waitersOf(region.nativeHandle());
}

void tst_IpmbMemoryRegion::waitForReleased()
{
    QVERIFY(!IpmbMemoryRegion().waitForReleased(0));
    const IpmbMemoryRegion region = IpmbMemoryRegion::create(4096);
    QVERIFY(region.waitForReleased(0));                  // the creator is the only holder
    IpmbMemoryRegion other = IpmbMemoryRegion::fromHandle(region.nativeHandle());
    QCOMPARE(region.refCount(), 2);
    QVERIFY(!region.waitForReleased(50));                // held: times out
    QCOMPARE(waitersOf(region), 0u);

    // Released by another thread while this one sleeps in the wait.
    std::thread holder([&] {
        for (QDeadlineTimer deadline(10000); waitersOf(region) != 1 && !deadline.hasExpired();)
            std::this_thread::yield();
        other = IpmbMemoryRegion();
    });
    QVERIFY(region.waitForReleased(10000));
    holder.join();
    QCOMPARE(region.refCount(), 1);
    QCOMPARE(waitersOf(region), 0u);
}

// The pool behind large payloads (doc/memory.md, "Large payloads").
void tst_IpmbMemoryRegion::payloadRegionPool()
{
    constexpr qint64 Second = 1000 * 1000 * 1000;
    IpmbPayloadRegionPool pool;
    IpmbMemoryRegion first = pool.alloc(100 * 1024, 0);
    QVERIFY(!first.isNull());
    QCOMPARE(first.size(), 128 * 1024);                  // 64 KiB granules
    const void *firstData = first.constData();
    const IpmbNativeHandle firstHandle = first.nativeHandle();
    // In flight: the sender added a reference for its receiver, so it is busy.
    IpmbMemoryRegionPrivate::addReferences(first, +1);
    first = IpmbMemoryRegion();
    IpmbMemoryRegion second = pool.alloc(100 * 1024, Second);
    QVERIFY(second.constData() != firstData);            // not the busy one
    QCOMPARE(pool.count(), 2);
    second = IpmbMemoryRegion();
    QCOMPARE(pool.alloc(70 * 1024, 2 * Second).size(), 128 * 1024);  // the free one, reused
    QCOMPARE(pool.count(), 2);
    // Too small for the free 128 KiB one: a new region, which replaces that free one.
    QCOMPARE(pool.alloc(20 * 1024, 3 * Second).size(), 64 * 1024);
    QCOMPARE(pool.count(), 2);

    // 10 s later the free ones are gone and the busy one is set aside: not reused any more (its
    // reference was lost, or it would be back), and let go of once it is free after all.
    pool.expire(14 * Second);
    QCOMPARE(pool.count(), 0);
    QCOMPARE(pool.setAsideCount(), 1);
    QVERIFY(pool.alloc(100 * 1024, 15 * Second).constData() != firstData);
    QVERIFY(IpmbMemoryRegionPrivate::addReferences(firstHandle, -1));  // the receiver, at last
    pool.expire(16 * Second);
    QCOMPARE(pool.setAsideCount(), 0);
}

// A full pool whose regions are all in flight waits, when asked to, for the one handed out
// longest ago, but not for one handed out so long ago that it has probably lost its reference.
void tst_IpmbMemoryRegion::payloadRegionPoolWaits()
{
    IpmbPayloadRegionPool pool;
    QList<IpmbNativeHandle> inFlight;
    QList<quint64> ids;
    for (int i = 0; i < IpmbLimits::PayloadRegionsMax; ++i) {
        const IpmbMemoryRegion region = pool.alloc(20 * 1024, i + 1);
        QVERIFY(!region.isNull());
        IpmbMemoryRegionPrivate::addReferences(region, +1);  // sent
        inFlight.append(region.nativeHandle());
        ids.append(region.id());
    }
    QVERIFY(pool.alloc(20 * 1024, 100).isNull());           // full, and not asked to wait

    // The oldest comes back while alloc() waits for it.
    std::thread receiver([&] {
        for (QDeadlineTimer deadline(10000); waitersOf(inFlight.first()) != 1 && !deadline.hasExpired();)
            std::this_thread::yield();
        IpmbMemoryRegionPrivate::addReferences(inFlight.first(), -1);
    });
    IpmbMemoryRegion reused = pool.alloc(20 * 1024, 200, 10000);
    receiver.join();
    QVERIFY(!reused.isNull());
    QCOMPARE(reused.id(), ids.first());
    QCOMPARE(pool.count(), IpmbLimits::PayloadRegionsMax);

    // Nothing comes back: a null region after the wait.
    QVERIFY(pool.alloc(20 * 1024, 300, 1).isNull());
    // Handed out long ago, all of them: no wait at all (they would cost every send() the wait).
    QElapsedTimer timer;
    timer.start();
    QVERIFY(pool.alloc(20 * 1024, 300 + IpmbLimits::PayloadRegionWaitAgeNsecs, 10000).isNull());
    QVERIFY2(timer.elapsed() < 5000, QByteArray::number(timer.elapsed()));
}

// Idle mappings are bounded; the least recently used go first, mappings in use never.
void tst_IpmbMemoryRegion::mappingCacheLimit()
{
    const auto mappingStats = &IpmbMemoryRegionPrivate::mappingStats;
    const int idleBefore = mappingStats().idle;
    std::vector<IpmbMemoryRegion> producers;
    int descriptor;
    IpmbMemoryRegion kept;
    constexpr int MaxIdle = 128;
    for (int i = 0; i < MaxIdle + 8; ++i) {
        producers.push_back(foreignRegion(4096));
        const IpmbMemoryRegion received = deliver(producers.back(), &descriptor);
        QVERIFY(!received.isNull());
        if (i == 0)
            kept = received;   // in use all along
    }
    // Enforced whenever the cache looks (the last region dropped after the last look).
    IpmbMemoryRegionPrivate::sweepMappings();
    QVERIFY2(mappingStats().idle <= MaxIdle, QByteArray::number(mappingStats().idle));
    QVERIFY(mappingStats().idle >= MaxIdle - idleBefore);
    const auto stats = mappingStats();
    // The newest idle one is still there; the region in use too.
    (void)deliver(producers.back(), &descriptor);
    QCOMPARE(mappingStats().mapped, stats.mapped);
    (void)deliver(producers.front(), &descriptor);
    QCOMPARE(mappingStats().mapped, stats.mapped);
    // The oldest idle one (the second) was dropped and maps afresh.
    (void)deliver(producers.at(1), &descriptor);
    QCOMPARE(mappingStats().mapped, stats.mapped + 1);
}

// Handles that are not regions: each is refused before anything is mapped, with a reason.
void tst_IpmbMemoryRegion::notARegion_data()
{
    QTest::addColumn<QString>("kind");
    QTest::addColumn<QString>("reason");
    QTest::addRow("null handle") << QStringLiteral("null") << QStringLiteral("null");
    QTest::addRow("bad descriptor") << QStringLiteral("bad") << QStringLiteral("fstat");
    QTest::addRow("pipe") << QStringLiteral("pipe") << QStringLiteral("pipe");
    QTest::addRow("socket") << QStringLiteral("socket") << QStringLiteral("socket");
    QTest::addRow("directory") << QStringLiteral("directory") << QStringLiteral("directory");
    QTest::addRow("/dev/null") << QStringLiteral("device") << QStringLiteral("device");
    QTest::addRow("regular file holding a region") << QStringLiteral("file") << QStringLiteral("sealed");
    QTest::addRow("unsealed memfd holding a region") << QStringLiteral("unsealed") << QStringLiteral("sealed");
    QTest::addRow("unsealed truncated memfd") << QStringLiteral("unsealed truncated") << QStringLiteral("sealed");
    QTest::addRow("empty memfd") << QStringLiteral("empty") << QStringLiteral("header");
    QTest::addRow("half a header") << QStringLiteral("half header") << QStringLiteral("header");
    QTest::addRow("zero-filled memfd") << QStringLiteral("zeros") << QStringLiteral("magic");
    QTest::addRow("header version 2") << QStringLiteral("version") << QStringLiteral("version 2");
    QTest::addRow("header size 0") << QStringLiteral("size 0") << QStringLiteral("invalid size");
    QTest::addRow("header size 2^64-1") << QStringLiteral("size max") << QStringLiteral("invalid size");
    QTest::addRow("truncated memfd") << QStringLiteral("truncated") << QStringLiteral("truncated");
    QTest::addRow("header only") << QStringLiteral("header only") << QStringLiteral("truncated");
}

void tst_IpmbMemoryRegion::notARegion()
{
    QFETCH(QString, kind);
    QFETCH(QString, reason);

    constexpr qsizetype UserSize = 4 * 4096;
    const QByteArray image = validImage(UserSize);
    QCOMPARE(image.size(), HeaderSize + UserSize);
    auto patched = [&image](int at, const void *value, size_t size) {
        QByteArray bytes = image;
        std::memcpy(bytes.data() + at, value, size);
        return bytes;
    };

    IpmbNativeHandle handle;
    IpmbNativeHandle keepAlive;  // the other end of a pipe or socket pair
    QTemporaryFile file;
    if (kind == QLatin1String("bad")) {
        handle = IpmbNativeHandle::adopt(1 << 20);  // far above any descriptor in use
    } else if (kind == QLatin1String("pipe") || kind == QLatin1String("socket")) {
        int fds[2];
        const int result = kind == QLatin1String("pipe") ? ::pipe2(fds, O_CLOEXEC)
                                                         : ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
        QCOMPARE(result, 0);
        handle = IpmbNativeHandle::adopt(fds[0]);
        keepAlive = IpmbNativeHandle::adopt(fds[1]);
    } else if (kind == QLatin1String("directory")) {
        handle = IpmbNativeHandle::adopt(::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    } else if (kind == QLatin1String("device")) {
        handle = IpmbNativeHandle::adopt(::open("/dev/null", O_RDWR | O_CLOEXEC));
    } else if (kind == QLatin1String("file")) {
        QVERIFY(file.open());
        QCOMPARE(file.write(image), image.size());
        QVERIFY(file.flush());
        handle = IpmbNativeHandle::duplicate(file.handle());
    } else if (kind == QLatin1String("unsealed")) {
        handle = memfdWith(image, -1, false);
    } else if (kind == QLatin1String("unsealed truncated")) {
        handle = memfdWith(image, HeaderSize + 100, false);
    } else if (kind == QLatin1String("empty")) {
        handle = memfdWith({});
    } else if (kind == QLatin1String("half header")) {
        handle = memfdWith(image, HeaderSize / 2);
    } else if (kind == QLatin1String("zeros")) {
        handle = memfdWith(QByteArray(image.size(), '\0'));
    } else if (kind == QLatin1String("version")) {
        const quint32 version = 2;
        handle = memfdWith(patched(4, &version, sizeof(version)));
    } else if (kind == QLatin1String("size 0")) {
        const quint64 size = 0;
        handle = memfdWith(patched(8, &size, sizeof(size)));
    } else if (kind == QLatin1String("size max")) {
        const quint64 size = std::numeric_limits<quint64>::max();
        handle = memfdWith(patched(8, &size, sizeof(size)));
    } else if (kind == QLatin1String("truncated")) {
        handle = memfdWith(image, HeaderSize + UserSize / 2);
    } else if (kind == QLatin1String("header only")) {
        handle = memfdWith(image, HeaderSize);
    }
    if (kind != QLatin1String("null"))
        QVERIFY(!handle.isNull());

    const IpmbMemoryRegion region = IpmbMemoryRegion::fromHandle(handle);
    QVERIFY(region.isNull());
    QCOMPARE(region.error(), IpmbMemoryRegion::InvalidHandleError);
    QVERIFY2(region.errorString().contains(reason), qPrintable(region.errorString()));
    QCOMPARE(region.refCount(), 0);
    QVERIFY(region.nativeHandle().isNull());

    IpmbErrorInfo error;
    QVERIFY(!IpmbMemoryRegionPrivate::addReferences(handle, 1, &error));
    QVERIFY(error.code == IpmbErrorCode::InvalidHandle);
    QVERIFY(IpmbMemoryRegionPrivate::adoptReceived(handle).isNull());

    // A failed attempt leaves the caller's handle alone; the valid image itself maps.
    if (kind == QLatin1String("unsealed"))
        QVERIFY(!memfdWith(image).isNull() && !IpmbMemoryRegion::fromHandle(memfdWith(image)).isNull());
    if (kind == QLatin1String("bad"))
        handle.release();  // nothing to close
}

void tst_IpmbMemoryRegion::lockUnlock()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(64);
    QVERIFY(region.lock());
    QCOMPARE(region.error(), IpmbMemoryRegion::NoError);

    // The holding thread locking again is an error, not a deadlock; so is through a view (one lock).
    QVERIFY(!region.lock());
    QCOMPARE(region.error(), IpmbMemoryRegion::LockError);
    QVERIFY(!region.errorString().isEmpty());
    IpmbMemoryRegion view = region.map(10, 10);
    QVERIFY(!view.lock());
    QCOMPARE(view.error(), IpmbMemoryRegion::LockError);

    QVERIFY(region.unlock());
    QCOMPARE(region.error(), IpmbMemoryRegion::NoError);  // success clears the last error
    QVERIFY(!region.unlock());
    QCOMPARE(region.error(), IpmbMemoryRegion::LockError);
    region.clearError();
    QCOMPARE(region.error(), IpmbMemoryRegion::NoError);
    QVERIFY(region.errorString().isEmpty());

    QVERIFY(view.lock());
    QVERIFY(!region.lock());
    QVERIFY(view.unlock());

    // Another mapping of the region in this process shares the lock.
    IpmbMemoryRegion second = IpmbMemoryRegion::fromHandle(IpmbNativeHandle::duplicate(region.nativeHandle().handle()));
    QVERIFY(second.lock());
    QVERIFY(!region.lock());
    QVERIFY(second.unlock());
    QVERIFY(region.lock());
    QVERIFY(region.unlock());
}

void tst_IpmbMemoryRegion::destroyedWhileLocked()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(64);
    IpmbMemoryRegion other = IpmbMemoryRegion::fromHandle(IpmbNativeHandle::duplicate(region.nativeHandle().handle()));
    QVERIFY(region.lock());
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(QStringLiteral("destroyed while this process holds its lock")));
    region = IpmbMemoryRegion();
    QVERIFY(other.lock());  // the lock went with it, not with the process
    QVERIFY(other.unlock());
    QCOMPARE(other.refCount(), 1);
}

void tst_IpmbMemoryRegion::crossProcessWrites()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(2 * 4096);
    std::strcpy(static_cast<char *>(region.data()), "from-parent");

    QProcess helper;
    startHelper(&helper, region, {QStringLiteral("write"), QStringLiteral("from-child")});
    PeerOutput output(&helper);
    QCOMPARE(output.waitForLine("saw"), QByteArray("saw from-parent"));
    QCOMPARE(output.waitForLine("written"), QByteArray("written"));
    QVERIFY(finish(&helper));
    QCOMPARE(static_cast<const char *>(region.constData()) + 4096, "from-child");
    QCOMPARE(region.refCount(), 1);  // the helper released its reference when it exited
}

void tst_IpmbMemoryRegion::crossProcessRefCount()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(4096);
    QProcess first;
    QProcess second;
    startHelper(&first, region, {QStringLiteral("hold")});
    PeerOutput firstOutput(&first);
    QCOMPARE(firstOutput.waitForLine("refcount="), QByteArray("refcount=2"));
    startHelper(&second, region, {QStringLiteral("hold")});
    PeerOutput secondOutput(&second);
    QCOMPARE(secondOutput.waitForLine("refcount="), QByteArray("refcount=3"));
    QCOMPARE(region.refCount(), 3);

    first.write("quit\n");
    QVERIFY(finish(&first));
    QCOMPARE(region.refCount(), 2);
    second.write("quit\n");
    QVERIFY(finish(&second));
    QCOMPARE(region.refCount(), 1);
}

void tst_IpmbMemoryRegion::lockBlocksOtherProcess()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(4096);
    QVERIFY(region.lock());
    QProcess helper;
    startHelper(&helper, region, {QStringLiteral("lock")});
    PeerOutput output(&helper);
    QCOMPARE(output.waitForLine("mapped"), QByteArray("mapped"));
    // An observation window, not synchronisation: the helper must not get the lock while we hold it.
    QTest::qWait(200);
    QVERIFY(!helper.readAllStandardOutput().contains("locked"));
    QVERIFY(region.unlock());
    QCOMPARE(output.waitForLine("locked"), QByteArray("locked"));
    helper.write("unlock\n");
    QCOMPARE(output.waitForLine("unlocked"), QByteArray("unlocked"));
    QVERIFY(finish(&helper));
    QVERIFY(region.lock());
    QVERIFY(region.unlock());
}

void tst_IpmbMemoryRegion::lockedIncrements_data()
{
    QTest::addColumn<bool>("parentIncrements");
    QTest::addRow("parent and child") << true;
    QTest::addRow("two children") << false;
}

void tst_IpmbMemoryRegion::lockedIncrements()
{
    QFETCH(bool, parentIncrements);
    constexpr int Count = 100000;
    IpmbMemoryRegion region = IpmbMemoryRegion::create(4096);
    quint64 *counter = static_cast<quint64 *>(region.data());

    const int children = parentIncrements ? 1 : 2;
    std::unique_ptr<QProcess> helpers[2];
    std::unique_ptr<PeerOutput> outputs[2];
    for (int i = 0; i < children; ++i) {
        helpers[i] = std::make_unique<QProcess>();
        startHelper(helpers[i].get(), region, {QStringLiteral("increment"), QString::number(Count)});
        outputs[i] = std::make_unique<PeerOutput>(helpers[i].get());
    }
    for (int i = 0; i < children; ++i)
        QCOMPARE(outputs[i]->waitForLine("ready"), QByteArray("ready"));
    // Start everybody at once, so that the increments really contend.
    for (int i = 0; i < children; ++i) {
        helpers[i]->write("go\n");
        QVERIFY(helpers[i]->waitForBytesWritten(5000));  // before our loop blocks the event loop
    }
    if (parentIncrements) {
        int failures = 0;
        int interleaved = 0;  // how often the other process got the lock in between (diagnostic)
        quint64 last = 0;
        for (int i = 0; i < Count; ++i) {
            failures += !region.lock();
            interleaved += i > 0 && *counter != last;
            last = ++*counter;
            failures += !region.unlock();
        }
        QCOMPARE(failures, 0);
        qDebug("parent: interleaved=%d", interleaved);
    }
    for (int i = 0; i < children; ++i) {
        const QByteArray done = outputs[i]->waitForLine("done", 60000);
        QVERIFY(done.startsWith("done"));
        qDebug("child %d: %s", i, done.constData());
        QVERIFY(finish(helpers[i].get()));
    }
    QVERIFY(region.lock());
    QCOMPARE(*counter, quint64(2 * Count));
    QVERIFY(region.unlock());
    QCOMPARE(region.refCount(), 1);
}

void tst_IpmbMemoryRegion::holderKilledWhileLocked()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(4096);
    QProcess helper;
    startHelper(&helper, region, {QStringLiteral("lock")});
    PeerOutput output(&helper);
    QCOMPARE(output.waitForLine("locked"), QByteArray("locked"));
    QCOMPARE(region.refCount(), 2);

    helper.kill();  // SIGKILL: no destructor, no unlock
    QVERIFY(helper.waitForFinished(10000));
    QCOMPARE(helper.exitStatus(), QProcess::CrashExit);

    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(QStringLiteral("died while holding it")));
    QVERIFY(region.lock());
    QCOMPARE(region.error(), IpmbMemoryRegion::NoError);
    QVERIFY(region.unlock());
    QVERIFY(region.lock());  // recovered for good: no second warning
    QVERIFY(region.unlock());

    // The killed holder never released its reference (doc/memory.md).
    QCOMPARE(region.refCount(), 2);
}

// A failed operation sets the error of the copy it was called on only: copies used by other
// threads do not see (or race on) each other's errors.
void tst_IpmbMemoryRegion::errorBelongsToTheCopy()
{
    IpmbMemoryRegion region = IpmbMemoryRegion::create(64);
    QVERIFY2(!region.isNull(), qPrintable(region.errorString()));
    IpmbMemoryRegion copy = region;
    QVERIFY(!copy.unlock()); // not locked
    QCOMPARE(copy.error(), IpmbMemoryRegion::LockError);
    QCOMPARE(region.error(), IpmbMemoryRegion::NoError);
    QVERIFY(region.errorString().isEmpty());

    const IpmbMemoryRegion copyOfFailed = copy; // a copy starts with the error of its source
    QCOMPARE(copyOfFailed.error(), IpmbMemoryRegion::LockError);
    copy.clearError();
    QCOMPARE(copy.error(), IpmbMemoryRegion::NoError);
    QCOMPARE(copyOfFailed.error(), IpmbMemoryRegion::LockError);

    copy.swap(region);
    QCOMPARE(region.error(), IpmbMemoryRegion::NoError);

    // The gadget properties QML reads.
    const QMetaObject &mo = IpmbMemoryRegion::staticMetaObject;
    auto read = [&mo](const IpmbMemoryRegion &r, const char *name) {
        return mo.property(mo.indexOfProperty(name)).readOnGadget(&r);
    };
    QCOMPARE(read(copyOfFailed, "error").value<IpmbMemoryRegion::Error>(), IpmbMemoryRegion::LockError);
    QCOMPARE(read(region, "size").value<qsizetype>(), qsizetype(64));
    QCOMPARE(read(region, "null").toBool(), false);
    QCOMPARE(read(region, "refCount").toInt(), 1); // copies in one process share one reference
}

QTEST_MAIN(tst_IpmbMemoryRegion)
#include "tst_ipmbmemoryregion.moc"
