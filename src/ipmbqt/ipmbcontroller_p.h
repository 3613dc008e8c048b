// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBCONTROLLER_P_H
#define IPMBCONTROLLER_P_H

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

#include "ipmbconnection_p.h"
#include "ipmblogging_p.h"
#include "ipmbplatform_p.h"

#include <QtCore/qbytearray.h>
#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qelapsedtimer.h>

#include <atomic>
#include <deque>
#include <memory>
#include <vector>

QT_BEGIN_NAMESPACE
class QThread;
QT_END_NAMESPACE

// The router of one bus. It runs on a thread of its own inside the process of the endpoint that
// won the election, owns the listening socket, and never decodes payloads (doc/protocol.md).
class IpmbController
{
public:
    // Takes ownership of `listener` (its socket and its election lock).
    IpmbController(const IpmbPlatform::Listener &listener, const QByteArray &token);
    ~IpmbController();
    Q_DISABLE_COPY_MOVE(IpmbController)

    void start();

    // Its queues, budgets and timeouts are in ipmblimits_p.h.

    // Turns the one reference per region that a sender adds for a message in flight into
    // `delta` more (one per extra receiver; -1 when nobody got it).
    static void addRegionReferences(const IpmbConnection::Frame &frame, int delta);
    static void addRegionReferences(QByteArrayView attachments, const QList<IpmbNativeHandle> &handles, int delta);

private:
    struct Peer;
    struct Buffered;

    void run();
    void acceptPeers();
    void serve(Peer &peer);
    IpmbConnection::Action handleFrame(Peer &peer, const IpmbConnection::Frame &frame);
    IpmbConnection::Action handleHello(Peer &peer, const IpmbConnection::Frame &frame);
    void refuse(Peer &peer, IpmbErrorCode error, const QString &reason);
    IpmbConnection::Action route(Peer &from, const IpmbConnection::Frame &frame);
    IpmbConnection::Action routeMatched(Peer &from, const IpmbConnection::Frame &frame, int *deliveries);

    enum class Room { Yes, Full, Stuck };
    Room roomIn(Peer &to);
    static bool hasRoom(const Peer &to);
    const std::vector<Peer *> &matchesFor(Peer &from, QByteArrayView selectorBytes, bool *ok);
    void deliver(Peer &to, const Peer &from, const IpmbConnection::Frame &frame);
    void buffer(const Peer &from, const IpmbConnection::Frame &frame, qint64 ttlMsecs);
    void deliverBuffered(Peer &joined);
    void expireBuffered();
    void dropOldestBuffered();
    void forgetBuffered(const Buffered &buffered);
    void flushAll();
    void dropPeer(Peer &peer, const QString &reason, bool warn);
    void noteFrameProgress(Peer &peer);
    qint64 frameDeadline(const Peer &peer) const;
    void dropUnfinishedFrames();
    qint64 heldFrameBytes() const;
    void removeDeadPeers();
    int pollTimeout() const;

    IpmbPlatform::Listener m_listener;
    QByteArray m_token;
    qint64 m_uid;
    IpmbPlatform::Waker m_waker;
    std::atomic<bool> m_stopping {false};
    QThread *m_thread = nullptr;
    QElapsedTimer m_clock;

    std::vector<std::unique_ptr<Peer>> m_peers;
    quint32 m_nextEndpointId = 1;
    quint64 m_generation = 0;   // changes whenever the set of joined peers changes
    quint64 m_roundRobin = 0;
    std::deque<Buffered> m_buffered;
    qint64 m_bufferedBytes = 0;
    qsizetype m_bufferedHandles = 0;
    qint64 m_heldFrameBytes = 0;      // heldFrameBytes() as of the last look
    qint64 m_acceptPausedUntil = -1;  // m_clock ms
    bool m_memoryEpisode = false;     // queues or frames held MemoryEpisodeBytes since the last release
    IpmbLogLimiter m_warnings;
};

#endif // IPMBCONTROLLER_P_H
