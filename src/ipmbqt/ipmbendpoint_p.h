// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBENDPOINT_P_H
#define IPMBENDPOINT_P_H

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
#include "ipmbconnection_p.h"
#include "ipmbcontroller_p.h"
#include "ipmberror_p.h"
#include "ipmbinbox_p.h"
#include "ipmblogging_p.h"
#include "ipmboutbox_p.h"
#include "ipmbpeertable_p.h"
#include "ipmbrequests_p.h"
#include "ipmbroutes_p.h"
#include "ipmbpayloadregionpool_p.h"
#include "ipmbplatform_p.h"

#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qpromise.h>
#include <QtCore/qmutex.h>
#include <QtCore/qset.h>
#include <QtCore/qwaitcondition.h>

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

QT_BEGIN_NAMESPACE
class QThread;
class QSocketNotifier;
class QTimer;
QT_END_NAMESPACE

// Three kinds of thread use an endpoint:
// - the endpoint's thread (where the IpmbEndpoint lives): API calls and signal emission;
// - the I/O thread (started by join()): election, handshake, reading, writing, failover;
// - any thread in send() (IpmbOutbox) or receive() (IpmbInbox).
// The way out and the way in are classes of their own, each with its lock and its rule; this class
// holds what the I/O thread publishes for the endpoint's thread, guarded by m_mutex, and what each
// of the two threads owns alone. Lock order: m_mutex is never held while the inbox's or the
// outbox's lock is taken, and they call back (Owner, the written callback) without theirs.
class IpmbEndpointPrivate final : private IpmbInbox::Owner
{
    Q_DECLARE_PUBLIC(IpmbEndpoint)

public:
    explicit IpmbEndpointPrivate(IpmbEndpoint *q);
    static IpmbEndpointPrivate *get(IpmbEndpoint *q) { return q->d_func(); }
    static const IpmbEndpointPrivate *get(const IpmbEndpoint *q) { return q->d_func(); }
    // The one conversion of the lower layers' error codes to IpmbEndpoint::Error.
    static IpmbEndpoint::Error publicError(IpmbErrorCode code);
    ~IpmbEndpointPrivate();

    enum class Outcome { Stopped, Lost, Failed };  // how serving a connection ended

    // Endpoint thread.
    void startJoin();
    enum class Signals { All, None };
    void stop(Signals emitting = Signals::All);
    void setError(const IpmbErrorInfo &error);  // any thread
    // `enableReading`: the endpoint's thread may read for itself again (updateReadNotifier()).
    void syncFromIo(bool enableReading = true);
    // Signal delivery: this thread reads for itself while it is idle, woken by a notifier on the
    // inbox's readiness handle (doc/concepts.md, "Who reads the socket").
    void updateReadNotifier();
    void readInThisThread();
    QSocketNotifier *m_readNotifier = nullptr;
    // Set while readInThisThread() reads: what it reads it delivers itself, without a posted sync.
    static inline thread_local bool t_deliversWhatItReads = false;
    // Any thread: encodes `message` (with `call`: a tracked message, a request or a reply) and
    // queues it for the controller; `verb` names the API call in error messages.
    // A reply to a request that came on a channel goes back on it (`replyOnChannel`).
    bool sendMessage(const IpmbMessage &message, const IpmbProtocol::Call &call, const QString &verb,
                     IpmbErrorInfo *error, bool replyOnChannel = false);
    IpmbRequests m_requests;            // thread-safe

    // Presence, in the endpoint's thread (IpmbPeerTable has the rules).
    struct PeerNote
    {
        IpmbPeerTable::Note note;
        quint64 messagesBefore;     // IpmbInbox::queuedCount() when it was read
    };
    struct PeerWaiter
    {
        IpmbLabelOp filter;
        QPromise<IpmbPeer> promise;
    };
    void setWatching(bool watching);
    void clearPeers();
    // Applies the notes whose messages before them are delivered (all, with `all`), in order.
    void applyPeerNotes(quint64 deliveredBefore, bool all, const QPointer<IpmbEndpoint> &guard);
    void reportPeerChanges(const QList<IpmbPeerTable::Change> &changes, const QPointer<IpmbEndpoint> &guard);
    void expirePeers();
    IpmbPeerTable m_peerTable;
    std::deque<PeerNote> m_peerNotes;   // taken from the I/O thread, not yet applied
    std::vector<PeerWaiter> m_peerWaiters;
    QTimer *m_peerExpiry = nullptr;     // while m_peerTable has unconfirmed peers

    IpmbEndpoint *q_ptr;
    QString m_identifier;
    IpmbLabel m_label;
    QByteArray m_token;
    int m_joinTimeout = 10000;
    IpmbEndpoint::State m_state = IpmbEndpoint::UnjoinedState;
    bool m_isController = false;
    quint32 m_endpointId = 0;           // from the controller's Welcome; 0 while not joined
    quint64 m_droppedTotal = 0;
    std::atomic<int> m_receiverConnections {0};
    std::atomic<int> m_bytesWrittenConnections {0};
    std::atomic<bool> m_errorSignalPosted {false};  // an errorOccurred() for another thread's error
    // Payloads of at least this many encoded bytes travel in a region (0: never).
    qint64 m_payloadRegionThreshold = IpmbLimits::PayloadRegionThresholdBytes;
    IpmbPayloadRegionPool m_payloadRegions;     // thread-safe
    QElapsedTimer m_clock;              // started in the constructor
    QThread *m_ioThread = nullptr;

    // Published by the I/O thread (and by any thread's setError()); guarded by m_mutex.
    mutable QMutex m_mutex;
    IpmbErrorInfo m_error;              // set by any thread (send(), receive()), see setError()
    QWaitCondition m_ioStateChanged;
    IpmbEndpoint::State m_ioState = IpmbEndpoint::UnjoinedState;
    QList<IpmbEndpoint::State> m_ioStateChanges;  // since the last syncFromIo(), in order
    bool m_ioIsController = false;
    quint32 m_ioEndpointId = 0;         // the id the last Welcome gave
    IpmbErrorInfo m_ioError;            // to report once in the endpoint thread
    quint64 m_ioDropped = 0;            // to report once in the endpoint thread
    std::vector<PeerNote> m_ioPeerNotes; // Peer frames and lost controllers, in order
    qint64 m_ioPeerNoteBytes = 0;       // of m_ioPeerNotes
    std::vector<std::pair<quint64, IpmbErrorCode>> m_ioUndeliverable;  // tracked sends that reached nobody
    qint64 m_ioBytesWritten = 0;        // likewise, counted only while bytesWritten() is connected
    bool m_syncPosted = false;
    void postSyncLocked();

    // The I/O thread only (and the endpoint thread before start / after the thread ended).
    void ioMain();
    IpmbPlatform::Socket electAndConnect(const QDeadlineTimer &deadline, IpmbErrorInfo *error);
    Outcome serveConnection(const QDeadlineTimer &joinDeadline);
    void drainOutput(int msecs);
    void setIoState(IpmbEndpoint::State state);
    void failIo(const IpmbErrorInfo &error);
    bool notePeers(const IpmbPeerTable::Note &note);
    bool waitOnWaker(int msecs);
    // IpmbInbox::Owner: called by whichever thread holds the read role.
    bool controlFrame(const IpmbConnection::Frame &frame, IpmbInbox::ReadOutcome *outcome) override;
    void messagesArrived() override;
    void replyArrived(quint64 id, IpmbMessage &&reply, quint32 channelPeer) override;
    bool channelFrame(quint32 peer, const IpmbConnection::Frame &frame, QString *why) override;

    // Direct channels (ipmbendpointchannels.cpp, doc/protocol.md "Direct channels").
    struct Channel
    {
        Channel(IpmbEndpointPrivate *endpoint, quint32 peer, bool incoming);
        const quint32 peer;
        const bool incoming;            // the peer opened it: its messages come in, replies go out
        IpmbOutbox outbox;              // thread-safe
        // Guarded by m_channelsMutex:
        bool open = false;              // else being opened: the outbox queues
        quint64 dropped = 0;            // messages for a stuck peer, not reported to it yet
        qint64 lastUsed = 0;            // m_clock ns of the last message sent on it
        // Closing for want of use: the outbox holds what comes after its Close (isHolding()),
        // for the channel that replaces it once the peer has closed its end.
        // The I/O thread's:
        std::unique_ptr<IpmbConnection> connection;
    };
    using ChannelPtr = std::shared_ptr<Channel>;
    // Any thread: where a message for `receivers` goes (all through the controller while the
    // endpoint does not route itself), and the sending.
    bool routeMessage(const IpmbSelector &selector, std::vector<quint32> *receivers);
    bool sendRouted(const std::vector<quint32> &receivers, QByteArray &frame, const QList<IpmbNativeHandle> &handles,
                    const QList<IpmbMemoryRegion> &regions, const IpmbProtocol::Call &call, IpmbErrorInfo *error);
    void requestRoutes();
    // bytesWritten(): every outbox reports its writes, while the signal is connected.
    void setUpOutbox(IpmbOutbox &outbox);
    void countWrites();
    void introduce(quint32 peer);
    // The I/O thread.
    bool mayQueueChannelEvent(QString *why);
    void handleChannelEvents();
    void acceptChannel(const IpmbProtocol::Introduced &introduced);
    void channelAnswered(const IpmbProtocol::Channel &answer, IpmbNativeHandle socket);
    void closeChannel(const ChannelPtr &channel, const QString &why);
    void closeAllChannels(int drainMsecs);
    void abandonOpeningChannels();
    void reintroduce();
    void reportChannelDrops();
    void closeIdleChannels(qint64 nowNsecs);
    std::vector<ChannelPtr> channelsToServe();

    IpmbLogLimiter m_ioWarnings;        // the I/O thread's
    IpmbRoutes m_routes;                // thread-safe
    std::atomic<bool> m_routing {false};// this endpoint asked for the membership to route by
    // Monitors (doc/protocol.md, "Monitors"): this endpoint is one (set before join()), and the bus
    // has some (from the controller): then what this endpoint writes on channels is reported.
    bool m_monitor = false;
    bool m_joinsOnly = false;           // never hosts the controller (set before join(), for the tools)
    std::atomic<bool> m_busMonitored {false};
    // The Observed frame that reports `frame` (a Message as written) going to `target` on a channel.
    static QByteArray observedOnChannel(const QByteArray &frame, quint32 target);
    void reportToMonitors(QByteArray &observed);
    std::atomic<quint32> m_selfId {0};  // the endpoint id, for any thread
    std::atomic<quint64> m_unicastTurn {0};
    // Lock order: m_channelsMutex, then a channel's or the controller's outbox; never m_mutex.
    QMutex m_channelsMutex;
    QHash<quint32, ChannelPtr> m_channelsOut;   // opened by this endpoint, by peer
    QHash<quint32, ChannelPtr> m_channelsIn;    // opened by peers
    QHash<quint32, qint64> m_channelRetryAt;    // peers that refused: m_clock ns after which to ask again
    struct ChannelEvent
    {
        std::optional<IpmbProtocol::Introduced> introduced;
        IpmbProtocol::Channel answer;
        IpmbNativeHandle socket;
    };
    std::vector<ChannelEvent> m_ioChannelEvents;    // read from the controller; guarded by m_mutex

    IpmbPlatform::Waker m_waker;        // wakes the I/O thread
    std::atomic<bool> m_stopping {false};
    // watchingPeers: set by the endpoint thread, read by it and by the I/O thread for each Hello.
    std::atomic<bool> m_watchPeers {false};
    std::unique_ptr<IpmbConnection> m_connection; // attached to the inbox and the outbox
    std::unique_ptr<IpmbController> m_controller;
    bool m_welcomed = false;            // on the current connection
    qint64 m_ioJoinedAt = 0;            // ms since the epoch of the first Welcome; claimed after failover
    qint64 m_lastMappingSweep = 0;      // m_clock time
    // Copies of the configuration taken by join(), so the I/O thread never reads m_label & co.
    QString m_ioIdentifier;
    IpmbLabel m_ioLabel;
    QByteArray m_ioToken;
    int m_ioJoinTimeout = 10000;

    // The ways out and in; thread-safe, see their classes.
    IpmbOutbox m_outbox {&m_waker};
    IpmbInbox m_inbox {this, &m_waker};
};

#endif // IPMBENDPOINT_P_H
