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
    \inmodule IpmbQt
    \inheaderfile IpmbQt/IpmbMemoryRegistry
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
    busy and is never reused (see the \l {guides/memory.html}{shared memory guide}). The registry is not thread-safe: use it from
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

/*!
    \enum IpmbMemoryRegistry::Error

    Why the last alloc() failed.

    \value NoError No error.
    \value ResourceError The system is out of memory, address space or descriptors.
    \value OutOfRangeError The size asked for is below 1.
    \value UnknownError Any other failure to create a region; errorString() says which.
*/

/*!
    \fn void IpmbMemoryRegistry::regionFreed(const IpmbMemoryRegion &region, const QString &tag)

    Emitted when \a region, pooled with \a tag, becomes free again: every receiver dropped it
    and no copy is left in this process but the pool's. A producer can then alloc() the next
    frame without creating a region. While this signal is connected, the pool looks every 10 ms.
*/

/*!
    \fn void IpmbMemoryRegistry::errorOccurred(IpmbMemoryRegistry::Error error)

    Emitted when alloc() fails with \a error, and with NoError when clearError() resets an error.
*/

/*!
    Constructs an empty registry with the given \a parent.
*/
IpmbMemoryRegistry::IpmbMemoryRegistry(QObject *parent)
    : QObject(parent), d_ptr(std::make_unique<IpmbMemoryRegistryPrivate>(this))
{
    Q_D(IpmbMemoryRegistry);
    d->m_maintainTimer.setInterval(d->m_expiryInterval);
    connect(&d->m_maintainTimer, &QTimer::timeout, this, &IpmbMemoryRegistry::maintain);
    d->m_watchTimer.setInterval(10);
    connect(&d->m_watchTimer, &QTimer::timeout, this, [d] { d->refresh(); });
}

/*!
    Destroys the registry and drops the pool's references to its regions. Regions still held
    elsewhere (copies in this process, receivers) stay valid until those let go.
*/
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

/*!
    Returns the number of regions in the pool, busy or free.
*/
int IpmbMemoryRegistry::count() const
{
    return int(d_func()->m_pool.size());
}

/*!
    Returns the number of pooled regions that are free now: alloc() could hand them out.
*/
int IpmbMemoryRegistry::freeCount() const
{
    const auto &pool = d_func()->m_pool;
    return int(std::count_if(pool.begin(), pool.end(),
                             [](const PooledRegion &p) { return IpmbMemoryRegionPrivate::isFree(p.region); }));
}

/*!
    \property IpmbMemoryRegistry::expiryInterval
    \brief how long, in milliseconds, a pooled region may stay free before maintain() releases
    it.

    The default is 10 seconds; negative values are taken as 0. The registry also runs maintain()
    on its own at this interval while it holds regions.
*/
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
    \property IpmbMemoryRegistry::error
    \brief the error of the last alloc() that failed, or NoError.

    The notifier errorOccurred() is also emitted, with NoError, when clearError() resets it.
    \sa errorString(), clearError()
*/
IpmbMemoryRegistry::Error IpmbMemoryRegistry::error() const
{
    return d_func()->m_error;
}

/*!
    \property IpmbMemoryRegistry::errorString
    \brief a readable description of error(); empty when there is none.
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

/*!
    \reimp
*/
void IpmbMemoryRegistry::connectNotify(const QMetaMethod &signal)
{
    Q_D(IpmbMemoryRegistry);
    if (signal == QMetaMethod::fromSignal(&IpmbMemoryRegistry::regionFreed))
        d->m_watchTimer.start();
}

/*!
    \reimp
*/
void IpmbMemoryRegistry::disconnectNotify(const QMetaMethod &signal)
{
    // The 10 ms watch runs only while someone listens to regionFreed(). An invalid method means
    // "all signals" (disconnect(registry, nullptr, ...)).
    Q_D(IpmbMemoryRegistry);
    if ((!signal.isValid() || signal == QMetaMethod::fromSignal(&IpmbMemoryRegistry::regionFreed))
        && !isSignalConnected(QMetaMethod::fromSignal(&IpmbMemoryRegistry::regionFreed))) {
        d->m_watchTimer.stop();
    }
}
