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
#include "ipmblimits_p.h"
#include "ipmbmemoryregion.h"

#include <QtCore/qmutex.h>

#include <vector>

// The regions in which an endpoint sends large payloads (doc/memory.md, "Large payloads"): a few,
// reused once every receiver has released them. Thread-safe: send() runs in any thread.
class IPMBQT_AUTOTEST_EXPORT IpmbPayloadRegionPool
{
public:
    // Its sizes, counts and times: IpmbLimits::PayloadRegion*.

    // A free region of at least `size` bytes, from the pool or new; a null region when the pool is
    // busy and full (the payload then goes inline) or the system has no memory for one.
    // `now` is a monotonic time in ns, also used to drop regions that stayed free too long.
    // With waitMsecs > 0, a busy and full pool first waits that long at most for the region sent
    // longest ago (but less than IpmbLimits::PayloadRegionWaitAgeNsecs ago) to be released.
    IpmbMemoryRegion alloc(qsizetype size, qint64 now, int waitMsecs = 0);
    // Drops the regions last handed out more than IpmbLimits::PayloadRegionExpiryNsecs ago, and sets aside those of them
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
