// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbpayloadregionpool_p.h"
#include "ipmbmemoryregion_p.h"

#include <algorithm>

// Multiples of 64 KiB: little waste. A region takes the payloads that fit and fill more than half
// of it, or any that fits for the smallest size.
static qsizetype regionSizeFor(qsizetype size)
{
    constexpr qsizetype granule = IpmbLimits::PayloadRegionMinBytes;
    return qMax(granule, (size + granule - 1) / granule * granule);
}

IpmbMemoryRegion IpmbPayloadRegionPool::alloc(qsizetype size, qint64 now, int waitMsecs)
{
    IpmbMemoryRegion oldestBusy;
    IpmbMemoryRegion region = tryAlloc(size, now, waitMsecs > 0 ? &oldestBusy : nullptr);
    if (!region.isNull() || oldestBusy.isNull())
        return region;
    // Every region is in flight: the receivers are slower than this sender. A short wait for the
    // first one back costs less than the inline path, which makes every process copy the payload
    // through its socket and so slows the receivers down further.
    const bool released = oldestBusy.waitForReleased(waitMsecs);
    oldestBusy = IpmbMemoryRegion();  // isFree() wants the pool's copy alone
    return released ? tryAlloc(size, now, nullptr) : IpmbMemoryRegion();
}

// As alloc() without waiting; when the pool is busy and full, *oldestBusy (if given) is set to
// the region handed out longest ago, but less than IpmbLimits::PayloadRegionWaitAgeNsecs ago.
IpmbMemoryRegion IpmbPayloadRegionPool::tryAlloc(qsizetype size, qint64 now, IpmbMemoryRegion *oldestBusy)
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
        if (it->region.size() >= size && (it->region.size() <= IpmbLimits::PayloadRegionMinBytes || it->region.size() / 2 < size)) {
            it->lastUse = now;
            return it->region;
        }
        unused = it;
    }
    if (unused != m_pool.end()) {
        pooledBytes -= unused->region.size();
        m_pool.erase(unused);
    }
    if (int(m_pool.size()) >= IpmbLimits::PayloadRegionsMax || pooledBytes + regionSize > IpmbLimits::PayloadRegionsMaxBytes) {
        if (oldestBusy) {
            const Pooled *oldest = nullptr;
            for (const Pooled &pooled : m_pool) {
                if (now - pooled.lastUse < IpmbLimits::PayloadRegionWaitAgeNsecs && (!oldest || pooled.lastUse < oldest->lastUse))
                    oldest = &pooled;
            }
            if (oldest)
                *oldestBusy = oldest->region;
        }
        return {};
    }
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

// A region still busy that long after it was sent has most likely lost a reference (a failover, a
// receiver killed with the message unread): receivers release payload regions as soon as they read
// them. It is set aside, never reused, so that the pool can make a new one; set-aside regions are
// let go once they are free after all, and bounded like the pool, because a receiver that is only
// slow would otherwise make the sender pin more and more memory.
void IpmbPayloadRegionPool::expireLocked(qint64 now)
{
    const auto isFree = [](const IpmbMemoryRegion &region) { return IpmbMemoryRegionPrivate::isFree(region); };
    m_setAside.erase(std::remove_if(m_setAside.begin(), m_setAside.end(), isFree), m_setAside.end());
    qint64 setAsideBytes = 0;
    for (const IpmbMemoryRegion &region : m_setAside)
        setAsideBytes += region.size();
    for (auto it = m_pool.begin(); it != m_pool.end();) {
        if (now - it->lastUse <= IpmbLimits::PayloadRegionExpiryNsecs) {
            ++it;
        } else if (isFree(it->region)) {
            it = m_pool.erase(it);
        } else if (setAsideBytes + it->region.size() <= IpmbLimits::PayloadRegionsMaxBytes) {
            setAsideBytes += it->region.size();
            m_setAside.push_back(std::move(it->region));
            it = m_pool.erase(it);
        } else {
            ++it;  // stays busy in the pool: the payloads go inline meanwhile
        }
    }
}

int IpmbPayloadRegionPool::count() const
{
    QMutexLocker locker(&m_mutex);
    return int(m_pool.size());
}

int IpmbPayloadRegionPool::setAsideCount() const
{
    QMutexLocker locker(&m_mutex);
    return int(m_setAside.size());
}
