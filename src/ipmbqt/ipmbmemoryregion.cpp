// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbmemoryregion.h"
#include "ipmbmemoryregion_p.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qdebug.h>
#include <QtCore/qhash.h>

#include <climits>
#include <cstring>
#include <limits>
#include <new>

Q_LOGGING_CATEGORY(lcIpmbMemory, "ipmbqt.memory", QtWarningMsg)

using Header = IpmbMemoryRegionHeader;

using IpmbMemoryRegionDetail::addToCount;
using IpmbMemoryRegionDetail::cacheMapping;
using IpmbMemoryRegionDetail::identify;
using IpmbMemoryRegionDetail::mapRegion;
using IpmbMemoryRegionDetail::publicError;

/*!
    \class IpmbMemoryRegion
    \inmodule IpmbQt
    \inheaderfile IpmbQt/IpmbMemoryRegion
    \brief A block of shared memory that several processes map at once, without copying.

    create() makes a new region (a sealed memfd on Linux) of the given number of bytes, filled with
    zeros. Attach it to a message, and the receiving process maps the same memory: what either side
    writes, the other sees. A process that got the region's native handle some other way maps it
    with fromHandle().

    The API follows QSharedMemory: data(), constData(), size(), lock() and unlock(), error() and
    errorString(). map() makes a view of part of a big region.

    Copies of an IpmbMemoryRegion share one mapping (QExplicitlySharedDataPointer): nothing is
    mapped, duplicated or copied implicitly. The mapping goes away with the last copy.

    \section1 Reference count

    The region's header holds a count of its holders in every process; refCount() reads it.
    create() starts it at 1. Every region made by create() or fromHandle() holds one reference,
    which is released when its last copy (and the last of its map() views) is destroyed. A
    producer can therefore tell when every receiver has let go of a region: refCount() is 1 again.
    A holder that is killed (SIGKILL) never releases its reference; see doc/memory.md.

    \section1 Thread safety

    The class is reentrant. The lock is held per thread, so lock() also serialises the threads of
    one process. Each copy has its own error state: error() reports the last failed operation on
    this copy (or the create(), fromHandle() or map() that returned it), whatever other copies in
    other threads do.

    \sa IpmbNativeHandle
*/

/*!
    \enum IpmbMemoryRegion::Error
    \value NoError No error occurred.
    \value ResourceError The system is out of memory, address space or file descriptors.
    \value InvalidHandleError The handle is not an IpmbMemoryRegion (a pipe, a plain file, a
           truncated or foreign shared-memory object, a header of another version), or the region
           is null.
    \value OutOfRangeError An offset, length or size outside what the region can hold.
    \value LockError lock() or unlock() failed, for example unlock() by a thread that does not
           hold the lock, or lock() by the thread that already holds it.
    \value UnknownError Any other operating-system error.
*/

static QString nullRegionMessage()
{
    return QCoreApplication::translate("IpmbMemoryRegion", "The region is null");
}

namespace IpmbMemoryRegionDetail {

// The one conversion of the lower layers' error codes to IpmbMemoryRegion::Error.
IpmbMemoryRegion::Error publicError(IpmbErrorCode code)
{
    switch (code) {
    case IpmbErrorCode::None: return IpmbMemoryRegion::NoError;
    case IpmbErrorCode::Resource: return IpmbMemoryRegion::ResourceError;
    case IpmbErrorCode::InvalidHandle: return IpmbMemoryRegion::InvalidHandleError;
    case IpmbErrorCode::OutOfRange: return IpmbMemoryRegion::OutOfRangeError;
    case IpmbErrorCode::Lock: return IpmbMemoryRegion::LockError;
    default: return IpmbMemoryRegion::UnknownError;
    }
}

} // namespace IpmbMemoryRegionDetail

// --- IpmbMemoryRegion --------------------------------------------------------------------------

/*!
    Constructs a null region.
*/
IpmbMemoryRegion::IpmbMemoryRegion() = default;
IpmbMemoryRegion::IpmbMemoryRegion(const IpmbMemoryRegion &other) = default;
IpmbMemoryRegion::IpmbMemoryRegion(IpmbMemoryRegion &&other) noexcept = default;
IpmbMemoryRegion &IpmbMemoryRegion::operator=(const IpmbMemoryRegion &other) = default;
IpmbMemoryRegion &IpmbMemoryRegion::operator=(IpmbMemoryRegion &&other) noexcept = default;
/*!
    \fn IpmbMemoryRegion::IpmbMemoryRegion(const IpmbMemoryRegion &other)

    Constructs a copy of \a other that refers to the same mapping (explicitly shared: writes
    through one copy are seen through all). The cross-process refCount() does not change: it
    counts holders per process, not copies.
*/

/*!
    \fn IpmbMemoryRegion::IpmbMemoryRegion(IpmbMemoryRegion &&other)

    Move-constructs a region from \a other.
*/

/*!
    \fn IpmbMemoryRegion &IpmbMemoryRegion::operator=(const IpmbMemoryRegion &other)

    Makes this object refer to the mapping of \a other and returns a reference to it. The region
    held before is unmapped and released if this was its last copy.
*/

/*!
    \fn IpmbMemoryRegion &IpmbMemoryRegion::operator=(IpmbMemoryRegion &&other)

    Move-assigns \a other to this region and returns a reference to it.
*/

/*!
    \fn void IpmbMemoryRegion::swap(IpmbMemoryRegion &other)

    Swaps this region with \a other. This operation is very fast and never fails.
*/

/*!
    Destroys this copy. The last copy of a region unmaps it and releases its reference.
*/
IpmbMemoryRegion::~IpmbMemoryRegion() = default;

IpmbMemoryRegion::IpmbMemoryRegion(IpmbMemoryRegionPrivate *dd)
    : d(dd)
{
}

/*!
    Creates a new shared-memory region of \a size bytes, filled with zeros, and maps it. Its
    reference count starts at 1: this region's.

    On failure, returns a null region whose error() and errorString() say why: OutOfRangeError
    for a size below 1, ResourceError when the system cannot provide the memory or the address
    space.
*/
IpmbMemoryRegion IpmbMemoryRegion::create(qsizetype size)
{
    auto *dd = new IpmbMemoryRegionPrivate;
    IpmbMemoryRegion region(dd);
    if (size <= 0 || size > std::numeric_limits<qsizetype>::max() - Header::Size) {
        region.setError(OutOfRangeError,
                        QCoreApplication::translate("IpmbMemoryRegion", "Cannot create a region of %1 bytes").arg(size));
        return region;
    }
    IpmbErrorInfo error;
    const IpmbNativeHandle handle = IpmbNativeHandle::adopt(IpmbPlatform::createSharedMemory(Header::Size + size, &error));
    IpmbPlatform::SharedMemoryInfo info;
    if (handle.isNull() || !IpmbPlatform::sharedMemoryInfo(handle.handle(), &info, &error)) {
        region.setError(publicError(error.code), error.message);
        return region;
    }
    void *base = IpmbPlatform::mapSharedMemory(handle.handle(), 0, Header::Size + size, &error);
    if (!base) {
        region.setError(publicError(error.code), error.message);
        return region;
    }
    auto mapping = std::make_shared<IpmbRegionMapping>(handle, base, size, info);
    // The memory is fresh and zero; nobody else has the handle yet, so no ordering is needed.
    auto *header = new (base) Header{};
    std::memcpy(header->magic, Header::Magic, sizeof(Header::Magic));
    header->version = Header::CurrentVersion;
    header->size = quint64(size);
    header->refCount.store(1, std::memory_order_relaxed);
    if (!IpmbPlatform::initProcessSharedLock(header->lock, &error)) {
        region.setError(publicError(error.code), error.message);
        return region;
    }
    // Cached, so that the region reuses this mapping when it comes back to this process.
    cacheMapping(mapping);
    dd->becomeRoot(std::move(mapping));
    return region;
}

/*!
    Maps the region behind \a handle, as a receiver does, and takes a reference to it. The region
    keeps a copy of \a handle (nothing is duplicated), which nativeHandle() returns.

    The handle is checked before anything is mapped: a pipe, a socket, a plain file, a shared-memory
    object that could shrink, one without the region header, with a header of another version or
    with fewer bytes than its header promises gives a null region with InvalidHandleError.
*/
IpmbMemoryRegion IpmbMemoryRegion::fromHandle(const IpmbNativeHandle &handle)
{
    auto *dd = new IpmbMemoryRegionPrivate;
    IpmbMemoryRegion region(dd);
    IpmbErrorInfo error;
    IpmbPlatform::SharedMemoryInfo info;
    // Not through the mapping cache: this region keeps the very handle it was given.
    std::shared_ptr<IpmbRegionMapping> mapping;
    if (identify(handle, &info, &error))
        mapping = mapRegion(handle, info, &error);
    if (!mapping) {
        region.setError(publicError(error.code), error.message);
        return region;
    }
    addToCount(*mapping, +1);
    dd->becomeRoot(std::move(mapping));
    return region;
}

/*!
    \property IpmbMemoryRegion::null
    \brief whether this region maps nothing.

    \sa isNull()
*/

/*!
    \property IpmbMemoryRegion::size
    \brief the number of bytes data() points at.

    \sa size()
*/
/*!
    Returns true if this region maps nothing: default-constructed, or a failed create(),
    fromHandle() or map().
*/
bool IpmbMemoryRegion::isNull() const
{
    return !d || !d->m_data;
}

/*!
    Returns the number of bytes data() points at: the user bytes of the region (the header is not
    counted), or the length of a map() view. 0 for a null region.
*/
qsizetype IpmbMemoryRegion::size() const
{
    return isNull() ? 0 : d->m_size;
}

/*!
    Returns a pointer to the first byte of the region (or view); nullptr for a null region. The
    pointer of a region (not of a view) is page-aligned. Copies share the memory: no detaching.
*/
void *IpmbMemoryRegion::data()
{
    return d ? d->m_data : nullptr;
}

/*!
    \overload
*/
const void *IpmbMemoryRegion::data() const
{
    return d ? d->m_data : nullptr;
}

/*!
    Returns a read-only pointer to the first byte of the region (or view); nullptr for a null one.
*/
const void *IpmbMemoryRegion::constData() const
{
    return d ? d->m_data : nullptr;
}

/*!
    Returns a view of \a length bytes of this region starting at \a offset: a mapping of just the
    pages concerned, whose data() points at \a offset. Useful for big regions of which a process
    needs a small part. The view shares the region's reference, lock, id() and nativeHandle(), and
    keeps the region mapped while it exists.

    Returns a null region with OutOfRangeError if the range does not lie within size() (or
    \a length is not positive). The region's native handle must still be open.
*/
IpmbMemoryRegion IpmbMemoryRegion::map(qsizetype offset, qsizetype length)
{
    auto *dd = new IpmbMemoryRegionPrivate;
    IpmbMemoryRegion view(dd);
    if (isNull()) {
        view.setError(InvalidHandleError, nullRegionMessage());
        return view;
    }
    if (offset < 0 || length <= 0 || offset > d->m_size || length > d->m_size - offset) {
        view.setError(OutOfRangeError,
                      QCoreApplication::translate("IpmbMemoryRegion",
                                                  "Cannot map %1 bytes at offset %2 of a region of %3 bytes")
                              .arg(length).arg(offset).arg(d->m_size));
        return view;
    }
    IpmbMemoryRegionPrivate *root = d->root();
    if (root->m_mapping->handle.isNull()) {
        view.setError(InvalidHandleError,
                      QCoreApplication::translate("IpmbMemoryRegion",
                                                  "Cannot map a view: the region's native handle was released"));
        return view;
    }
    const qsizetype absolute = d->m_offset + offset;
    IpmbErrorInfo error;
    void *address = IpmbPlatform::mapSharedMemory(root->m_mapping->handle.handle(), Header::Size + absolute, length, &error);
    if (!address) {
        view.setError(publicError(error.code), error.message);
        return view;
    }
    dd->m_parent = QExplicitlySharedDataPointer<IpmbMemoryRegionPrivate>(root);
    dd->m_viewLength = length;
    dd->m_data = static_cast<uchar *>(address);
    dd->m_size = length;
    dd->m_offset = absolute;
    dd->m_id = root->m_id;
    return view;
}

bool IpmbMemoryRegion::failOnNullRegion()
{
    setError(LockError, nullRegionMessage());
    return false;
}

void IpmbMemoryRegion::setError(Error error, const QString &errorString)
{
    m_error = error;
    m_errorString = errorString;
}

/*!
    Locks the region's lock, blocking until every other holder (in any process or thread) has
    unlocked it. Returns true on success.

    The lock survives the death of its holder: if a process died while holding it, the next lock()
    succeeds, says so with a warning (category \c ipmbqt.memory), and the data the lock protects may
    be half-written. Locking again from the thread that holds the lock fails with LockError instead
    of deadlocking.
*/
bool IpmbMemoryRegion::lock()
{
    if (isNull())
        return failOnNullRegion();
    IpmbMemoryRegionPrivate *root = d->root();
    bool ownerDied = false;
    IpmbErrorInfo error;
    if (!IpmbPlatform::lockProcessShared(root->m_mapping->header->lock, &ownerDied, &error)) {
        setError(publicError(error.code), error.message);
        return false;
    }
    root->m_lockedByUs.store(true);
    if (ownerDied) {
        qCWarning(lcIpmbMemory,
                  "IpmbMemoryRegion %llu: a holder of the lock died while holding it; the lock is "
                  "recovered, but the data it protects may be inconsistent",
                  static_cast<unsigned long long>(root->m_id));
    }
    clearError();
    return true;
}

/*!
    Unlocks the region's lock. Returns false with LockError if the calling thread does not hold it.
*/
bool IpmbMemoryRegion::unlock()
{
    if (isNull())
        return failOnNullRegion();
    IpmbMemoryRegionPrivate *root = d->root();
    const bool wasLocked = root->m_lockedByUs.exchange(false);
    IpmbErrorInfo error;
    if (!wasLocked) {
        // Nobody in this process holds it: the lock is not ours to touch.
        setError(LockError, QCoreApplication::translate("IpmbMemoryRegion", "The region is not locked by this process"));
        return false;
    }
    if (!IpmbPlatform::unlockProcessShared(root->m_mapping->header->lock, &error)) {
        root->m_lockedByUs.store(true);  // another thread of ours holds it
        setError(publicError(error.code), error.message);
        return false;
    }
    clearError();
    return true;
}

/*!
    \property IpmbMemoryRegion::refCount
    \brief the number of holders of the region in all processes (a snapshot).

    \sa refCount()
*/
/*!
    Returns the number of holders of the region in all processes, as recorded in its header; 0 for
    a null region. The value is a snapshot: other processes may change it at any time.
*/
int IpmbMemoryRegion::refCount() const
{
    return isNull() ? 0 : int(d->header()->refCount.load(std::memory_order_acquire));
}

/*!
    Blocks until this is the region's last holder (refCount() is 1: every receiver, in every
    process, has released it), or \a msecs pass (-1 waits forever). Returns true if so, false on
    timeout or for a null region.

    A producer that keeps a bounded number of frames in flight waits on the oldest one. The wait
    sleeps in the kernel until a holder releases the region (see doc/memory.md). A holder that was
    killed never releases it: use a timeout.
*/
bool IpmbMemoryRegion::waitForReleased(int msecs) const
{
    if (isNull())
        return false;
    Header *header = d->header();
    QDeadlineTimer deadline(msecs < 0 ? QDeadlineTimer(QDeadlineTimer::Forever) : QDeadlineTimer(msecs));
    // Counted before the count is read, so that a release in between sees us and wakes us.
    header->waiters.fetch_add(1);
    bool released = false;
    for (;;) {
        const qint32 count = header->refCount.load();
        if (count <= 1) {
            released = true;
            break;
        }
        if (deadline.hasExpired())
            break;
        const qint64 remaining = deadline.remainingTime();
        IpmbPlatform::waitOnAddress(&header->refCount, count, remaining < 0 ? -1 : int(qMin<qint64>(remaining, INT_MAX)));
    }
    header->waiters.fetch_sub(1);
    return released;
}

/*!
    Returns the region's native handle (the memfd on Linux), to send it to another process. Views
    return their region's handle. The handle is shared, not duplicated: IpmbNativeHandle::release()
    on it takes it away from the region too (the mapping stays valid, but map() then fails).
*/
IpmbNativeHandle IpmbMemoryRegion::nativeHandle() const
{
    return isNull() ? IpmbNativeHandle() : d->root()->m_mapping->handle;
}

/*!
    \property IpmbMemoryRegion::id
    \brief the number that identifies the region's kernel object in every process.

    \sa id()
*/
/*!
    Returns a number that identifies the region's kernel object, equal in every process that maps
    it (the inode number of the memfd on Linux); 0 for a null region. Two regions with the same
    id() share their memory.
*/
quint64 IpmbMemoryRegion::id() const
{
    return isNull() ? 0 : d->m_id;
}

/*!
    \property IpmbMemoryRegion::error
    \brief the error of the last failed operation on this copy, or NoError.

    \sa error()
*/

/*!
    \property IpmbMemoryRegion::errorString
    \brief a readable description of error(); empty when there is none.
*/
/*!
    Returns the error of the last failed operation on this copy of the region, or of the create(),
    fromHandle() or map() that returned it. A successful lock() or unlock() clears it. A copy
    starts with the error state of the region it was copied from.
*/
IpmbMemoryRegion::Error IpmbMemoryRegion::error() const
{
    return m_error;
}

/*!
    Returns a readable description of error(); empty when there is none.
*/
QString IpmbMemoryRegion::errorString() const
{
    return m_errorString;
}

/*!
    Resets error() to NoError and errorString() to empty, for this copy of the region.
*/
void IpmbMemoryRegion::clearError()
{
    setError(NoError, QString());
}

/*!
    \fn bool IpmbMemoryRegion::operator!=(const IpmbMemoryRegion &lhs, const IpmbMemoryRegion &rhs)

    Returns \c true if \a lhs and \a rhs do not refer to the same bytes.
*/
/*!
    \fn bool IpmbMemoryRegion::operator==(const IpmbMemoryRegion &lhs, const IpmbMemoryRegion &rhs)

    Returns true if \a lhs and \a rhs are both null, or refer to the same bytes of the same kernel
    object (same id(), offset and size), even through different mappings.
*/
bool operator==(const IpmbMemoryRegion &lhs, const IpmbMemoryRegion &rhs)
{
    if (lhs.isNull() || rhs.isNull())
        return lhs.isNull() == rhs.isNull();
    return lhs.d->m_id == rhs.d->m_id && lhs.d->m_offset == rhs.d->m_offset && lhs.d->m_size == rhs.d->m_size;
}

/*!
    \relates IpmbMemoryRegion
    Returns the hash of \a region, consistent with operator==(), using \a seed to seed the
    calculation.
*/
size_t qHash(const IpmbMemoryRegion &region, size_t seed) noexcept
{
    if (region.isNull())
        return qHash(0, seed);
    // Views of one region at different offsets collide; that is allowed, and rare.
    return qHashMulti(seed, region.id(), region.size());
}

#ifndef QT_NO_DEBUG_STREAM
/*!
    \relates IpmbMemoryRegion

    Writes \a region to \a debug, for logging.
*/
QDebug operator<<(QDebug debug, const IpmbMemoryRegion &region)
{
    QDebugStateSaver saver(debug);
    debug.nospace() << "IpmbMemoryRegion(";
    if (region.isNull()) {
        debug << "null";
        if (region.error() != IpmbMemoryRegion::NoError)
            debug << ", " << region.error() << ", " << region.errorString();
    } else {
        debug << "id=" << region.id() << ", size=" << region.size() << ", refCount=" << region.refCount();
    }
    debug << ')';
    return debug;
}
#endif

#include "moc_ipmbmemoryregion.cpp"
