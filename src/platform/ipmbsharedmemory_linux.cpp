// SPDX-License-Identifier: BSD-3-Clause
// Linux: memfd_create(2) sealed against shrinking, mmap(2) MAP_SHARED, and a robust
// process-shared pthread mutex.

#include "ipmbsharedmemory_p.h"

#include <QtCore/qcoreapplication.h>

#include <cerrno>
#include <limits>

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace IpmbPlatform {

static_assert(sizeof(pthread_mutex_t) <= size_t(ProcessSharedLockSize),
              "the region header reserves too little room for the lock");
static_assert(alignof(pthread_mutex_t) <= 8, "the region header aligns the lock to 8 bytes");

// The one mapping from errno (and from the error numbers pthread functions return) to
// an error code (IpmbMemoryRegion converts it to its Error).
static IpmbErrorInfo fromErrno(int error, const QString &context)
{
    IpmbErrorCode code = IpmbErrorCode::Unknown;
    switch (error) {
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case ENOSPC:
    case EFBIG:
    case EOVERFLOW:
    case EAGAIN:
        code = IpmbErrorCode::Resource;
        break;
    case EBADF:
    case EACCES:
    case EPERM:
    case ENODEV:
    case ESPIPE:
    case EISDIR:
        code = IpmbErrorCode::InvalidHandle;
        break;
    default:
        break;
    }
    return IpmbErrorInfo(code, context + QStringLiteral(": ") + qt_error_string(error), error);
}

// Whatever the error number, a failing lock operation is a LockError for the user.
static IpmbErrorInfo lockError(int error, const QString &context)
{
    IpmbErrorInfo info = fromErrno(error, context);
    info.code = IpmbErrorCode::Lock;
    return info;
}

qsizetype pageSize()
{
    static const qsizetype size = qsizetype(::sysconf(_SC_PAGESIZE));
    return size;
}

qintptr createSharedMemory(qsizetype size, IpmbErrorInfo *error)
{
    const int fd = ::memfd_create("ipmbqt-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        *error = fromErrno(errno, QStringLiteral("memfd_create"));
        return -1;
    }
    int result;
    do {
        result = ::ftruncate(fd, off_t(size));
    } while (result < 0 && errno == EINTR);
    if (result < 0) {
        *error = fromErrno(errno, QStringLiteral("ftruncate"));
        ::close(fd);
        return -1;
    }
    // A peer that shrank the file would kill every process mapping the lost pages with SIGBUS.
    // F_SEAL_SEAL keeps anyone from adding seals later (F_SEAL_FUTURE_WRITE would make the region
    // unmappable for new receivers).
    if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        *error = fromErrno(errno, QStringLiteral("fcntl(F_ADD_SEALS)"));
        ::close(fd);
        return -1;
    }
    return fd;
}

static QString fileKind(mode_t mode)
{
    if (S_ISFIFO(mode))
        return QCoreApplication::translate("IpmbMemoryRegion", "a pipe");
    if (S_ISSOCK(mode))
        return QCoreApplication::translate("IpmbMemoryRegion", "a socket");
    if (S_ISDIR(mode))
        return QCoreApplication::translate("IpmbMemoryRegion", "a directory");
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return QCoreApplication::translate("IpmbMemoryRegion", "a device");
    return QCoreApplication::translate("IpmbMemoryRegion", "not a regular file");
}

bool sharedMemoryInfo(qintptr handle, SharedMemoryInfo *info, IpmbErrorInfo *error)
{
    struct stat st;
    if (::fstat(int(handle), &st) < 0) {
        *error = fromErrno(errno, QStringLiteral("fstat"));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        *error = IpmbErrorInfo(
                IpmbErrorCode::InvalidHandle,
                QCoreApplication::translate("IpmbMemoryRegion",
                                            "The handle is not a shared-memory object (it is %1)")
                        .arg(fileKind(st.st_mode)));
        return false;
    }
    info->size = qint64(st.st_size);
    info->id = quint64(st.st_ino);
    info->device = quint64(st.st_dev);
    return true;
}

bool cannotShrink(qintptr handle)
{
    // Files that do not support sealing (most file systems) fail with EINVAL: they can shrink.
    const int seals = ::fcntl(int(handle), F_GET_SEALS);
    return seals >= 0 && (seals & F_SEAL_SHRINK);
}

bool readSharedMemory(qintptr handle, qint64 offset, void *buffer, qsizetype size,
                      IpmbErrorInfo *error)
{
    char *out = static_cast<char *>(buffer);
    qsizetype done = 0;
    while (done < size) {
        const ssize_t n = ::pread(int(handle), out + done, size_t(size - done), off_t(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *error = fromErrno(errno, QStringLiteral("pread"));
            return false;
        }
        if (n == 0) {
            *error = IpmbErrorInfo(
                    IpmbErrorCode::InvalidHandle,
                    QCoreApplication::translate("IpmbMemoryRegion", "The object ends after %1 of %2 bytes")
                            .arg(offset + done).arg(offset + size));
            return false;
        }
        done += n;
    }
    return true;
}

void *mapSharedMemory(qintptr handle, qint64 offset, qsizetype length, IpmbErrorInfo *error)
{
    const qint64 page = pageSize();
    const qint64 start = offset < 0 ? 0 : offset - offset % page;
    const qsizetype lead = qsizetype(offset - start);
    if (offset < 0 || length <= 0 || length > std::numeric_limits<qsizetype>::max() - lead) {
        *error = fromErrno(EINVAL, QStringLiteral("mmap"));
        return nullptr;
    }
    void *address = ::mmap(nullptr, size_t(lead + length), PROT_READ | PROT_WRITE, MAP_SHARED,
                           int(handle), off_t(start));
    if (address == MAP_FAILED) {
        *error = fromErrno(errno, QStringLiteral("mmap"));
        return nullptr;
    }
    return static_cast<char *>(address) + lead;
}

void unmapSharedMemory(void *address, qsizetype length)
{
    if (!address)
        return;
    const quintptr page = quintptr(pageSize());
    const quintptr at = quintptr(address);
    const quintptr start = at - at % page;
    ::munmap(reinterpret_cast<void *>(start), size_t(at - start) + size_t(length));
}

bool initProcessSharedLock(void *lock, IpmbErrorInfo *error)
{
    pthread_mutexattr_t attributes;
    int result = ::pthread_mutexattr_init(&attributes);
    if (result == 0)
        result = ::pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    if (result == 0)
        result = ::pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    // Error checking turns a second lock() by the holding thread into EDEADLK instead of a hang,
    // and an unlock() by a thread that does not hold it into EPERM instead of undefined behaviour.
    if (result == 0)
        result = ::pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_ERRORCHECK);
    if (result == 0)
        result = ::pthread_mutex_init(static_cast<pthread_mutex_t *>(lock), &attributes);
    ::pthread_mutexattr_destroy(&attributes);
    if (result != 0) {
        *error = lockError(result, QStringLiteral("pthread_mutex_init"));
        return false;
    }
    return true;
}

bool lockProcessShared(void *lock, bool *ownerDied, IpmbErrorInfo *error)
{
    pthread_mutex_t *mutex = static_cast<pthread_mutex_t *>(lock);
    *ownerDied = false;
    int result = ::pthread_mutex_lock(mutex);
    if (result == EOWNERDEAD) {
        // We hold the lock now; mark it usable again, or it becomes ENOTRECOVERABLE at unlock.
        *ownerDied = true;
        result = ::pthread_mutex_consistent(mutex);
        if (result != 0) {
            ::pthread_mutex_unlock(mutex);
            *error = lockError(result, QStringLiteral("pthread_mutex_consistent"));
            return false;
        }
        return true;
    }
    if (result != 0) {
        *error = lockError(result, QStringLiteral("pthread_mutex_lock"));
        return false;
    }
    return true;
}

bool unlockProcessShared(void *lock, IpmbErrorInfo *error)
{
    const int result = ::pthread_mutex_unlock(static_cast<pthread_mutex_t *>(lock));
    if (result != 0) {
        *error = lockError(result, QStringLiteral("pthread_mutex_unlock"));
        return false;
    }
    return true;
}

// Not FUTEX_PRIVATE_FLAG: the word is in memory that other processes map.
bool waitOnAddress(void *address, qint32 expected, int msecs)
{
    timespec timeout {msecs / 1000, long(msecs % 1000) * 1000 * 1000};
    const long r = ::syscall(SYS_futex, address, FUTEX_WAIT, expected, msecs < 0 ? nullptr : &timeout, nullptr, 0);
    return r == 0 || errno != ETIMEDOUT;  // woken, or the word had changed already (EAGAIN, EINTR)
}

void wakeAddressWaiters(void *address)
{
    ::syscall(SYS_futex, address, FUTEX_WAKE, std::numeric_limits<int>::max(), nullptr, nullptr, 0);
}

} // namespace IpmbPlatform
