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
    quint32 reserved0;
    quint64 reserved1[5];
    // The platform's process-shared, robust lock (a pthread_mutex_t on Linux).
    alignas(8) unsigned char lock[IpmbPlatform::ProcessSharedLockSize];
};
static_assert(std::atomic<qint32>::is_always_lock_free, "the reference count must be lock-free to be shared");
static_assert(sizeof(std::atomic<qint32>) == sizeof(qint32));
static_assert(offsetof(IpmbMemoryRegionHeader, size) == 8);
static_assert(offsetof(IpmbMemoryRegionHeader, refCount) == 16);
static_assert(offsetof(IpmbMemoryRegionHeader, lock) == 64);
static_assert(sizeof(IpmbMemoryRegionHeader) <= size_t(IpmbMemoryRegionHeader::Size));

// The shared data of IpmbMemoryRegion. A "root" owns the whole mapping and one reference in the
// header; a view (map()) owns only its own mapping and keeps its root, and so the reference, alive.
class IPMBQT_AUTOTEST_EXPORT IpmbMemoryRegionPrivate : public QSharedData
{
public:
    IpmbMemoryRegionPrivate() = default;
    ~IpmbMemoryRegionPrivate();
    Q_DISABLE_COPY_MOVE(IpmbMemoryRegionPrivate)

    // Like IpmbMemoryRegion::fromHandle(), but takes a reference only when takeReference is true;
    // false adopts a reference someone already added on this process's behalf (addReferences()).
    // Either way the returned region releases one reference when its last copy goes.
    static IpmbMemoryRegion adopt(const IpmbNativeHandle &handle, bool takeReference);
    // Adds delta (may be negative) to the reference count of the region behind `handle`, mapping
    // only its header page. False, with the reason in `error`, if the handle is not a region.
    static bool addReferences(const IpmbNativeHandle &handle, int delta,
                              IpmbMemoryRegionErrorInfo *error = nullptr);

    // How many IpmbMemoryRegion copies and views in this process share `region`'s mapping.
    static int localCopies(const IpmbMemoryRegion &region)
    {
        return region.d ? region.d->root()->ref.loadRelaxed() : 0;
    }

    // Checks that `handle` is a region and returns its user size; -1 with `error` set if not.
    static qsizetype validate(const IpmbNativeHandle &handle, quint64 *id, IpmbMemoryRegionErrorInfo *error);

    IpmbMemoryRegionPrivate *root() { return m_parent ? m_parent.data() : this; }
    const IpmbMemoryRegionPrivate *root() const { return m_parent ? m_parent.data() : this; }
    IpmbMemoryRegionHeader *header() const { return root()->m_header; }

    void setError(const IpmbMemoryRegionErrorInfo &error);
    void clearError();

    IpmbNativeHandle m_handle;                      // root only
    IpmbMemoryRegionHeader *m_header = nullptr;     // root only: start of the root mapping
    qsizetype m_mappingLength = 0;                  // root: header + user bytes; view: its length
    uchar *m_data = nullptr;                        // first user byte of this root or view
    qsizetype m_size = 0;                           // user bytes visible through m_data
    qsizetype m_offset = 0;                         // of m_data in the root's user bytes
    quint64 m_id = 0;
    bool m_holdsReference = false;                  // root only
    std::atomic<bool> m_lockedByUs = false;         // root only: this process holds the lock
    QExplicitlySharedDataPointer<IpmbMemoryRegionPrivate> m_parent;  // views only

    mutable QMutex m_errorMutex;                    // copies in several threads share the error
    IpmbMemoryRegion::Error m_error = IpmbMemoryRegion::NoError;
    QString m_errorString;
};

#endif // IPMBMEMORYREGION_P_H
