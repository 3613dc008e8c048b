// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBREQUESTS_P_H
#define IPMBREQUESTS_P_H

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

#include "ipmbendpoint.h"
#include "ipmberror_p.h"

#include <QtCore/qmutex.h>
#include <QtCore/qpromise.h>

#include <atomic>
#include <optional>
#include <unordered_map>

// The requests of one endpoint that wait for a reply (doc/protocol.md, "Requests, replies and
// undeliverable messages"), each with the promise of its future and its deadline.
//
// Thread-safe: request() threads add, the thread that reads the connection fulfils, the I/O
// thread fails (Undeliverable, timeouts, a lost controller). m_mutex guards m_pending; a promise
// is always finished after it has been taken out of the table and the lock released, since a
// continuation without a context object runs right there, and may call request() again.
class IpmbRequests
{
public:
    quint64 nextId() { return m_nextId.fetch_add(1, std::memory_order_relaxed); }
    // A future for request `id`, which fails with TimeoutError at `deadlineNsecs` (on the
    // endpoint's clock); nullopt with *error set once IpmbLimits::MaxRequestsInFlight wait.
    // *wake says whether the I/O thread must be woken to look at it in time.
    std::optional<QFuture<IpmbMessage>> add(quint64 id, qint64 deadlineNsecs, int timeoutMsecs, IpmbErrorInfo *error,
                                            bool *wake);
    // Forgets it without a word (sending it failed; the caller reports that).
    void remove(quint64 id);
    // Request `id` went on the channel to `peer` (doc/protocol.md, "Direct channels"); 0: through
    // the controller after all.
    void sentOnChannel(quint64 id, quint32 peer);
    // Whether it was waited for (a reply after the timeout or a cancel is dropped). A reply that
    // came on the channel of `channelPeer` (0: from the controller) must be to a request sent there.
    bool fulfil(quint64 id, IpmbMessage &&reply, quint32 channelPeer = 0);
    bool hasOnChannel(quint32 peer) const;
    // The channel to `peer` never opened: what waited in it, its requests too, went through the
    // controller.
    void movedToController(quint32 peer);
    // The requests sent on the channel to `peer`, which ended.
    void failOnChannel(quint32 peer, const IpmbErrorInfo &error);
    // Whether it was waited for (else the id may be a tracked message's).
    bool fail(quint64 id, const IpmbErrorInfo &error);
    void failAll(const IpmbErrorInfo &error);
    // The requests sent through the controller, which was lost: those on channels still wait.
    void failThroughController(const IpmbErrorInfo &error);
    // The I/O thread, before each poll: when it is time, fails the requests whose deadline passed
    // and forgets the cancelled ones. Returns the milliseconds until it should look again (-1:
    // nothing waits).
    int sweep(qint64 nowNsecs);
    bool isEmpty() const;

private:
    struct Pending
    {
        QPromise<IpmbMessage> promise;
        qint64 deadline;        // ns
        int timeoutMsecs;
        quint32 channelPeer = 0;  // sent on the channel to this peer; 0: through the controller
    };
    static void failPromise(QPromise<IpmbMessage> &promise, const IpmbErrorInfo &error);
    // Takes request `id` out of the table (to finish its promise with the lock released).
    std::optional<QPromise<IpmbMessage>> take(quint64 id, quint32 channelPeer = 0);

    std::atomic<quint64> m_nextId {1};
    mutable QMutex m_mutex;
    std::unordered_map<quint64, Pending> m_pending;
    // ns; -1: the I/O thread does not plan to look. Written under m_mutex; sweep() reads it
    // without, so that an endpoint with no request waiting takes no lock per I/O loop.
    std::atomic<qint64> m_nextSweep {-1};
};

#endif // IPMBREQUESTS_P_H
