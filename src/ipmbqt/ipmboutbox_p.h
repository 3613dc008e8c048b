// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBOUTBOX_P_H
#define IPMBOUTBOX_P_H

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
#include "ipmberror_p.h"
#include "ipmblimits_p.h"
#include "ipmbplatform_p.h"

#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qmutex.h>
#include <QtCore/qwaitcondition.h>

#include <functional>

// The way out of an endpoint: the frames that any thread sends, on their way into one connection
// (to the controller today; a later issue adds channels to peers, each with an outbox of its own).
// Senders queue under a short lock; one thread at a time, the writer, moves the queue into the
// connection and writes it with the lock released, so that no sender ever waits for a system
// call (doc/concepts.md, "Who writes the socket").
//
// Locking rule: m_mutex guards every member. The connection's write queue belongs to the thread
// that holds the write role (m_writing), and to nobody while no one does; the connection is
// attached and detached only by the thread that owns it (the I/O thread), with the role held.
class IPMBQT_AUTOTEST_EXPORT IpmbOutbox
{
public:
    // `ioWaker` wakes the thread that owns the connection: it writes what a sender left behind.
    // At most `maxBytes` and `maxHandles` wait (then send() fails with QueueFull); `destination`
    // names where they go, in error messages.
    explicit IpmbOutbox(IpmbPlatform::Waker *ioWaker, qint64 maxBytes = IpmbLimits::SendQueueBytes,
                        qsizetype maxHandles = IpmbLimits::SendQueueHandles, const QString &destination = {});
    Q_DISABLE_COPY_MOVE(IpmbOutbox)

    // Any thread. Queues a whole frame and the handles that go with it (a frame larger than
    // IpmbLimits::ShareFrameBytes is taken by reference: `frame` is empty afterwards). A frame
    // after a pause is written at once by the calling thread. Fails when closed (Disconnected) or
    // when the queue is full (QueueFull).
    bool send(QByteArray &frame, const QList<IpmbNativeHandle> &handles, IpmbErrorInfo *error);
    qint64 bytesToWrite() const;
    // Queues `frame` (a Close) as the last frame to write: the frames sent after it are held, not
    // written, until moveHeldTo() hands them to another outbox.
    bool sendAndHold(QByteArray &frame, IpmbErrorInfo *error);
    bool isHolding() const;
    void moveHeldTo(IpmbOutbox &other);
    // close(), handing what was held (sendAndHold()) to `other` in the same step: a frame sent
    // meanwhile is either in `other` or refused (Disconnected), never lost.
    void closeMovingHeldTo(IpmbOutbox &other);
    // Whether another frame (with handles, if `handles`) fits in the queue now; if not, the error
    // send() would give.
    bool hasRoom(bool handles, IpmbErrorInfo *error = nullptr) const;
    // For how long the queue has held bytes without any being written (0 when it is empty).
    qint64 stalledNsecs() const;
    // Until the next write of queued bytes or an empty queue (true), the deadline, or close()
    // (false): QAbstractSocket::waitForBytesWritten().
    bool waitForWritten(const QDeadlineTimer &deadline);
    // Called, outside the lock, with the bytes of each write, while `on` says so.
    void setWrittenCallback(std::function<void(qint64)> callback);
    void countWrites(bool on);

    // The owner of the connection (the I/O thread).
    void open();                            // send() accepts frames (queued while unattached)
    void close();                           // drops every frame; send() fails until open()
    void attach(IpmbConnection *connection);// the queue goes to this one from now on
    void detach();                          // its unwritten bytes are lost; the queue stays
    // Moves the queue (unattached: nothing of it is in a connection) behind `other`'s.
    void moveQueueTo(IpmbOutbox &other);
    bool wantsWrite() const;                // poll the connection for writability
    void releaseIdleMemory();               // the spare buffers, if nothing is queued
    // Writes what the connection takes now, unless another thread is writing. Closed or Failed
    // means the connection is gone.
    IpmbPlatform::IoResult write();

private:
    IpmbPlatform::IoResult writeWithRoleLocked(QMutexLocker<QMutex> &locker);
    void takeRoleLocked(QMutexLocker<QMutex> &locker);
    qint64 queuedLocked() const { return m_batch.bytes() + m_connectionBytes; }

    bool hasRoomLocked(bool handles, IpmbErrorInfo *error = nullptr) const;
    void closeLocked(QMutexLocker<QMutex> &locker);
    bool appendLocked(IpmbFrameBatch &batch, qint64 queued, qsizetype queuedHandles, QByteArray &frame,
                      const QList<IpmbNativeHandle> &handles, IpmbErrorInfo *error);
    void takeBatch(IpmbFrameBatch &from);

    IpmbPlatform::Waker *const m_ioWaker;
    const qint64 m_maxBytes;
    const qsizetype m_maxHandles;
    const QString m_destination;
    mutable QMutex m_mutex;
    QWaitCondition m_roleReleased;
    QWaitCondition m_written;               // bytes were written, or the outbox closed
    int m_writeWaiters = 0;
    quint64 m_writes = 0;                   // writes that moved bytes
    IpmbFrameBatch m_batch;                 // queued, not yet in the connection
    IpmbFrameBatch m_held;                  // sent after sendAndHold()'s frame
    bool m_holding = false;
    IpmbConnection *m_connection = nullptr;
    qint64 m_connectionBytes = 0;           // still to write in the connection, at the last write
    qsizetype m_connectionHandles = 0;
    bool m_open = false;
    bool m_writing = false;                 // the write role is held
    bool m_ioWoken = false;                 // the owner was woken to write and has not yet
    bool m_countWrites = false;
    qint64 m_lastWrite = -IpmbLimits::CoalesceWindowNsecs - 1; // m_clock time; never: the first frame goes at once
    qint64 m_lastProgress = 0;              // m_clock time the queue last moved, or last became non-empty
    QElapsedTimer m_clock;
    std::function<void(qint64)> m_writtenCallback;
};

#endif // IPMBOUTBOX_P_H
