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
#include "ipmbselector.h"

#include <QtCore/qbytearray.h>
#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qhash.h>
#include <QtCore/qset.h>

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
    struct Routed
    {
        int deliveries = 0;         // receivers that got it; -1: buffered for its ttl
        Peer *receiver = nullptr;   // a unicast's
        bool noMatch = false;       // nobody matched, and no ttl
    };
    IpmbConnection::Action routeMatched(Peer &from, QByteArrayView selectorBytes, const IpmbConnection::Frame &frame,
                                        const IpmbProtocol::Call &call, Routed *routed);

    enum class Room { Yes, Full, Stuck };
    Room roomIn(Peer &to);
    static bool hasRoom(const Peer &to);
    bool decodeSelector(Peer &from, QByteArrayView selectorBytes);
    const std::vector<Peer *> &matchesFor(Peer &from, QByteArrayView selectorBytes, bool *ok);
    const std::vector<Peer *> &addressedMatch(Peer &from, QByteArrayView selectorBytes, quint32 target, bool *ok);
    void deliver(Peer &to, const Peer &from, const IpmbConnection::Frame &frame);
    void buffer(const Peer &from, const IpmbConnection::Frame &frame, qint64 ttlMsecs, const IpmbProtocol::Call &call);
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

    // Presence (ipmbcontrollerpresence.cpp, doc/protocol.md "Presence").
    quint32 allocateEndpointId(quint32 claimed);
    void welcome(Peer &peer, const IpmbProtocol::Hello &hello);
    IpmbConnection::Action handleWatch(Peer &peer, const IpmbConnection::Frame &frame);
    void sendPeerList(Peer &to);
    bool mayTellPeers(Peer &to);
    void announceLeft(const Peer &left);

    // Direct channels (ipmbcontrollerchannels.cpp, doc/protocol.md "Direct channels").
    IpmbConnection::Action handleIntroduce(Peer &from, const IpmbConnection::Frame &frame);
    IpmbConnection::Action handleChannel(Peer &from, const IpmbConnection::Frame &frame);
    void failIntroductionsOf(const Peer &left);

    // Requests and tracked messages (ipmbcontrollercalls.cpp, doc/protocol.md "Requests, replies
    // and undeliverable messages").
    IpmbConnection::Action routeReply(Peer &from, const IpmbConnection::Frame &frame, const IpmbProtocol::Call &call,
                                      Routed *routed);
    void routedCall(Peer &from, const IpmbProtocol::Call &call, const Routed &routed);
    void recordRequest(Peer &replier, quint32 requester, const IpmbProtocol::Call &call);
    void tellUndeliverable(quint32 senderId, const IpmbProtocol::Call &call, IpmbErrorCode why);
    void failRequestsTo(const Peer &replier);

    // Monitors (ipmbcontrollermonitors.cpp, doc/protocol.md "Monitors").
    void monitorJoined(Peer &monitor);
    void tellMonitoring(quint32 monitors);
    void monitorLeft(const Peer &monitor);
    void observeRouted(const Peer &from, const IpmbConnection::Frame &frame, const IpmbProtocol::Call &call,
                       const Routed &routed);
    IpmbConnection::Action handleObserved(Peer &from, const IpmbConnection::Frame &frame);
    // Queues what `write` appends for each monitor with room; counts a drop for the others.
    template <typename Write> void toMonitors(Write &&write);

    IpmbPlatform::Listener m_listener;
    QByteArray m_token;
    qint64 m_uid;
    IpmbPlatform::Waker m_waker;
    std::atomic<bool> m_stopping {false};
    QThread *m_thread = nullptr;
    QElapsedTimer m_clock;

    std::vector<std::unique_ptr<Peer>> m_peers;
    std::vector<Peer *> m_addressed;     // addressedMatch()'s answer
    std::vector<Peer *> m_monitors;      // the welcomed, live monitors; empty: monitoring costs nothing
    QHash<quint32, Peer *> m_endpoints;  // the welcomed, live peers by endpoint id
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

// One connection, from its accept to its end.
struct IpmbController::Peer
{
    explicit Peer(IpmbPlatform::Socket socket) : connection(socket) { }

    IpmbConnection connection;
    IpmbPlatform::Credentials credentials;
    QDeadlineTimer helloDeadline;
    quint32 endpointId = 0;      // 0 until welcomed
    quint32 watchFeatures = 0;   // IpmbProtocol::WatchPeers | RoutesItself (doc/protocol.md, "Presence")
    bool watching() const { return watchFeatures != 0; }  // wants Peer frames
    bool missedPeers = false;    // Peer frames were not queued while it was stuck: list again
    bool hostsController = false;
    bool monitor = false;        // never a receiver, never listed (doc/protocol.md, "Monitors")
    qint64 joinedAt = 0;         // ms since the epoch
    bool dead = false;
    bool writeClosed = false;    // its end is closed for writing (EPIPE): read what is left, write nothing
    bool parked = false;         // not read from until the receivers of its next frame have room
    const Peer *waitingFor = nullptr;  // while parked: the full receiver it waits for
    bool stuck = false;          // its queue is full and it read nothing for IpmbLimits::StallTimeoutMsecs
    qint64 lastProgress = 0;     // m_clock time at which its queue last moved
    IpmbLabel label;
    QByteArray senderBlock;      // inserted in front of every message this peer sends
    quint64 dropped = 0;         // messages for this peer dropped since the last Dropped notice
    quint64 framesSeen = 0;      // connection.framesReceived() at the last look
    qint64 frameStart = -1;      // m_clock ms since which its unfinished frame has been read; -1: none
    // Requests delivered to it without a reply yet: (requester id, request id).
    QSet<std::pair<quint32, quint64>> pendingRequests;
    // The endpoints it asked to be introduced to, whose Channel has not come yet.
    QSet<quint32> introductions;

    // Most senders use one selector over and over: keep its decoding and its matches.
    QByteArray lastSelectorBytes;
    IpmbSelector lastSelector;
    quint64 lastGeneration = ~quint64(0);
    std::vector<Peer *> lastMatches;
};

#endif // IPMBCONTROLLER_P_H
