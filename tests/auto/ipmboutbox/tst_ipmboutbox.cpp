// SPDX-License-Identifier: BSD-3-Clause
// IpmbOutbox on its own, over a Unix socketpair: a frame after a pause goes out from the sending
// thread; what the socket does not take wakes the owner (the I/O thread), which writes the rest;
// frames sent while no connection is attached wait for one; the queue limit, close(), and
// waitForWritten(). This test plays the owner: it polls the waker and calls write() itself.

#include "ipmbconnection_p.h"
#include "ipmblimits_p.h"
#include "ipmboutbox_p.h"
#include "ipmbplatform_p.h"

#include <QtCore/qdeadlinetimer.h>
#include <QtTest/qtest.h>

#include <memory>

#include <sys/socket.h>
#include <unistd.h>

class tst_IpmbOutbox : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void init();
    void cleanup();
    void loneFrameGoesOutAtOnce();
    void restWakesTheOwner();
    void framesWaitForAConnection();
    void queueLimit();
    void closeRefusesAndDrops();

private:
    // Whether the owner was woken (and drains the waker).
    bool ownerWoken();
    // Everything the peer has received so far.
    QByteArray readPeer();
    // The owner's loop, until the peer has `bytes` bytes or 10 s pass.
    QByteArray serveUntil(qsizetype bytes);

    std::unique_ptr<IpmbPlatform::Waker> m_waker;
    std::unique_ptr<IpmbOutbox> m_outbox;
    std::unique_ptr<IpmbConnection> m_connection;
    IpmbPlatform::Socket m_peer = IpmbPlatform::InvalidSocket;
    QByteArray m_received;
};

void tst_IpmbOutbox::init()
{
    int fds[2];
    QCOMPARE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    m_connection = std::make_unique<IpmbConnection>(fds[0]);
    m_peer = fds[1];
    m_waker = std::make_unique<IpmbPlatform::Waker>();
    m_outbox = std::make_unique<IpmbOutbox>(m_waker.get());
    m_outbox->open();
    m_received.clear();
}

void tst_IpmbOutbox::cleanup()
{
    m_outbox.reset();
    m_connection.reset();
    m_waker.reset();
    IpmbPlatform::closeSocket(m_peer);
    m_peer = IpmbPlatform::InvalidSocket;
}

bool tst_IpmbOutbox::ownerWoken()
{
    IpmbPlatform::PollEntry entry {m_waker->socket(), true, false, false, false};
    IpmbPlatform::poll(&entry, 1, 0);
    if (entry.readable)
        m_waker->drain();
    return entry.readable;
}

QByteArray tst_IpmbOutbox::readPeer()
{
    char buffer[64 * 1024];
    for (;;) {
        const ssize_t n = ::read(m_peer, buffer, sizeof buffer);
        if (n <= 0)
            return m_received;
        m_received.append(buffer, n);
    }
}

QByteArray tst_IpmbOutbox::serveUntil(qsizetype bytes)
{
    const QDeadlineTimer deadline(10000);
    while (readPeer().size() < bytes && !deadline.hasExpired()) {
        IpmbPlatform::PollEntry entry {m_connection->socket(), false, m_outbox->wantsWrite(), false, false};
        IpmbPlatform::poll(&entry, 1, 10);
        if (!entry.writable)
            continue;
        const IpmbPlatform::IoStatus status = m_outbox->write().status;
        if (status == IpmbPlatform::IoStatus::Closed || status == IpmbPlatform::IoStatus::Failed)
            break;
    }
    return m_received;
}

static QByteArray frame(qsizetype size, char fill)
{
    return QByteArray(size, fill);
}

void tst_IpmbOutbox::loneFrameGoesOutAtOnce()
{
    m_outbox->attach(m_connection.get());
    QByteArray bytes = frame(100, 'a');
    IpmbErrorInfo error;
    QVERIFY(m_outbox->send(bytes, {}, &error));
    // Written by this thread, inside send(): nobody else had to be woken.
    QCOMPARE(readPeer(), frame(100, 'a'));
    QCOMPARE(m_outbox->bytesToWrite(), 0);
    QVERIFY(!ownerWoken());
    QVERIFY(m_outbox->waitForWritten(QDeadlineTimer(0))); // nothing queued
}

// A frame larger than the socket takes: the sending thread writes what fits and must wake the
// owner for the rest (it once did not, and a lone 64 MiB message waited for the owner's next
// timeout: up to a second).
void tst_IpmbOutbox::restWakesTheOwner()
{
    m_outbox->attach(m_connection.get());
    const qsizetype size = 8 * IpmbLimits::MiB; // far more than a socket buffer
    QByteArray bytes = frame(size, 'b');
    IpmbErrorInfo error;
    QVERIFY(m_outbox->send(bytes, {}, &error));
    QVERIFY(bytes.isEmpty());                   // over ShareFrameBytes: taken by reference
    QVERIFY(m_outbox->bytesToWrite() > 0);
    QVERIFY(m_outbox->bytesToWrite() < size);   // the first part went out from this thread
    QVERIFY(ownerWoken());
    QVERIFY(m_outbox->wantsWrite());
    const QByteArray received = serveUntil(size);
    QCOMPARE(received.size(), size);
    QCOMPARE(received, frame(size, 'b'));
    QCOMPARE(m_outbox->bytesToWrite(), 0);
}

void tst_IpmbOutbox::framesWaitForAConnection()
{
    IpmbErrorInfo error;
    QByteArray expected;
    for (int i = 0; i < 50; ++i) {
        QByteArray bytes = frame(1000 + i, char('a' + i % 26));
        expected += bytes;
        QVERIFY(m_outbox->send(bytes, {}, &error));
    }
    QCOMPARE(m_outbox->bytesToWrite(), expected.size());
    QVERIFY(!m_outbox->wantsWrite());           // nowhere to write yet
    QVERIFY(!m_outbox->waitForWritten(QDeadlineTimer(50)));
    m_outbox->attach(m_connection.get());
    QCOMPARE(serveUntil(expected.size()), expected);
}

void tst_IpmbOutbox::queueLimit()
{
    IpmbErrorInfo error;
    qint64 queued = 0;
    while (queued < IpmbLimits::SendQueueBytes) {
        QByteArray bytes = frame(IpmbLimits::ShareFrameBytes, 'q');
        QVERIFY(m_outbox->send(bytes, {}, &error));
        queued += IpmbLimits::ShareFrameBytes;
    }
    QByteArray one = frame(10, 'x');
    QVERIFY(!m_outbox->send(one, {}, &error));
    QCOMPARE(int(error.code), int(IpmbErrorCode::QueueFull));
    QVERIFY2(error.message.contains(QString::number(queued)), qPrintable(error.message));
    // Once written, it takes frames again.
    m_outbox->attach(m_connection.get());
    QCOMPARE(serveUntil(queued).size(), queued);
    QVERIFY(m_outbox->send(one, {}, &error));
}

void tst_IpmbOutbox::closeRefusesAndDrops()
{
    IpmbErrorInfo error;
    QByteArray bytes = frame(100, 'c');
    QVERIFY(m_outbox->send(bytes, {}, &error));
    m_outbox->close();
    QCOMPARE(m_outbox->bytesToWrite(), 0);
    QVERIFY(!m_outbox->waitForWritten(QDeadlineTimer(0)));
    QVERIFY(!m_outbox->send(bytes, {}, &error));
    QCOMPARE(int(error.code), int(IpmbErrorCode::Disconnected));
    m_outbox->open();
    QVERIFY(m_outbox->send(bytes, {}, &error));
}

QTEST_GUILESS_MAIN(tst_IpmbOutbox)
#include "tst_ipmboutbox.moc"
