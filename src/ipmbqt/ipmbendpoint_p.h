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
#include "ipmblogging_p.h"
#include "ipmboutbox_p.h"
#include "ipmbpayloadregionpool_p.h"
#include "ipmbplatform_p.h"

#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qelapsedtimer.h>
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
QT_END_NAMESPACE

// Buffers for large received QByteArray payloads, reused once every copy handed to the user is
// gone: fresh memory for each would cost page faults (about 8 % of the receiving I/O thread at
// 1 MiB). I/O thread only.
class IpmbPayloadBuffers
{
public:
    // Sizes and counts: IpmbLimits::PayloadBuffer*.

    // A buffer of exactly `size` bytes (contents undefined) that nobody else holds.
    QByteArray take(qsizetype size);
    // Keeps a copy of `bytes` (shared with the payload handed out) for a later take().
    void keep(const QByteArray &bytes);
    // Frees the buffers nobody uses, e.g. once traffic stopped.
    void clearUnused();

private:
    std::vector<QByteArray> m_buffers;
};

// Two threads share this object:
// - the endpoint's thread (where the IpmbEndpoint lives): API calls and signal emission;
// - the I/O thread (started by join()): election, handshake, reading, flushing, failover.
// send() may be called from any thread. Members are grouped by who may touch them.
class IpmbEndpointPrivate
{
    Q_DECLARE_PUBLIC(IpmbEndpoint)

public:
    explicit IpmbEndpointPrivate(IpmbEndpoint *q);
    // The one conversion of the lower layers' error codes to IpmbEndpoint::Error.
    static IpmbEndpoint::Error publicError(IpmbErrorCode code);
    ~IpmbEndpointPrivate();

    enum class Outcome { Stopped, Lost, Failed };  // how serving a connection ended

    // Endpoint thread.
    void startJoin();
    enum class Signals { All, None };
    void stop(Signals emitting = Signals::All);
    void setError(const IpmbErrorInfo &error);  // any thread
    void syncFromIo();
    bool sendFrame(QByteArray &frame, const QList<IpmbNativeHandle> &handles);

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
    QThread *m_ioThread = nullptr;

    // Shared; guarded by m_mutex.
    mutable QMutex m_mutex;
    IpmbErrorInfo m_error;              // set by any thread (send(), receive()), see setError()
    QWaitCondition m_ioStateChanged;
    QWaitCondition m_inboxChanged;
    IpmbEndpoint::State m_ioState = IpmbEndpoint::UnjoinedState;
    QList<IpmbEndpoint::State> m_ioStateChanges;  // since the last syncFromIo(), in order
    bool m_ioIsController = false;
    quint32 m_ioEndpointId = 0;         // the id the last Welcome gave
    IpmbErrorInfo m_ioError;            // to report once in the endpoint thread
    quint64 m_ioDropped = 0;            // to report once in the endpoint thread
    qint64 m_ioBytesWritten = 0;        // likewise, counted only while bytesWritten() is connected
    struct Received
    {
        IpmbMessage message;
        qint64 frameBytes;
        qsizetype handles;
    };
    std::deque<Received> m_inbox;
    // Of the messages in m_inbox and in batches syncFromIo() is delivering, for the read pause:
    qint64 m_inboxBytes = 0;           // frame (and region payload) bytes
    qint64 m_inboxPeakBytes = 0;       // the most since the last look (releasing memory)
    bool m_inboxEpisode = false;       // it held InboxReleaseBytes since memory was last released
    bool m_inboxWasQuiet = false;      // it was nearly empty at the last look
    qsizetype m_inboxHandles = 0;      // open handles
    qsizetype m_inboxHandleLimit = 1024; // set by startJoin() from the process's descriptor limit
    bool m_readingPaused = false;
    bool m_syncPosted = false;
    std::unique_ptr<IpmbConnection> m_connection; // replaced only by the I/O thread
    QElapsedTimer m_clock;              // started in the constructor
    void resumeReadingLocked();

    // The read role (doc/concepts.md, "Who reads the socket"): one thread at a time reads the
    // connection and uses the decoding state below. Guarded by m_mutex, like the inbox.
    bool m_reading = false;             // some thread holds the role
    bool m_directReading = false;       // ... and it is a thread in receive()
    bool m_directAllowed = false;       // receive() may take it (welcomed, not being reclaimed)
    qint64 m_directSince = 0;           // m_clock time the receive() thread took it
    qint64 m_lastDirectRead = -1;       // m_clock time a receive() thread last released it
    bool m_ioSleepsLong = false;        // the I/O thread does not look at the socket for long
    int m_inboxWaiters = 0;             // threads in receive() waiting on m_inboxChanged
    std::optional<Outcome> m_directOutcome; // a receive() thread found the connection gone
    QWaitCondition m_readRoleReleased;
    IpmbPlatform::Waker m_readerWaker;  // ends the poll of a receive() thread that holds the role
    bool canReadDirectlyLocked() const;
    void readDirectly(QMutexLocker<QMutex> &locker, const QDeadlineTimer &deadline);
    void releaseReadRoleLocked();
    void reclaimReadRole();

    // I/O thread only (and the endpoint thread before start / after the thread ended).
    void ioMain();
    IpmbPlatform::Socket electAndConnect(const QDeadlineTimer &deadline, IpmbErrorInfo *error);
    Outcome serveConnection(const QDeadlineTimer &joinDeadline);
    void drainOutput(int msecs);
    void setIoState(IpmbEndpoint::State state);
    void failIo(const IpmbErrorInfo &error);
    void postSyncLocked();
    bool waitOnWaker(int msecs);

    IpmbPlatform::Waker m_waker;
    // What send() queues for the controller; thread-safe, with a lock of its own that is never
    // held while m_mutex is taken.
    IpmbOutbox m_outbox {&m_waker};
    std::atomic<bool> m_stopping {false};
    std::unique_ptr<IpmbController> m_controller;
    bool m_welcomed = false;            // written only before receive() may read (m_directAllowed)

    // Whoever holds the read role: reading, and the decoding state.
    bool readConnection(IpmbConnection *connection, Outcome *outcome);
    bool handleFrame(const IpmbConnection::Frame &frame, Outcome *outcome);
    void decodeMessage(const IpmbConnection::Frame &frame);
    // Consecutive messages mostly share their sender and selector: decode those once.
    QByteArray m_lastSenderBytes;
    IpmbProtocol::Sender m_lastSender;
    QByteArray m_lastSelectorBytes;
    IpmbSelector m_lastSelector;
    QSet<QByteArray> m_warnedTypes;     // undecodable payload types warned about (IpmbLimits::MaxWarnedTypes)
    IpmbLogLimiter m_warnings;
    IpmbPayloadBuffers m_payloadBuffers;

    // I/O thread only, again.
    qint64 m_lastMappingSweep = 0;      // m_clock time
    // Copies of the configuration taken by join(), so the I/O thread never reads m_label & co.
    QString m_ioIdentifier;
    IpmbLabel m_ioLabel;
    QByteArray m_ioToken;
    int m_ioJoinTimeout = 10000;
};

#endif // IPMBENDPOINT_P_H
