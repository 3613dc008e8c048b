// SPDX-License-Identifier: BSD-3-Clause
#include "ipmboutbox_p.h"

#include <QtCore/qcoreapplication.h>

using IpmbPlatform::IoResult;
using IpmbPlatform::IoStatus;

IpmbOutbox::IpmbOutbox(IpmbPlatform::Waker *ioWaker, qint64 maxBytes, qsizetype maxHandles, const QString &destination)
    : m_ioWaker(ioWaker), m_maxBytes(maxBytes), m_maxHandles(maxHandles),
      m_destination(destination.isEmpty() ? QCoreApplication::translate("IpmbEndpoint", "the bus controller") : destination)
{
    m_clock.start();
}

// Checks the limits and appends a whole frame and its handles to `batch`.
bool IpmbOutbox::appendLocked(IpmbFrameBatch &batch, qint64 queued, qsizetype queuedHandles, QByteArray &frame,
                              const QList<IpmbNativeHandle> &handles, IpmbErrorInfo *error)
{
    if (queued >= m_maxBytes) {
        *error = IpmbErrorInfo(IpmbErrorCode::QueueFull,
                               QCoreApplication::translate("IpmbEndpoint", "send: %1 bytes are waiting for %2")
                                       .arg(queued).arg(m_destination));
        return false;
    }
    if (!handles.isEmpty() && queuedHandles >= m_maxHandles) {
        *error = IpmbErrorInfo(IpmbErrorCode::QueueFull,
                               QCoreApplication::translate("IpmbEndpoint", "send: %1 handles are waiting for %2")
                                       .arg(queuedHandles).arg(m_destination));
        return false;
    }
    batch.appendHandles(handles);
    if (frame.size() > IpmbLimits::ShareFrameBytes) {
        batch.appendShared(frame);
        frame = QByteArray(); // the queue owns it now
    } else {
        batch.tail(frame.size()).append(QByteArrayView(frame)); // copied: `frame` is the caller's reusable buffer
    }
    return true;
}

bool IpmbOutbox::send(QByteArray &frame, const QList<IpmbNativeHandle> &handles, IpmbErrorInfo *error)
{
    QMutexLocker locker(&m_mutex);
    if (!m_open) {
        *error = IpmbErrorInfo(IpmbErrorCode::Disconnected,
                               QCoreApplication::translate("IpmbEndpoint", "send: the endpoint is not joined"));
        return false;
    }
    if (m_holding)
        return appendLocked(m_held, m_held.bytes(), m_held.handleCount(), frame, handles, error);
    const bool wasIdle = queuedLocked() == 0;
    if (!appendLocked(m_batch, queuedLocked(), m_batch.handleCount() + m_connectionHandles, frame, handles, error))
        return false;
    if (wasIdle)
        m_lastProgress = m_clock.nsecsElapsed();  // an empty queue was not stalling
    if (!m_connection || m_writing)
        return true; // attach() or the writer takes it along
    // A lone frame goes out at once from this thread. Under load (the last write was moments ago)
    // the owner is woken once and writes the whole backlog in one call.
    if (wasIdle && !m_ioWoken && m_clock.nsecsElapsed() - m_lastWrite > IpmbLimits::CoalesceWindowNsecs) {
        const IoResult r = writeWithRoleLocked(locker);
        const bool counting = m_countWrites;
        // What the socket did not take (a full socket buffer, or a broken connection) is the
        // owner's: it polls for writability, or sees the broken socket.
        if (queuedLocked() > 0 && !m_ioWoken) {
            m_ioWoken = true;
            m_ioWaker->wake();
        }
        locker.unlock();
        if (counting && r.bytes > 0 && m_writtenCallback)
            m_writtenCallback(r.bytes);
        return true;
    }
    if (!m_ioWoken) {
        m_ioWoken = true;
        m_ioWaker->wake();
    }
    return true;
}

// Called with the lock held and the connection attached; returns with the lock held, the role
// released. The batch moves into the connection's queue under the lock (no copy); the system
// call happens without it.
IoResult IpmbOutbox::writeWithRoleLocked(QMutexLocker<QMutex> &locker)
{
    m_writing = true;
    IpmbConnection *connection = m_connection;
    connection->appendBatch(m_batch);
    m_connectionBytes = connection->bytesToWrite();
    m_connectionHandles = connection->handlesToWrite();
    locker.unlock();
    const IoResult r = connection->flush();
    const qint64 left = connection->bytesToWrite();
    const qsizetype leftHandles = connection->handlesToWrite();
    locker.relock();
    m_connectionBytes = left;
    m_connectionHandles = leftHandles;
    m_lastWrite = m_clock.nsecsElapsed();
    m_writing = false;
    m_roleReleased.wakeAll();
    if (r.bytes > 0) {
        m_lastProgress = m_lastWrite;
        ++m_writes;
        if (m_writeWaiters > 0)
            m_written.wakeAll();
    }
    return r;
}

void IpmbOutbox::takeRoleLocked(QMutexLocker<QMutex> &locker)
{
    Q_UNUSED(locker);
    while (m_writing)
        m_roleReleased.wait(&m_mutex); // a sender's write: one non-blocking system call
}

qint64 IpmbOutbox::bytesToWrite() const
{
    QMutexLocker locker(&m_mutex);
    return queuedLocked();
}

bool IpmbOutbox::hasRoomLocked(bool handles, IpmbErrorInfo *error) const
{
    const qint64 bytes = m_holding ? m_held.bytes() : queuedLocked();
    const qsizetype handleCount = m_holding ? m_held.handleCount() : m_batch.handleCount() + m_connectionHandles;
    if (bytes >= m_maxBytes) {
        if (error)
            *error = IpmbErrorInfo(IpmbErrorCode::QueueFull,
                                   QCoreApplication::translate("IpmbEndpoint", "send: %1 bytes are waiting for %2")
                                           .arg(bytes).arg(m_destination));
        return false;
    }
    if (handles && handleCount >= m_maxHandles) {
        if (error)
            *error = IpmbErrorInfo(IpmbErrorCode::QueueFull,
                                   QCoreApplication::translate("IpmbEndpoint", "send: %1 handles are waiting for %2")
                                           .arg(handleCount).arg(m_destination));
        return false;
    }
    return true;
}

bool IpmbOutbox::sendAndHold(QByteArray &frame, IpmbErrorInfo *error)
{
    QMutexLocker locker(&m_mutex);  // one step: no other thread's frame may follow it
    if (!m_open) {
        *error = IpmbErrorInfo(IpmbErrorCode::Disconnected);
        return false;
    }
    if (!appendLocked(m_batch, queuedLocked(), m_batch.handleCount() + m_connectionHandles, frame, {}, error))
        return false;
    m_holding = true;
    if (m_connection && !m_writing && !m_ioWoken) {
        m_ioWoken = true;
        m_ioWaker->wake();
    }
    return true;
}

bool IpmbOutbox::isHolding() const
{
    QMutexLocker locker(&m_mutex);
    return m_holding;
}

void IpmbOutbox::closeMovingHeldTo(IpmbOutbox &other)
{
    IpmbFrameBatch moving;
    {
        QMutexLocker locker(&m_mutex);
        takeRoleLocked(locker);   // may wait, with the lock released
        moving.takeFrom(m_held);  // from here on the lock is held throughout
        closeLocked(locker);      // refuses from here on
    }
    other.takeBatch(moving);
}

void IpmbOutbox::moveHeldTo(IpmbOutbox &other)
{
    IpmbFrameBatch moving;
    {
        QMutexLocker locker(&m_mutex);
        moving.takeFrom(m_held);
    }
    other.takeBatch(moving);
}

// Appends `from`'s frames to the queue, and wakes the owner to write them.
void IpmbOutbox::takeBatch(IpmbFrameBatch &from)
{
    QMutexLocker locker(&m_mutex);
    if (queuedLocked() == 0)
        m_lastProgress = m_clock.nsecsElapsed();
    m_batch.takeFrom(from);
    if (m_connection && !m_writing && !m_ioWoken) {
        m_ioWoken = true;
        m_ioWaker->wake();
    }
}

bool IpmbOutbox::hasRoom(bool handles, IpmbErrorInfo *error) const
{
    QMutexLocker locker(&m_mutex);
    return hasRoomLocked(handles, error);
}

qint64 IpmbOutbox::stalledNsecs() const
{
    QMutexLocker locker(&m_mutex);
    return queuedLocked() == 0 || m_holding ? 0 : m_clock.nsecsElapsed() - m_lastProgress;
}

void IpmbOutbox::moveQueueTo(IpmbOutbox &other)
{
    IpmbFrameBatch moving;
    {
        QMutexLocker locker(&m_mutex);
        Q_ASSERT(!m_connection);
        moving.takeFrom(m_batch);
    }
    other.takeBatch(moving);
}

bool IpmbOutbox::waitForWritten(const QDeadlineTimer &deadline)
{
    QMutexLocker locker(&m_mutex);
    const quint64 writes = m_writes;
    while (m_open && queuedLocked() > 0 && m_writes == writes) {
        ++m_writeWaiters;
        const bool woken = m_written.wait(&m_mutex, deadline);
        --m_writeWaiters;
        if (!woken)
            return false;
    }
    return m_open;
}

void IpmbOutbox::setWrittenCallback(std::function<void(qint64)> callback)
{
    QMutexLocker locker(&m_mutex);
    m_writtenCallback = std::move(callback);
}

void IpmbOutbox::countWrites(bool on)
{
    QMutexLocker locker(&m_mutex);
    m_countWrites = on;
}

void IpmbOutbox::open()
{
    QMutexLocker locker(&m_mutex);
    m_open = true;
}

void IpmbOutbox::close()
{
    QMutexLocker locker(&m_mutex);
    closeLocked(locker);
}

void IpmbOutbox::closeLocked(QMutexLocker<QMutex> &locker)
{
    takeRoleLocked(locker);
    m_open = false;
    m_batch.clear();
    m_held.clear();
    m_holding = false;
    m_connection = nullptr;
    m_connectionBytes = 0;
    m_connectionHandles = 0;
    m_ioWoken = false;
    m_written.wakeAll();
}

void IpmbOutbox::attach(IpmbConnection *connection)
{
    QMutexLocker locker(&m_mutex);
    takeRoleLocked(locker);
    m_connection = connection;
    m_connectionBytes = connection->bytesToWrite();
    m_connectionHandles = connection->handlesToWrite();
}

void IpmbOutbox::detach()
{
    QMutexLocker locker(&m_mutex);
    takeRoleLocked(locker);
    m_connection = nullptr;
    m_connectionBytes = 0;
    m_connectionHandles = 0;
    m_ioWoken = false;
    if (queuedLocked() == 0)
        m_written.wakeAll();
}

void IpmbOutbox::releaseIdleMemory()
{
    QMutexLocker locker(&m_mutex);
    takeRoleLocked(locker);
    if (queuedLocked() > 0)
        return;
    m_batch.releaseSpareChunks();
    if (m_connection)
        m_connection->releaseSpareChunks();
}

bool IpmbOutbox::wantsWrite() const
{
    QMutexLocker locker(&m_mutex);
    return m_connection && queuedLocked() > 0;
}

IoResult IpmbOutbox::write()
{
    QMutexLocker locker(&m_mutex);
    m_ioWoken = false;
    takeRoleLocked(locker);
    if (!m_connection || queuedLocked() == 0)
        return {IoStatus::Ok, 0, {}};
    const IoResult r = writeWithRoleLocked(locker);
    const bool counting = m_countWrites;
    locker.unlock();
    if (counting && r.bytes > 0 && m_writtenCallback)
        m_writtenCallback(r.bytes);
    return r;
}
