// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbmemoryregion.h"
#include "ipmbmemoryregion_p.h"
#include "ipmblimits_p.h"

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

// --- Mapping a region --------------------------------------------------------------------------

IpmbRegionMapping::~IpmbRegionMapping()
{
    IpmbPlatform::unmapSharedMemory(header, Header::Size + size);
}

// The one conversion of the lower layers' error codes to IpmbMemoryRegion::Error.
static IpmbMemoryRegion::Error publicError(IpmbErrorCode code)
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

// Checks that the object behind `handle` (described by `info`) is a region, and returns its user
// size; -1 with `error` set if it is not.
static qsizetype validatedSize(const IpmbNativeHandle &handle, const IpmbPlatform::SharedMemoryInfo &info,
                               IpmbErrorInfo *error)
{
    auto invalid = [error](const QString &message) {
        *error = IpmbErrorInfo(IpmbErrorCode::InvalidHandle, message);
        return qsizetype(-1);
    };
    // Checked before anything is mapped: once the seal is there, the object can never shrink below
    // the size we check next, so no later access can fault (SIGBUS).
    if (!IpmbPlatform::cannotShrink(handle.handle())) {
        return invalid(QCoreApplication::translate(
                "IpmbMemoryRegion",
                "The handle is not an IpmbMemoryRegion: it is not sealed against shrinking (a plain "
                "file or a foreign shared-memory object)"));
    }
    if (info.size < Header::Size) {
        return invalid(QCoreApplication::translate(
                               "IpmbMemoryRegion",
                               "The handle is not an IpmbMemoryRegion: it holds %1 bytes, less than a "
                               "region header (%2 bytes)")
                               .arg(info.size).arg(Header::Size));
    }

    // Read the fields instead of mapping them: a foreign object costs no mapping at all.
    char fields[16];
    if (!IpmbPlatform::readSharedMemory(handle.handle(), 0, fields, sizeof(fields), error))
        return -1;
    if (std::memcmp(fields, Header::Magic, sizeof(Header::Magic)) != 0) {
        return invalid(QCoreApplication::translate(
                "IpmbMemoryRegion", "The handle is not an IpmbMemoryRegion: its header has no \"IPMR\" magic"));
    }
    quint32 version;
    quint64 size;
    std::memcpy(&version, fields + offsetof(Header, version), sizeof(version));
    std::memcpy(&size, fields + offsetof(Header, size), sizeof(size));
    if (version != Header::CurrentVersion) {
        return invalid(QCoreApplication::translate(
                               "IpmbMemoryRegion", "The region has header version %1; this IpmbQt reads version %2")
                               .arg(version).arg(Header::CurrentVersion));
    }
    if (size == 0 || size > quint64(std::numeric_limits<qsizetype>::max() - Header::Size)) {
        return invalid(QCoreApplication::translate("IpmbMemoryRegion",
                                                   "The region header claims an invalid size of %1 bytes")
                               .arg(size));
    }
    if (quint64(info.size) < quint64(Header::Size) + size) {
        return invalid(QCoreApplication::translate(
                               "IpmbMemoryRegion",
                               "The region is truncated: its header promises %1 bytes, but the object "
                               "holds only %2")
                               .arg(quint64(Header::Size) + size).arg(info.size));
    }
    return qsizetype(size);
}

// Validates the region behind `handle` and maps all of it. Only the size validated here is
// trusted from now on, whatever a peer later writes into the header.
static std::shared_ptr<IpmbRegionMapping> mapRegion(const IpmbNativeHandle &handle,
                                                    const IpmbPlatform::SharedMemoryInfo &info,
                                                    IpmbErrorInfo *error)
{
    const qsizetype size = validatedSize(handle, info, error);
    if (size < 0)
        return {};
    void *base = IpmbPlatform::mapSharedMemory(handle.handle(), 0, Header::Size + size, error);
    if (!base)
        return {};
    return std::make_shared<IpmbRegionMapping>(handle, base, size, info);
}

static bool identify(const IpmbNativeHandle &handle, IpmbPlatform::SharedMemoryInfo *info,
                     IpmbErrorInfo *error)
{
    if (handle.isNull()) {
        *error = IpmbErrorInfo(IpmbErrorCode::InvalidHandle,
                                           QCoreApplication::translate("IpmbMemoryRegion", "The handle is null"));
        return false;
    }
    return IpmbPlatform::sharedMemoryInfo(handle.handle(), info, error);
}

namespace {

// Every region this process maps from the bus or creates, mapped once (see "Mapping reuse" in
// doc/memory.md). It holds mappings, never references; a mapping nobody here uses is "idle".
class MappingCache
{
public:

    std::shared_ptr<IpmbRegionMapping> acquire(const IpmbNativeHandle &handle, IpmbErrorInfo *error)
    {
        IpmbPlatform::SharedMemoryInfo info;
        if (!identify(handle, &info, error))
            return {};
        {
            QMutexLocker locker(&m_mutex);
            const auto it = m_entries.find(Key(info.device, info.id));
            // The cached descriptor keeps the object alive, so the same identity is the same,
            // already validated, object. One whose handle the user released cannot be sent or
            // viewed any more: map that one afresh.
            if (it != m_entries.end() && !it->mapping->handle.isNull()) {
                it->lastUse = ++m_clock;
                ++m_reused;
                return it->mapping;
            }
        }
        std::shared_ptr<IpmbRegionMapping> mapping = mapRegion(handle, info, error);
        if (mapping) {
            QMutexLocker locker(&m_mutex);
            ++m_mapped;
            insertLocked(mapping);
        }
        return mapping;
    }

    void insert(const std::shared_ptr<IpmbRegionMapping> &mapping)
    {
        QMutexLocker locker(&m_mutex);
        insertLocked(mapping);
    }

    void sweep()
    {
        QMutexLocker locker(&m_mutex);
        sweepLocked();
    }

    IpmbMemoryRegionPrivate::MappingStats stats()
    {
        QMutexLocker locker(&m_mutex);
        IpmbMemoryRegionPrivate::MappingStats stats;
        stats.mapped = m_mapped;
        stats.reused = m_reused;
        stats.cached = int(m_entries.size());
        for (const Entry &entry : std::as_const(m_entries))
            stats.idle += isIdle(entry);
        return stats;
    }

private:
    using Key = std::pair<quint64, quint64>;  // device, id
    struct Entry
    {
        std::shared_ptr<IpmbRegionMapping> mapping;
        quint64 lastUse;
    };
    // New owners appear only through acquire(), under the mutex: so under it, an idle entry
    // stays idle.
    static bool isIdle(const Entry &entry) { return entry.mapping.use_count() == 1; }

    void insertLocked(const std::shared_ptr<IpmbRegionMapping> &mapping)
    {
        // Replaces an entry whose handle was released, or one a racing thread mapped as well.
        m_entries.insert(Key(mapping->device, mapping->id), Entry{mapping, ++m_clock});
        sweepLocked();
    }

    void sweepLocked()
    {
        int idle = 0;
        qint64 idleBytes = 0;
        for (auto it = m_entries.begin(); it != m_entries.end();) {
            if (!isIdle(*it)) {
                ++it;
            } else if (it->mapping->header->refCount.load(std::memory_order_acquire) <= 0) {
                it = m_entries.erase(it);  // freed: nobody in any process holds it
            } else {
                ++idle;
                idleBytes += Header::Size + it->mapping->size;
                ++it;
            }
        }
        while (idle > IpmbLimits::MappingCacheMaxIdle || idleBytes > IpmbLimits::MappingCacheMaxIdleBytes) {
            auto oldest = m_entries.end();
            for (auto it = m_entries.begin(); it != m_entries.end(); ++it) {
                if (isIdle(*it) && (oldest == m_entries.end() || it->lastUse < oldest->lastUse))
                    oldest = it;
            }
            --idle;
            idleBytes -= Header::Size + oldest->mapping->size;
            m_entries.erase(oldest);
        }
    }

    QMutex m_mutex;
    QHash<Key, Entry> m_entries;
    quint64 m_clock = 0;
    quint64 m_mapped = 0;
    quint64 m_reused = 0;
};

} // namespace

// Null once destroyed at exit; then regions map without it.
Q_GLOBAL_STATIC(MappingCache, mappingCache)

static std::shared_ptr<IpmbRegionMapping> acquireMapping(const IpmbNativeHandle &handle,
                                                         IpmbErrorInfo *error)
{
    if (MappingCache *cache = mappingCache())
        return cache->acquire(handle, error);
    IpmbPlatform::SharedMemoryInfo info;
    return identify(handle, &info, error) ? mapRegion(handle, info, error) : nullptr;
}

static qint64 addToCount(const IpmbRegionMapping &mapping, int delta);

// --- IpmbMemoryRegionPrivate -------------------------------------------------------------------

IpmbMemoryRegionPrivate::~IpmbMemoryRegionPrivate()
{
    if (m_parent) {
        // A view: its own pages only. The root (and its reference) outlive it through m_parent.
        IpmbPlatform::unmapSharedMemory(m_data, m_viewLength);
        return;
    }
    if (!m_mapping)
        return;
    // A mutex that stays locked by a holder that is gone would leave the other processes waiting
    // forever (and, once unmapped, a dangling entry on the thread's robust list).
    if (m_lockedByUs.load()) {
        qCWarning(lcIpmbMemory, "IpmbMemoryRegion %llu destroyed while this process holds its lock; unlocking",
                  static_cast<unsigned long long>(m_id));
        IpmbErrorInfo error;
        if (!IpmbPlatform::unlockProcessShared(m_mapping->header->lock, &error))
            qCWarning(lcIpmbMemory, "%s", qUtf8Printable(error.message));
    }
    const bool freed = m_holdsReference && addToCount(*m_mapping, -1) == 0;
    m_mapping.reset();
    if (freed)
        sweepMappings();  // the last holder anywhere: its cached mapping may go now
}

void IpmbMemoryRegionPrivate::becomeRoot(std::shared_ptr<IpmbRegionMapping> mapping)
{
    m_data = mapping->data();
    m_size = mapping->size;
    m_id = mapping->id;
    m_holdsReference = true;
    m_mapping = std::move(mapping);
}

IpmbMemoryRegion IpmbMemoryRegionPrivate::adoptReceived(const IpmbNativeHandle &handle)
{
    auto *dd = new IpmbMemoryRegionPrivate;
    IpmbMemoryRegion region(dd);
    IpmbErrorInfo error;
    if (std::shared_ptr<IpmbRegionMapping> mapping = acquireMapping(handle, &error))
        dd->becomeRoot(std::move(mapping));
    else
        region.setError(publicError(error.code), error.message);
    return region;
}

// Every change of a reference count goes through here. Sequentially consistent, with the waiter
// count read after it: see waitForReleased() for the other half.
static qint64 addToCount(const IpmbRegionMapping &mapping, int delta)
{
    Header *header = mapping.header;
    // The count lives in memory that every holder, a hostile sender included, can write: it may be
    // anything, and the atomic wraps; the sum is computed wide so that it cannot overflow here.
    const qint64 after = qint64(header->refCount.fetch_add(delta)) + delta;
    if (after < 0 || after > std::numeric_limits<qint32>::max()) {
        qCWarning(lcIpmbMemory, "IpmbMemoryRegion %llu: reference count out of range (%lld)",
                  static_cast<unsigned long long>(mapping.id), static_cast<long long>(after));
    }
    if (delta < 0 && after <= 1 && header->waiters.load() > 0)
        IpmbPlatform::wakeAddressWaiters(&header->refCount);
    return after;
}

bool IpmbMemoryRegionPrivate::addReferences(const IpmbNativeHandle &handle, int delta,
                                            IpmbErrorInfo *error)
{
    IpmbErrorInfo local;
    const std::shared_ptr<IpmbRegionMapping> mapping = acquireMapping(handle, error ? error : &local);
    if (!mapping)
        return false;
    addToCount(*mapping, delta);
    return true;
}

void IpmbMemoryRegionPrivate::addReferences(const IpmbMemoryRegion &region, int delta)
{
    if (!region.isNull())
        addToCount(*region.d->root()->m_mapping, delta);
}

bool IpmbMemoryRegionPrivate::validate(const IpmbNativeHandle &handle, IpmbErrorInfo *error)
{
    return acquireMapping(handle, error) != nullptr;
}

void IpmbMemoryRegionPrivate::sweepMappings()
{
    if (MappingCache *cache = mappingCache())
        cache->sweep();
}

IpmbMemoryRegionPrivate::MappingStats IpmbMemoryRegionPrivate::mappingStats()
{
    MappingCache *cache = mappingCache();
    return cache ? cache->stats() : MappingStats();
}

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
    if (MappingCache *cache = mappingCache())
        cache->insert(mapping);
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
