// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBMEMORYREGION_P_H
#define IPMBMEMORYREGION_P_H

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

#include "ipmbmemoryregion.h"
#include "ipmbsharedmemory_p.h"

#include <QtCore/qloggingcategory.h>
#include <QtCore/qmutex.h>
#include <QtCore/qshareddata.h>

#include <atomic>
#include <cstddef>
#include <memory>

// Defined in ipmbmemoryregion.cpp, used by ipmbregionmapping.cpp too.
Q_DECLARE_LOGGING_CATEGORY(lcIpmbMemory)

// The first page of every region's shared-memory object (see doc/memory.md). Only create() writes
// the fields; everyone else validates them (by reading, not mapping) before mapping anything.
struct IpmbMemoryRegionHeader
{
    static constexpr char Magic[4] = {'I', 'P', 'M', 'R'};
    static constexpr quint32 CurrentVersion = 1;
    // User bytes start on the next page, so data() is page-aligned.
    static constexpr qsizetype Size = 4096;

    char magic[4];
    quint32 version;                    // native byte order: regions never leave the machine
    quint64 size;                       // user bytes
    std::atomic<qint32> refCount;       // holders in every process
    std::atomic<quint32> waiters;       // threads in waitForReleased(), in every process
    quint64 reserved1[5];
    // The platform's process-shared, robust lock (a pthread_mutex_t on Linux).
    alignas(8) unsigned char lock[IpmbPlatform::ProcessSharedLockSize];
};
static_assert(std::atomic<qint32>::is_always_lock_free, "the reference count must be lock-free to be shared");
static_assert(sizeof(std::atomic<qint32>) == sizeof(qint32));
static_assert(offsetof(IpmbMemoryRegionHeader, size) == 8);
static_assert(offsetof(IpmbMemoryRegionHeader, refCount) == 16);
static_assert(offsetof(IpmbMemoryRegionHeader, waiters) == 20);
static_assert(offsetof(IpmbMemoryRegionHeader, lock) == 64);
static_assert(sizeof(IpmbMemoryRegionHeader) <= size_t(IpmbMemoryRegionHeader::Size));

// A whole region (header page and user bytes) mapped once in this process, with the handle it
// was mapped from. Every root of the region that shares it uses the same addresses; the mapping
// cache (doc/memory.md) keeps it while idle so that the next message with the region reuses it.
struct IpmbRegionMapping
{
    IpmbRegionMapping(const IpmbNativeHandle &handle, void *base, qsizetype size,
                      const IpmbPlatform::SharedMemoryInfo &identity)
        : handle(handle), header(static_cast<IpmbMemoryRegionHeader *>(base)), size(size),
          id(identity.id), device(identity.device)
    {
    }
    ~IpmbRegionMapping();
    Q_DISABLE_COPY_MOVE(IpmbRegionMapping)

    uchar *data() const { return reinterpret_cast<uchar *>(header) + IpmbMemoryRegionHeader::Size; }

    IpmbNativeHandle handle;
    IpmbMemoryRegionHeader *header;
    qsizetype size;                     // user bytes, as validated when it was mapped
    quint64 id;
    quint64 device;
};

// The shared data of IpmbMemoryRegion. A "root" shares a mapping of the whole region and owns one
// reference in the header; a view (map()) owns only its own mapping and keeps its root, and so
// the reference, alive.
class IPMBQT_AUTOTEST_EXPORT IpmbMemoryRegionPrivate : public QSharedData
{
public:
    IpmbMemoryRegionPrivate() = default;
    ~IpmbMemoryRegionPrivate();
    Q_DISABLE_COPY_MOVE(IpmbMemoryRegionPrivate)

    // A region received from the bus: its mapping comes from the mapping cache (the handle is
    // dropped when the region is already mapped here), and it adopts the reference the sender and
    // the controller added on this process's behalf, releasing it when its last copy goes.
    static IpmbMemoryRegion adoptReceived(const IpmbNativeHandle &handle);
    // Adds delta (may be negative) to the reference count of the region behind `handle`, through
    // the mapping cache. False, with the reason in `error`, if the handle is not a region.
    static bool addReferences(const IpmbNativeHandle &handle, int delta,
                              IpmbErrorInfo *error = nullptr);
    // The same for a region this process maps already.
    static void addReferences(const IpmbMemoryRegion &region, int delta);
    // Checks that `handle` is a region (mapping it into the cache, where later calls find it).
    static bool validate(const IpmbNativeHandle &handle, IpmbErrorInfo *error);

    // Drops the cached mappings that nobody here uses and whose region is freed, and the least
    // recently used idle ones beyond the cache's limits.
    static void sweepMappings();
    struct MappingStats
    {
        quint64 mapped = 0;     // regions this process mapped from a handle (cache misses)
        quint64 reused = 0;     // handles that found their region mapped already (cache hits)
        int cached = 0;         // mappings in the cache now
        int idle = 0;           // of which no region in this process uses
    };
    static MappingStats mappingStats();

    // How many IpmbMemoryRegion copies and views in this process share `region`'s root.
    static int localCopies(const IpmbMemoryRegion &region)
    {
        return region.d ? region.d->root()->ref.loadRelaxed() : 0;
    }
    // For pools: nobody holds `region` but this one copy (no other copy or view here, no
    // holder in any other process, no message in flight).
    static bool isFree(const IpmbMemoryRegion &region)
    {
        return localCopies(region) == 1 && region.refCount() == 1;
    }

    IpmbMemoryRegionPrivate *root() { return m_parent ? m_parent.data() : this; }
    const IpmbMemoryRegionPrivate *root() const { return m_parent ? m_parent.data() : this; }
    IpmbMemoryRegionHeader *header() const { return root()->m_mapping->header; }

    // Makes this private a root of `mapping` that holds one reference (already counted).
    void becomeRoot(std::shared_ptr<IpmbRegionMapping> mapping);

    std::shared_ptr<IpmbRegionMapping> m_mapping;   // root only
    uchar *m_data = nullptr;                        // first user byte of this root or view
    qsizetype m_size = 0;                           // user bytes visible through m_data
    qsizetype m_offset = 0;                         // of m_data in the root's user bytes
    qsizetype m_viewLength = 0;                     // view only: length of its own mapping
    quint64 m_id = 0;
    bool m_holdsReference = false;                  // root only
    std::atomic<bool> m_lockedByUs = false;         // root only: this process holds the lock
    QExplicitlySharedDataPointer<IpmbMemoryRegionPrivate> m_parent;  // views only
};

// What the two halves of IpmbMemoryRegion share besides the classes above: ipmbmemoryregion.cpp
// (the public class) and ipmbregionmapping.cpp (mapping, the mapping cache, reference counts).
namespace IpmbMemoryRegionDetail {

// Defined in ipmbmemoryregion.cpp.
IpmbMemoryRegion::Error publicError(IpmbErrorCode code);

// Defined in ipmbregionmapping.cpp.
// The identity and size of the object behind `handle`; false with `error` set if there is none.
bool identify(const IpmbNativeHandle &handle, IpmbPlatform::SharedMemoryInfo *info,
              IpmbErrorInfo *error);
// Validates the region behind `handle` and maps all of it, bypassing the mapping cache.
std::shared_ptr<IpmbRegionMapping> mapRegion(const IpmbNativeHandle &handle,
                                             const IpmbPlatform::SharedMemoryInfo &info,
                                             IpmbErrorInfo *error);
void cacheMapping(const std::shared_ptr<IpmbRegionMapping> &mapping);
// Adds `delta` to the region's reference count and returns the new count.
qint64 addToCount(const IpmbRegionMapping &mapping, int delta);

} // namespace IpmbMemoryRegionDetail

#endif // IPMBMEMORYREGION_P_H
