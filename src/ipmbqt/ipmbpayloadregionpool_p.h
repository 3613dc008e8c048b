// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBPAYLOADREGIONPOOL_P_H
#define IPMBPAYLOADREGIONPOOL_P_H

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

#include "ipmbqtglobal.h"
#include "ipmbmemoryregion.h"

#include <QtCore/qmutex.h>

#include <vector>

// The regions in which an endpoint sends large payloads (doc/memory.md, "Large payloads"): a few,
// reused once every receiver has released them. Thread-safe: send() runs in any thread.
class IPMBQT_AUTOTEST_EXPORT IpmbPayloadRegionPool
{
public:
    static constexpr qsizetype MinRegionSize = 64 * 1024;
    static constexpr int MaxRegions = 64;
    static constexpr qint64 MaxBytes = 128 * 1024 * 1024;
    static constexpr qint64 ExpiryNsecs = qint64(10) * 1000 * 1000 * 1000;
    // alloc() waits only for regions handed out less than this long ago: an older one is more
    // likely to have lost its reference (see expireLocked()) than to come back any moment, and
    // every send() would wait for it in vain.
    static constexpr qint64 WaitAgeNsecs = qint64(100) * 1000 * 1000;

    // A free region of at least `size` bytes, from the pool or new; a null region when the pool is
    // busy and full (the payload then goes inline) or the system has no memory for one.
    // `now` is a monotonic time in ns, also used to drop regions that stayed free too long.
    // With waitMsecs > 0, a busy and full pool first waits that long at most for the region sent
    // longest ago (but less than WaitAgeNsecs ago) to be released.
    IpmbMemoryRegion alloc(qsizetype size, qint64 now, int waitMsecs = 0);
    // Drops the regions last handed out more than ExpiryNsecs ago, and sets aside those of them
    // that are still busy (see expireLocked()).
    void expire(qint64 now);
    int count() const;          // pooled regions
    int setAsideCount() const;  // busy too long: not reused, held until free

private:
    struct Pooled
    {
        IpmbMemoryRegion region;
        qint64 lastUse;
    };
    IpmbMemoryRegion tryAlloc(qsizetype size, qint64 now, IpmbMemoryRegion *oldestBusy);
    void expireLocked(qint64 now);

    mutable QMutex m_mutex;
    std::vector<Pooled> m_pool;
    std::vector<IpmbMemoryRegion> m_setAside;
};

#endif // IPMBPAYLOADREGIONPOOL_P_H
