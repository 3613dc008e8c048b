// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBINBOX_P_H
#define IPMBINBOX_P_H

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
#include "ipmbmessage.h"
#include "ipmbpayloadcodec_p.h"
#include "ipmbplatform_p.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qmutex.h>
#include <QtCore/qset.h>
#include <QtCore/qwaitcondition.h>

#include <deque>
#include <memory>
#include <optional>
#include <vector>

class IpmbMessageData;

// Buffers for large received QByteArray payloads, reused once every copy handed to the user is
// gone: fresh memory for each would cost page faults (about 8 % of the receiving I/O thread at
// 1 MiB). Used by the holder of the read role only.
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

// The way in to an endpoint: the messages read from one connection and not yet taken, and the
// *read role* (doc/concepts.md, "Who reads the socket"): one thread at a time, the I/O thread or a
// thread waiting in receive(), reads the connection and decodes what arrives. Reading pauses while
// the inbox is full, and resumes once the user took half of it.
//
// Locking rule: m_mutex guards every member up to m_decoding; the members from there on (the
// decoding state) belong to the thread that holds the read role. The connection is attached and
// detached only by the I/O thread; detach() reclaims the role first, so no other thread reads a
// connection that is about to go. No method calls the Owner with m_mutex held, and the inbox
// never takes another lock while it holds its own.
class IpmbInbox
{
public:
    enum class ReadOutcome { Ok, Lost, Failed };  // Lost: fail over; Failed: give up (refused)

    // The endpoint's side of reading.
    class Owner
    {
    public:
        // A frame that is not a Message (Welcome, Refuse, Dropped), or a Message before the
        // Welcome. Returns false to stop reading, with *outcome set.
        virtual bool controlFrame(const IpmbConnection::Frame &frame, ReadOutcome *outcome) = 0;
        // Messages were added to the inbox.
        virtual void messagesArrived() = 0;
        // A reply to request `id` of this endpoint: it does not go to the inbox. `channelPeer` is
        // the peer whose channel it came on; 0 if it came from the controller.
        virtual void replyArrived(quint64 id, IpmbMessage &&reply, quint32 channelPeer) = 0;
        // A frame on a channel that is not a Message (Dropped, Close). Returns false to drop the
        // channel (with `why` set unless it ends as it should).
        virtual bool channelFrame(quint32 peer, const IpmbConnection::Frame &frame, QString *why) = 0;

    protected:
        ~Owner() = default;
    };

    struct Received
    {
        IpmbMessage message;
        qint64 frameBytes;     // what the inbox holds of it (frame, and a payload in a region)
        qsizetype handles;     // open descriptors
        quint64 sequence;      // how many messages the inbox queued before this one
    };

    // `ioWaker` wakes the I/O thread: reading resumed, or a receive() thread found the connection gone.
    IpmbInbox(Owner *owner, IpmbPlatform::Waker *ioWaker);
    Q_DISABLE_COPY_MOVE(IpmbInbox)

    // Any thread: the next message, waiting up to `msecs` (-1: forever) and reading the connection
    // itself while it may (nullopt: timeout, or *closed once the inbox is closed and empty).
    std::optional<IpmbMessage> take(int msecs, bool *closed);
    bool isEmpty() const;
    // Messages are numbered in the order they are queued (Received::sequence). queuedCount() is
    // the number of the next one to arrive; nextSequence() that of the first not yet taken (the
    // next to arrive when none waits). Something read when queuedCount() was n (a Peer frame)
    // comes after every message numbered below n.
    quint64 queuedCount() const;
    quint64 nextSequence() const;

    // The endpoint's thread: every message, for messageReceived(). Each stays counted (the read
    // pause) until delivered() says it was emitted.
    std::deque<Received> takeAll();
    void delivered(qint64 frameBytes, qsizetype handles);
    void clear();

    // The I/O thread.
    void open(qsizetype handleLimit);       // join(): the inbox may fill
    void close();                           // unjoined: take() returns once the inbox is empty
    void attach(IpmbConnection *connection);// a new connection, not yet welcomed on
    void detach();                          // reclaims the read role, then forgets the connection
    // Direct channels are read like the controller's connection, by whoever holds the read role.
    // On an incoming one (the peer introduced it) come messages from `sender`; on an outgoing one
    // only replies from the peer to requests sent on it.
    void addChannel(IpmbConnection *connection, quint32 peer, bool incoming, const IpmbProtocol::Sender &sender);
    void removeChannel(IpmbConnection *connection);  // reclaims the read role first
    // The Owner says so from controlFrame() on the Welcome: Messages are taken from then on,
    // and receive() threads may read.
    void setWelcomed();
    // Before joining: keep each payload as it came instead of decoding it (ipmbtoolsupport_p.h).
    void setKeepsEncodedPayloads(bool keep) { m_decoding.keepsEncodedPayloads = keep; }
    void setMonitor(bool monitor) { m_decoding.isMonitor = monitor; }
    // Before each poll: whether to watch the socket for reading and how long to sleep (shortened
    // while a receive() thread reads), or the outcome a receive() thread found.
    struct PollPlan
    {
        bool read = false;
        int timeoutMsecs = 0;
        std::optional<ReadOutcome> outcome;
        std::vector<IpmbConnection *> lostChannels;   // channels a receive() thread found ended
    };
    PollPlan planPoll(int timeoutMsecs);
    // The socket is readable: reads it, unless a receive() thread has the role.
    ReadOutcome read();
    // A channel's socket is readable: likewise. False when the channel ended or broke: the
    // caller removes it.
    bool readChannel(IpmbConnection *connection);
    // Once a second: frees idle decoding buffers; true when the memory an inbox episode used
    // should go back to the system.
    bool sweep();

    // A handle that is readable while the controller's connection or a channel is: the
    // endpoint's thread watches it with a QSocketNotifier (doc/concepts.md, "Who reads the
    // socket"); -1 if there is none.
    qintptr readinessHandle() const { return m_readiness.handle(); }
    // The endpoint's thread, woken by that handle: reads what waits now, about `budget` bytes per
    // source at most, as a receive() thread does. Busy: the read role was not free (another
    // thread reads, reading is paused, or the connection is being replaced); Nothing: no socket
    // had anything to read; HandedOver: it read, and left a frame larger than `budget` that it
    // began to the I/O thread.
    enum class ReadNow { Busy, Nothing, Read, HandedOver };
    ReadNow readNow(qint64 budget);

private:
    bool canReadDirectlyLocked() const;
    bool readDirectly(QMutexLocker<QMutex> &locker, const QDeadlineTimer &deadline,
                      qint64 budget = IpmbLimits::ReadBudget, bool *handedOver = nullptr);
    void releaseRoleLocked();
    void resumeReadingLocked();
    struct Source
    {
        IpmbConnection *connection = nullptr;
        quint32 peer = 0;              // 0: the controller's connection
        bool incoming = false;
        IpmbProtocol::Sender sender;   // an incoming channel's peer
        bool lost = false;             // a receive() thread found it ended: not polled again
    };
    ReadOutcome readConnection(const Source &source, qint64 budget = IpmbLimits::ReadBudget);
    bool handleFrame(const IpmbConnection::Frame &frame, const Source &source, ReadOutcome *outcome);
    bool handleChannelFrame(const IpmbConnection::Frame &frame, const Source &source);
    void decodeMessage(const IpmbConnection::Frame &frame, const Source &source);
    void decodeObserved(const IpmbConnection::Frame &frame, const Source &source);
    const IpmbProtocol::Sender *decodeSender(QByteArrayView senderBytes, QByteArrayView selectorBytes, const Source &source);
    template <typename Bytes>
    void setPayload(IpmbMessageData *data, Bytes &&encoded);
    void applyDecoded(IpmbMessageData *data, IpmbPayloadCodec::Decoded &&payload);
    void queueMessage(IpmbMessage &&message, const IpmbProtocol::Call &call, const Source &source, qint64 size);
    Source *channelSourceLocked(IpmbConnection *connection);
    // The heap it holds, about: the frames' bytes and each message's bookkeeping, which at 16 B
    // is most of it.
    qint64 footprintLocked() const { return m_bytes + m_entries * IpmbLimits::InboxEntryBytes; }

    Owner *const m_owner;
    IpmbPlatform::Waker *const m_ioWaker;
    QElapsedTimer m_clock;

    mutable QMutex m_mutex;
    QWaitCondition m_changed;           // a message arrived, the role became free, or closed
    QWaitCondition m_roleReleased;
    std::deque<Received> m_messages;
    quint64 m_queued = 0;               // messages ever queued: the next one's sequence
    qint64 m_bytes = 0;                 // of m_messages and of batches takeAll() handed out
    qsizetype m_handles = 0;            // likewise
    qint64 m_entries = 0;               // messages, likewise
    qint64 m_peakFootprint = 0;         // the most footprintLocked() since the last sweep()
    qint64 m_takenIn = 0;               // the footprint of the messages queued since then
    bool m_episode = false;             // it held, or took in, InboxReleaseBytes since memory was last released
    bool m_wasQuiet = false;            // it was nearly empty at the last sweep()
    qsizetype m_handleLimit = 1024;     // from the process's descriptor limit (open())
    bool m_open = false;
    bool m_paused = false;              // full: nobody reads until the user takes some
    IpmbConnection *m_connection = nullptr;
    Source m_controllerSource;          // m_connection's, as the read role reads it
    IpmbPlatform::ReadinessSet m_readiness; // m_connection's socket and the channels'
    // Added by the I/O thread, and removed by it with the read role reclaimed: the holder of the
    // role may use them without the lock.
    std::vector<std::unique_ptr<Source>> m_channels;
    bool m_channelsChanged = false;     // a take() thread that reads must poll them again
    bool m_reclaiming = false;          // removeChannel() waits for the role
    std::vector<IpmbConnection *> m_lostChannels;  // found ended by a take() thread, for the I/O thread
    bool m_reading = false;             // some thread holds the read role
    bool m_directReading = false;       // ... and it is a thread in take()
    bool m_directAllowed = false;       // take() may read (welcomed, not being reclaimed)
    qint64 m_directSince = 0;           // m_clock time the take() thread took the role
    qint64 m_lastDirectRead = -1;       // m_clock time a take() thread last released it
    bool m_ioSleepsLong = false;        // the I/O thread does not look at the socket for long
    int m_waiters = 0;                  // threads in take() waiting on m_changed
    std::optional<ReadOutcome> m_directOutcome; // a take() thread found the connection gone
    IpmbPlatform::Waker m_readerWaker;  // ends the poll of a take() thread that holds the role

    // The decoding state, the read role's (see the class comment). Consecutive messages mostly
    // share their sender and selector: those are decoded once.
    struct Decoding
    {
        // Set (by setWelcomed()) only while the I/O thread holds the role: receive() threads may
        // read only later, and the I/O thread reads it in planPoll().
        bool welcomed = false;
        bool keepsEncodedPayloads = false;  // set before joining (ipmbtoolsupport_p.h)
        bool isMonitor = false;             // set before joining: reads Observed frames
        QByteArray lastSenderBytes;
        IpmbProtocol::Sender lastSender;
        QByteArray lastSelectorBytes;
        IpmbSelector lastSelector;
        QSet<QByteArray> warnedTypes;   // undecodable payload types warned about (IpmbLimits::MaxWarnedTypes)
        IpmbLogLimiter warnings;
        IpmbPayloadBuffers payloadBuffers;
    } m_decoding;
};

#endif // IPMBINBOX_P_H
