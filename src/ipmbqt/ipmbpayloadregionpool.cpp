// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbpayloadregionpool_p.h"
#include "ipmbmemoryregion_p.h"

#include <algorithm>

// Multiples of 64 KiB: little waste, and a region fits every payload up to its size that is
// larger than half of it.
static qsizetype regionSizeFor(qsizetype size)
{
    constexpr qsizetype Granule = 64 * 1024;
    return qMax(IpmbPayloadRegionPool::MinRegionSize, (size + Granule - 1) / Granule * Granule);
}

IpmbMemoryRegion IpmbPayloadRegionPool::alloc(qsizetype size, qint64 now)
{
    const qsizetype regionSize = regionSizeFor(size);
    QMutexLocker locker(&m_mutex);
    expireLocked(now);
    qint64 pooledBytes = 0;
    auto unused = m_pool.end();  // a free region of another size, to make room
    for (auto it = m_pool.begin(); it != m_pool.end(); ++it) {
        pooledBytes += it->region.size();
        if (!IpmbMemoryRegionPrivate::isFree(it->region))
            continue;
        if (it->region.size() >= size && (it->region.size() <= MinRegionSize || it->region.size() / 2 < size)) {
            it->lastUse = now;
            return it->region;
        }
        unused = it;
    }
    if (unused != m_pool.end()) {
        pooledBytes -= unused->region.size();
        m_pool.erase(unused);
    }
    if (int(m_pool.size()) >= MaxRegions || pooledBytes + regionSize > MaxBytes)
        return {};
    IpmbMemoryRegion region = IpmbMemoryRegion::create(regionSize);
    if (!region.isNull())
        m_pool.push_back({region, now});
    return region;
}

void IpmbPayloadRegionPool::expire(qint64 now)
{
    QMutexLocker locker(&m_mutex);
    expireLocked(now);
}

// Also forgets regions that are still busy that long after they were sent: a receiver releases a
// payload region as soon as it reads the message, so such a region lost its reference (a failover,
// a receiver killed with the message unread) and would stay busy for ever. Forgetting is safe: the
// region is not reused, and goes away with its last holder.
void IpmbPayloadRegionPool::expireLocked(qint64 now)
{
    m_pool.erase(std::remove_if(m_pool.begin(), m_pool.end(),
                                [now](const Pooled &p) { return now - p.lastUse > ExpiryNsecs; }),
                 m_pool.end());
}

int IpmbPayloadRegionPool::count() const
{
    QMutexLocker locker(&m_mutex);
    return int(m_pool.size());
}
