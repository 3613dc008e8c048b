// SPDX-License-Identifier: BSD-3-Clause
// The private half of IpmbMemoryRegion: mapping a region's shared-memory object, the
// process-wide mapping cache, the reference count in the region header, and
// IpmbMemoryRegionPrivate. The public class is in ipmbmemoryregion.cpp.
#include "ipmbmemoryregion_p.h"
#include "ipmblimits_p.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qglobalstatic.h>
#include <QtCore/qhash.h>

#include <cstring>
#include <limits>
#include <utility>

using Header = IpmbMemoryRegionHeader;
using IpmbMemoryRegionDetail::addToCount;
using IpmbMemoryRegionDetail::identify;
using IpmbMemoryRegionDetail::mapRegion;
using IpmbMemoryRegionDetail::publicError;

// --- Mapping a region --------------------------------------------------------------------------

IpmbRegionMapping::~IpmbRegionMapping()
{
    IpmbPlatform::unmapSharedMemory(header, Header::Size + size);
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

namespace IpmbMemoryRegionDetail {

// Validates the region behind `handle` and maps all of it. Only the size validated here is
// trusted from now on, whatever a peer later writes into the header.
std::shared_ptr<IpmbRegionMapping> mapRegion(const IpmbNativeHandle &handle,
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

bool identify(const IpmbNativeHandle &handle, IpmbPlatform::SharedMemoryInfo *info,
              IpmbErrorInfo *error)
{
    if (handle.isNull()) {
        *error = IpmbErrorInfo(IpmbErrorCode::InvalidHandle,
                                           QCoreApplication::translate("IpmbMemoryRegion", "The handle is null"));
        return false;
    }
    return IpmbPlatform::sharedMemoryInfo(handle.handle(), info, error);
}

} // namespace IpmbMemoryRegionDetail

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

// For create(): adds the mapping of a region it just made to the cache.
void IpmbMemoryRegionDetail::cacheMapping(const std::shared_ptr<IpmbRegionMapping> &mapping)
{
    if (MappingCache *cache = mappingCache())
        cache->insert(mapping);
}

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

namespace IpmbMemoryRegionDetail {

// Every change of a reference count goes through here. Sequentially consistent, with the waiter
// count read after it: see waitForReleased() for the other half.
qint64 addToCount(const IpmbRegionMapping &mapping, int delta)
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

} // namespace IpmbMemoryRegionDetail

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
