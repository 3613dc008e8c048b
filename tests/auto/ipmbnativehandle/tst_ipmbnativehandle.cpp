// SPDX-License-Identifier: BSD-3-Clause
// IpmbNativeHandle as a value: ownership, sharing, and failures that say why. Passing handles
// between processes is tested in tests/auto/multiprocess.

#include <IpmbQt/IpmbNativeHandle>

#include "ipmbtestvalue.h"

#include <QtTest/qtest.h>

#include <cerrno>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

class tst_IpmbNativeHandle : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void ownership();
    void valueSemantics();
    void duplicateFails();
    void duplicateOutOfHandles();
};

static bool isOpen(int fd)
{
    return ::fcntl(fd, F_GETFD) != -1;
}

void tst_IpmbNativeHandle::ownership()
{
    int fds[2];
    QCOMPARE(::pipe2(fds, O_CLOEXEC), 0);
    const int readEnd = fds[0];
    {
        IpmbNativeHandle handle = IpmbNativeHandle::adopt(readEnd);
        const IpmbNativeHandle copy = handle;   // shares, duplicates nothing
        QCOMPARE(copy.handle(), readEnd);
        QString why;
        const IpmbNativeHandle duplicated = IpmbNativeHandle::duplicate(readEnd, &why);
        QVERIFY2(!duplicated.isNull(), qPrintable(why));
        QVERIFY(duplicated.handle() != readEnd);
        QVERIFY(why.isEmpty());
        handle = IpmbNativeHandle();
        QVERIFY(isOpen(readEnd));               // the copy still holds it
    }
    QVERIFY(!isOpen(readEnd));                  // the last copy closed it

    IpmbNativeHandle writeEnd = IpmbNativeHandle::adopt(fds[1]);
    const IpmbNativeHandle other = writeEnd;
    QCOMPARE(writeEnd.release(), IpmbNativeHandle::Native(fds[1]));
    QVERIFY(other.isNull());                    // release() empties every copy
    QVERIFY(isOpen(fds[1]));
    ::close(fds[1]);
}

// Explicitly shared: copies hold the one handle, and release() through one empties them all.
void tst_IpmbNativeHandle::valueSemantics()
{
    int fds[2];
    QCOMPARE(::pipe2(fds, O_CLOEXEC), 0);
    const IpmbNativeHandle readEnd = IpmbNativeHandle::adopt(fds[0]);
    const IpmbNativeHandle writeEnd = IpmbNativeHandle::adopt(fds[1]);
    IpmbTest::checkValueSemantics(readEnd, writeEnd,
                                  [](IpmbNativeHandle &handle) { ::close(int(handle.release())); },
                                  IpmbTest::Sharing::Explicit);
    IPMBTEST_RETURN_IF_FAILED();
    QVERIFY(readEnd.isNull());
    QVERIFY(!isOpen(fds[0]));
    QVERIFY(isOpen(fds[1]));
}

void tst_IpmbNativeHandle::duplicateFails()
{
    int fds[2];
    QCOMPARE(::pipe2(fds, O_CLOEXEC), 0);
    ::close(fds[0]);
    ::close(fds[1]);
    QString why;
    errno = 0;
    QVERIFY(IpmbNativeHandle::duplicate(fds[0], &why).isNull());
    QCOMPARE(errno, EBADF);
    QVERIFY2(why.contains(QString::number(fds[0])), qPrintable(why));
    QVERIFY2(why.contains(QLatin1String("Bad file descriptor")), qPrintable(why));
    QVERIFY(IpmbNativeHandle::duplicate(IpmbNativeHandle::InvalidNative).isNull());
}

// A sender that runs out of descriptors can tell that from a bad one.
void tst_IpmbNativeHandle::duplicateOutOfHandles()
{
    rlimit saved;
    QCOMPARE(::getrlimit(RLIMIT_NOFILE, &saved), 0);
    const int probe = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
    QVERIFY(probe >= 0);
    ::close(probe);
    rlimit low = saved;
    low.rlim_cur = rlim_t(probe);               // every descriptor from here on is over the limit
    QCOMPARE(::setrlimit(RLIMIT_NOFILE, &low), 0);
    QString why;
    errno = 0;
    const IpmbNativeHandle handle = IpmbNativeHandle::duplicate(STDIN_FILENO, &why);
    const int error = errno;
    QCOMPARE(::setrlimit(RLIMIT_NOFILE, &saved), 0);
    QVERIFY(handle.isNull());
    QCOMPARE(error, EMFILE);
    QVERIFY2(why.contains(QLatin1String("Too many open files")), qPrintable(why));
}

QTEST_GUILESS_MAIN(tst_IpmbNativeHandle)
#include "tst_ipmbnativehandle.moc"
