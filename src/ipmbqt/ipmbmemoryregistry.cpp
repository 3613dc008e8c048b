// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbmemoryregistry.h"
#include "ipmbmemoryregion_p.h"

#include <QtCore/qelapsedtimer.h>
#include <QtCore/qmetaobject.h>
#include <QtCore/qtimer.h>

#include <algorithm>
#include <vector>

/*!
    \class IpmbMemoryRegistry
    \brief A pool of memory regions that reuses those every receiver has let go of.

    A producer that sends a frame 60 times a second should not create a region per frame: a new
    memfd costs about a millisecond per MiB in fresh page faults on both sides. alloc() hands out
    a pooled region instead, when one of the same tag is free and no more than twice the size
    asked for. A region is free when nobody holds it any more: no copy of it is left in this
    process except the pool's own, and its cross-process refCount() is back to 1 (the receivers
    of the messages it travelled in have dropped them).

    Regions that stay free for longer than expiryInterval() are released by maintain(), which the
    registry also runs on its own every expiryInterval(). regionFreed() tells when a region that
    was in use becomes free again (the pool then looks every 10 ms while the signal is connected).

    A receiver killed while it held a region never releases its reference; such a region stays
    busy and is never reused (see doc/memory.md). The registry is not thread-safe: use it from
    the thread it lives in.
*/

struct PooledRegion
{
    IpmbMemoryRegion region;
    QString tag;
    bool busy = true;       // as of the last refresh()
    QElapsedTimer freeFor;  // valid while free
};

class IpmbMemoryRegistryPrivate
{
    Q_DECLARE_PUBLIC(IpmbMemoryRegistry)

public:
    explicit IpmbMemoryRegistryPrivate(IpmbMemoryRegistry *q) : q_ptr(q) { }

    void refresh();
    void setError(IpmbMemoryRegistry::Error error, const QString &errorString);

    IpmbMemoryRegistry *q_ptr;
    std::vector<PooledRegion> m_pool;
    int m_expiryInterval = 10000;
    QTimer m_maintainTimer;
    QTimer m_watchTimer;
    IpmbMemoryRegistry::Error m_error = IpmbMemoryRegistry::NoError;
    QString m_errorString;
};

void IpmbMemoryRegistryPrivate::setError(IpmbMemoryRegistry::Error error, const QString &errorString)
{
    Q_Q(IpmbMemoryRegistry);
    m_error = error;
    m_errorString = errorString;
    Q_EMIT q->errorOccurred(error);
}

// Notes which regions became free since the last look, and says so.
void IpmbMemoryRegistryPrivate::refresh()
{
    Q_Q(IpmbMemoryRegistry);
    QList<PooledRegion> freed;
    for (PooledRegion &pooled : m_pool) {
        const bool busy = !IpmbMemoryRegionPrivate::isFree(pooled.region);
        if (pooled.busy && !busy) {
            pooled.freeFor.start();
            freed.append(pooled);
        }
        pooled.busy = busy;
    }
    for (const PooledRegion &pooled : std::as_const(freed))
        Q_EMIT q->regionFreed(pooled.region, pooled.tag);
}

IpmbMemoryRegistry::IpmbMemoryRegistry(QObject *parent)
    : QObject(parent), d_ptr(std::make_unique<IpmbMemoryRegistryPrivate>(this))
{
    Q_D(IpmbMemoryRegistry);
    d->m_maintainTimer.setInterval(d->m_expiryInterval);
    connect(&d->m_maintainTimer, &QTimer::timeout, this, &IpmbMemoryRegistry::maintain);
    d->m_watchTimer.setInterval(10);
    connect(&d->m_watchTimer, &QTimer::timeout, this, [d] { d->refresh(); });
}

IpmbMemoryRegistry::~IpmbMemoryRegistry() = default;

/*!
    Returns a region of at least \a minSize bytes tagged \a tag: a free pooled one of at most
    twice that size (the smallest such), or a new one. Returns a null region, with the reason in
    errorString(), if a new region cannot be created: error() is then ResourceError when the
    system is out of memory, address space or descriptors, and OutOfRangeError for a size below 1.
    errorOccurred() is emitted too.
*/
IpmbMemoryRegion IpmbMemoryRegistry::alloc(qsizetype minSize, const QString &tag)
{
    Q_D(IpmbMemoryRegistry);
    d->refresh();
    PooledRegion *best = nullptr;
    for (PooledRegion &pooled : d->m_pool) {
        const qsizetype size = pooled.region.size();
        if (!pooled.busy && pooled.tag == tag && size >= minSize && size / 2 <= minSize
            && (!best || size < best->region.size())) {
            best = &pooled;
        }
    }
    if (best) {
        best->busy = true;
        return best->region;
    }
    IpmbMemoryRegion region = IpmbMemoryRegion::create(minSize);
    if (region.isNull()) {
        const IpmbMemoryRegion::Error cause = region.error();
        d->setError(cause == IpmbMemoryRegion::ResourceError   ? ResourceError
                            : cause == IpmbMemoryRegion::OutOfRangeError ? OutOfRangeError
                                                                          : UnknownError,
                    region.errorString());
        return region;
    }
    d->m_pool.push_back({region, tag, true, {}});
    if (!d->m_maintainTimer.isActive())
        d->m_maintainTimer.start();
    return region;
}

/*!
    Releases the pooled regions that have been free for longer than expiryInterval().
*/
void IpmbMemoryRegistry::maintain()
{
    Q_D(IpmbMemoryRegistry);
    d->refresh();
    const int expiry = d->m_expiryInterval;
    d->m_pool.erase(std::remove_if(d->m_pool.begin(), d->m_pool.end(),
                                   [expiry](const PooledRegion &p) {
                                       return !p.busy && p.freeFor.hasExpired(expiry);
                                   }),
                    d->m_pool.end());
    if (d->m_pool.empty())
        d->m_maintainTimer.stop();
}

int IpmbMemoryRegistry::count() const
{
    return int(d_func()->m_pool.size());
}

int IpmbMemoryRegistry::freeCount() const
{
    const auto &pool = d_func()->m_pool;
    return int(std::count_if(pool.begin(), pool.end(),
                             [](const PooledRegion &p) { return IpmbMemoryRegionPrivate::isFree(p.region); }));
}

int IpmbMemoryRegistry::expiryInterval() const
{
    return d_func()->m_expiryInterval;
}

void IpmbMemoryRegistry::setExpiryInterval(int msecs)
{
    Q_D(IpmbMemoryRegistry);
    msecs = qMax(msecs, 0);
    if (d->m_expiryInterval == msecs)
        return;
    d->m_expiryInterval = msecs;
    d->m_maintainTimer.setInterval(qMax(d->m_expiryInterval, 1));
    Q_EMIT expiryIntervalChanged(msecs);
}

/*!
    Returns the error of the last alloc() that failed, or NoError.
    \sa errorString(), clearError()
*/
IpmbMemoryRegistry::Error IpmbMemoryRegistry::error() const
{
    return d_func()->m_error;
}

/*!
    Returns a readable description of error(); empty when there is none.
*/
QString IpmbMemoryRegistry::errorString() const
{
    return d_func()->m_errorString;
}

/*!
    Resets error() to NoError and errorString() to empty. Like QSerialPort::clearError(), it
    emits errorOccurred() with NoError if an error was set, so that bindings see the change.
*/
void IpmbMemoryRegistry::clearError()
{
    Q_D(IpmbMemoryRegistry);
    if (d->m_error != NoError)
        d->setError(NoError, QString());
}

void IpmbMemoryRegistry::connectNotify(const QMetaMethod &signal)
{
    Q_D(IpmbMemoryRegistry);
    if (signal == QMetaMethod::fromSignal(&IpmbMemoryRegistry::regionFreed))
        d->m_watchTimer.start();
}
