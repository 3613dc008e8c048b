// SPDX-License-Identifier: BSD-3-Clause
// Presence on the endpoint's side (doc/protocol.md, "Presence"): the API of IpmbEndpoint for who
// else is on the bus, and the endpoint-thread part of IpmbEndpointPrivate that keeps the list. The
// I/O thread only notes the Peer frames it reads (notePeers(), ipmbendpointio.cpp).
#include "ipmbendpoint.h"
#include "ipmbendpoint_p.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qpointer.h>
#include <QtCore/qtimer.h>

#include <algorithm>

/*!
    \property IpmbEndpoint::watchingPeers
    \brief whether this endpoint keeps a list of the other endpoints on the bus.

    While it is \c true, peers() lists them and peerJoined() and peerLeft() report each change;
    while it is \c false (the default), the controller sends this endpoint nothing about the others,
    so a bus of many endpoints pays for presence only where somebody asked. waitForPeer() and
    whenPeer() turn it on. It may be changed at any time; turning it off empties peers() without
    signals.

    The list is complete once the controller's list has arrived, shortly after joining (or after
    turning this on): the peers already on the bus are reported then, each with peerJoined(). An
    endpoint hears that a peer joined before it gets that peer's first message, and that it left
    after its last one (with messageReceived(); receive() takes messages in its own time). Across
    failover, an endpoint that reconnects to the new controller keeps its endpointId() and is
    reported neither as leaving nor as joining again; every endpoint that died meanwhile is
    reported as left once, at the latest after joinTimeout (\l {guides/presence-and-requests.html}{presence guide}).

    The list lives in the endpoint's thread: call peers(), waitForPeer() and whenPeer() there,
    as the signals are emitted there.
*/
bool IpmbEndpoint::isWatchingPeers() const { return d_func()->m_watchPeers.load(std::memory_order_relaxed); }

void IpmbEndpoint::setWatchingPeers(bool watching)
{
    Q_D(IpmbEndpoint);
    if (d->m_watchPeers.load(std::memory_order_relaxed) == watching)
        return;
    d->setWatching(watching);
    Q_EMIT watchingPeersChanged(watching);
}

/*!
    Returns the other endpoints on the bus, in the order they joined; empty while watchingPeers is
    \c false or the endpoint is not joined.
*/
QList<IpmbPeer> IpmbEndpoint::peers() const
{
    return d_func()->m_peerTable.peers();
}

/*!
    \overload
    Returns the other endpoints whose label \a filter matches.
*/
QList<IpmbPeer> IpmbEndpoint::peers(const IpmbLabelOp &filter) const
{
    QList<IpmbPeer> matching = peers();
    matching.removeIf([&](const IpmbPeer &peer) { return !filter.matches(peer.label()); });
    return matching;
}

/*!
    Blocks until an endpoint whose label \a filter matches is on the bus, or \a msecs pass.
    Returns \c true at once if one is there already; otherwise emits the signals of what arrives
    meanwhile (as waitForJoined() does), and returns \c false on timeout with TimeoutError set,
    or when the endpoint is not joining or joined. Turns watchingPeers on.
*/
bool IpmbEndpoint::waitForPeer(const IpmbLabelOp &filter, int msecs)
{
    Q_D(IpmbEndpoint);
    setWatchingPeers(true);
    const QDeadlineTimer deadline(msecs);
    for (;;) {
        d->syncFromIo();
        if (!peers(filter).isEmpty())
            return true;
        if (d->m_state == UnjoinedState) {
            d->setError(IpmbErrorInfo(IpmbErrorCode::Disconnected, tr("waitForPeer: the endpoint is not joined")));
            return false;
        }
        // Notes that wait for messages read before them are applied by the next syncFromIo().
        if (!d->m_peerNotes.empty())
            continue;
        QMutexLocker locker(&d->m_mutex);
        if (d->m_ioPeerNotes.empty() && d->m_ioStateChanges.isEmpty()
            && !d->m_ioStateChanged.wait(&d->m_mutex, deadline)) {
            locker.unlock();
            d->syncFromIo();
            if (!peers(filter).isEmpty())
                return true;
            d->setError(IpmbErrorInfo(IpmbErrorCode::Timeout, tr("waitForPeer: no endpoint matching %1 within %2 ms")
                                                                      .arg(filter.toString()).arg(msecs)));
            return false;
        }
    }
}

/*!
    Returns a future for an endpoint whose label \a filter matches: one on the bus already (the
    future is then finished), or the first that joins. The future is fulfilled in the endpoint's
    thread; it is canceled when the endpoint leaves the bus or watchingPeers is turned off, and
    cancelling it stops the wait. Turns watchingPeers on.

    \code
    endpoint.whenPeer(IpmbLabelOp(u"worker"_s)).then(this, [this](const IpmbPeer &worker) {
        startWork(worker);
    });
    \endcode
*/
QFuture<IpmbPeer> IpmbEndpoint::whenPeer(const IpmbLabelOp &filter)
{
    Q_D(IpmbEndpoint);
    setWatchingPeers(true);
    const QList<IpmbPeer> present = peers(filter);
    if (!present.isEmpty())
        return QtFuture::makeReadyFuture(present.first());
    auto &waiters = d->m_peerWaiters;
    waiters.erase(std::remove_if(waiters.begin(), waiters.end(),
                                 [](const IpmbEndpointPrivate::PeerWaiter &w) { return w.promise.isCanceled(); }),
                  waiters.end());
    IpmbEndpointPrivate::PeerWaiter waiter {filter, QPromise<IpmbPeer>()};
    waiter.promise.start();
    QFuture<IpmbPeer> future = waiter.promise.future();
    d->m_peerWaiters.push_back(std::move(waiter));
    return future;
}

/*!
    \fn void IpmbEndpoint::peerJoined(const IpmbPeer &peer)

    Emitted, while watchingPeers is \c true, with the \a peer of each endpoint already on the
    bus once the controller's list arrives, and of each endpoint that joins after.
*/

/*!
    \fn void IpmbEndpoint::peerLeft(const IpmbPeer &peer)

    Emitted, while watchingPeers is \c true, once with the \a peer of each listed endpoint that
    leaves the bus, however it leaves: leave(), its process exiting or being killed, or being
    dropped by the controller.
*/

void IpmbEndpointPrivate::setWatching(bool watching)
{
    m_watchPeers = watching;  // the next Hello says so
    if (!watching)
        clearPeers();
    if (m_state == IpmbEndpoint::UnjoinedState)
        return;
    // To the controller after the Hello (which may have said so already: then it changes nothing).
    // Routing keeps its Peer frames coming (requestRoutes(), serialised by the same lock).
    QMutexLocker locker(&m_channelsMutex);
    QByteArray frame;
    IpmbProtocol::appendWatch(frame, (watching ? IpmbProtocol::WatchPeers : 0)
                                      | (m_routing ? IpmbProtocol::RoutesItself : 0));
    IpmbErrorInfo error;
    if (!m_outbox.send(frame, {}, &error))
        qCWarning(lcIpmbEndpoint, "watchingPeers: %s", qPrintable(error.message));
}

// Forgets the list without signals, and cancels the futures of whenPeer().
void IpmbEndpointPrivate::clearPeers()
{
    m_peerTable.clear();
    m_peerNotes.clear();
    m_peerWaiters.clear();
    if (m_peerExpiry)
        m_peerExpiry->stop();
}

void IpmbEndpointPrivate::applyPeerNotes(quint64 deliveredBefore, bool all, const QPointer<IpmbEndpoint> &guard)
{
    QList<IpmbPeerTable::Change> changes;
    while (guard && !m_peerNotes.empty() && (all || m_peerNotes.front().messagesBefore <= deliveredBefore)) {
        const IpmbPeerTable::Note note = std::move(m_peerNotes.front().note);
        m_peerNotes.pop_front();
        changes.clear();
        m_peerTable.apply(note, m_clock.elapsed(), m_joinTimeout, &changes);
        reportPeerChanges(changes, guard);
    }
}

void IpmbEndpointPrivate::reportPeerChanges(const QList<IpmbPeerTable::Change> &changes,
                                            const QPointer<IpmbEndpoint> &guard)
{
    Q_Q(IpmbEndpoint);
    for (const IpmbPeerTable::Change &change : changes) {
        if (!guard || !m_watchPeers.load(std::memory_order_relaxed))
            return;
        if (!change.joined) {
            Q_EMIT q->peerLeft(change.peer);
            continue;
        }
        Q_EMIT q->peerJoined(change.peer);
        if (!guard)
            return;
        // Fulfilled after the signal, so that peers() lists it in a continuation.
        std::vector<PeerWaiter> waiters = std::exchange(m_peerWaiters, {});
        for (PeerWaiter &waiter : waiters) {
            if (waiter.promise.isCanceled())
                continue;
            if (waiter.filter.matches(change.peer.label())) {
                waiter.promise.addResult(change.peer);
                waiter.promise.finish();
            } else {
                m_peerWaiters.push_back(std::move(waiter));
            }
        }
    }
    if (!guard)
        return;
    if (m_peerTable.hasUnconfirmed()) {
        if (!m_peerExpiry) {
            m_peerExpiry = new QTimer(q);
            m_peerExpiry->setInterval(IpmbLimits::PeerCheckMsecs);
            QObject::connect(m_peerExpiry, &QTimer::timeout, q, [this] { expirePeers(); });
        }
        if (!m_peerExpiry->isActive())
            m_peerExpiry->start();
    } else if (m_peerExpiry) {
        m_peerExpiry->stop();
    }
}

void IpmbEndpointPrivate::expirePeers()
{
    QList<IpmbPeerTable::Change> changes;
    m_peerTable.expire(m_clock.elapsed(), &changes);
    reportPeerChanges(changes, QPointer<IpmbEndpoint>(q_ptr));
}
