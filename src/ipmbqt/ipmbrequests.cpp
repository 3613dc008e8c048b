// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbrequests_p.h"

#include <algorithm>
#include "ipmbendpoint_p.h"
#include "ipmblimits_p.h"

#include <QtCore/qcoreapplication.h>

#include <vector>

/*!
    \class IpmbRequestError
    \inmodule IpmbQt
    \inheaderfile IpmbQt/IpmbEndpoint
    \brief Why a request of IpmbEndpoint::request() got no reply: the exception its future fails with.

    Catch it with QFuture::onFailed():

    \code
    endpoint.request(IpmbSelector::unicast(IpmbLabelOp("renderer")), page, 5000)
        .then(this, [this](const IpmbMessage &reply) { show(reply.payload()); })
        .onFailed(this, [this](const IpmbRequestError &e) { showError(e.errorString()); });
    \endcode

    error() is one of IpmbEndpoint::TimeoutError (no reply in time), NoRouteError (no endpoint
    matched), PeerLeftError (the replier left or died before it replied), DisconnectedError (this
    endpoint left the bus before the reply came, or lost the controller the request went through), QueueFullError (too
    many requests wait already) or InvalidArgumentError (a multicast selector, a payload that
    cannot be sent).
*/

/*! Constructs an error with \a error and its \a errorString. */
IpmbRequestError::IpmbRequestError(IpmbEndpoint::Error error, const QString &errorString)
    : m_error(error), m_errorString(errorString), m_what(errorString.toUtf8())
{
}

/*! Returns why the request failed. */
IpmbEndpoint::Error IpmbRequestError::error() const { return m_error; }
/*! Returns a readable text for error(). */
QString IpmbRequestError::errorString() const { return m_errorString; }
/*! \reimp */
const char *IpmbRequestError::what() const noexcept { return m_what.constData(); }
/*! \reimp */
void IpmbRequestError::raise() const { throw *this; }
/*! \reimp */
IpmbRequestError *IpmbRequestError::clone() const { return new IpmbRequestError(*this); }

std::optional<QFuture<IpmbMessage>> IpmbRequests::add(quint64 id, qint64 deadlineNsecs, int timeoutMsecs,
                                                      IpmbErrorInfo *error, bool *wake)
{
    QMutexLocker locker(&m_mutex);
    const qint64 planned = m_nextSweep.load(std::memory_order_relaxed);
    *wake = planned < 0 || planned > deadlineNsecs;
    if (*wake)
        m_nextSweep = 0;  // at once: one wake-up is enough
    if (qsizetype(m_pending.size()) >= IpmbLimits::MaxRequestsInFlight) {
        *error = IpmbErrorInfo(IpmbErrorCode::QueueFull,
                               QCoreApplication::translate("IpmbEndpoint", "request: %1 requests wait for their replies already")
                                       .arg(m_pending.size()));
        return std::nullopt;
    }
    Pending &pending = m_pending[id];
    pending.deadline = deadlineNsecs;
    pending.timeoutMsecs = timeoutMsecs;
    pending.promise.start();
    return pending.promise.future();
}

void IpmbRequests::remove(quint64 id)
{
    QMutexLocker locker(&m_mutex);
    m_pending.erase(id);
}

std::optional<QPromise<IpmbMessage>> IpmbRequests::take(quint64 id, quint32 channelPeer)
{
    QMutexLocker locker(&m_mutex);
    const auto it = m_pending.find(id);
    // From a channel, only the reply of the peer the request went to on it: nobody else can
    // vouch for it (the controller checks those it forwards).
    if (it == m_pending.end() || (channelPeer != 0 && it->second.channelPeer != channelPeer))
        return std::nullopt;
    QPromise<IpmbMessage> promise = std::move(it->second.promise);
    m_pending.erase(it);
    return promise;
}

void IpmbRequests::sentOnChannel(quint64 id, quint32 peer)
{
    QMutexLocker locker(&m_mutex);
    if (const auto it = m_pending.find(id); it != m_pending.end())
        it->second.channelPeer = peer;
}

void IpmbRequests::movedToController(quint32 peer)
{
    QMutexLocker locker(&m_mutex);
    for (auto &[id, request] : m_pending) {
        if (request.channelPeer == peer)
            request.channelPeer = 0;
    }
}

void IpmbRequests::failOnChannel(quint32 peer, const IpmbErrorInfo &error)
{
    std::vector<Pending> failed;
    {
        QMutexLocker locker(&m_mutex);
        for (auto it = m_pending.begin(); it != m_pending.end();) {
            if (it->second.channelPeer == peer) {
                failed.push_back(std::move(it->second));
                it = m_pending.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (Pending &request : failed)
        failPromise(request.promise, error);
}

bool IpmbRequests::fulfil(quint64 id, IpmbMessage &&reply, quint32 channelPeer)
{
    std::optional<QPromise<IpmbMessage>> promise = take(id, channelPeer);
    if (!promise)
        return false;
    promise->addResult(std::move(reply));
    promise->finish();
    return true;
}

void IpmbRequests::failPromise(QPromise<IpmbMessage> &promise, const IpmbErrorInfo &error)
{
    promise.setException(IpmbRequestError(IpmbEndpointPrivate::publicError(error.code), error.message));
    promise.finish();
}

bool IpmbRequests::fail(quint64 id, const IpmbErrorInfo &error)
{
    std::optional<QPromise<IpmbMessage>> promise = take(id);
    if (!promise)
        return false;
    failPromise(*promise, error);
    return true;
}

void IpmbRequests::failAll(const IpmbErrorInfo &error)
{
    std::unordered_map<quint64, Pending> pending;
    {
        QMutexLocker locker(&m_mutex);
        pending.swap(m_pending);
    }
    for (auto &[id, request] : pending)
        failPromise(request.promise, error);
}

void IpmbRequests::failThroughController(const IpmbErrorInfo &error)
{
    failOnChannel(0, error);
}

int IpmbRequests::sweep(qint64 nowNsecs)
{
    std::vector<Pending> expired;
    qint64 next = -1;
    int wait;
    // Not due (or nothing waits): no lock. A request added meanwhile wakes this thread (add()).
    if (const qint64 planned = m_nextSweep.load(std::memory_order_relaxed); planned < 0 || planned > nowNsecs)
        return planned < 0 ? -1 : int((planned - nowNsecs + IpmbLimits::NsecsPerMsec - 1) / IpmbLimits::NsecsPerMsec);
    {
        QMutexLocker locker(&m_mutex);
        for (auto it = m_pending.begin(); it != m_pending.end();) {
            if (it->second.promise.isCanceled()) {
                it = m_pending.erase(it);   // its future was cancelled: nobody waits
            } else if (it->second.deadline <= nowNsecs) {
                expired.push_back(std::move(it->second));
                it = m_pending.erase(it);
            } else {
                next = next < 0 ? it->second.deadline : qMin(next, it->second.deadline);
                ++it;
            }
        }
        // Cancelled futures are noticed at the next look, so look at least every RequestSweepMsecs.
        wait = next < 0 ? -1
                        : int(qBound(qint64(0), (next - nowNsecs + IpmbLimits::NsecsPerMsec - 1) / IpmbLimits::NsecsPerMsec,
                                             qint64(IpmbLimits::RequestSweepMsecs)));
        m_nextSweep = wait < 0 ? -1 : nowNsecs + qint64(wait) * IpmbLimits::NsecsPerMsec;
    }
    for (Pending &request : expired) {
        failPromise(request.promise, IpmbErrorInfo(IpmbErrorCode::Timeout,
                QCoreApplication::translate("IpmbEndpoint", "request: no reply within %1 ms").arg(request.timeoutMsecs)));
    }
    return wait;
}

bool IpmbRequests::hasOnChannel(quint32 peer) const
{
    QMutexLocker locker(&m_mutex);
    return std::any_of(m_pending.begin(), m_pending.end(), [&](const auto &p) { return p.second.channelPeer == peer; });
}

bool IpmbRequests::isEmpty() const
{
    QMutexLocker locker(&m_mutex);
    return m_pending.empty();
}
