// SPDX-License-Identifier: BSD-3-Clause
// Linux: AF_UNIX stream sockets in a private runtime directory, flock(2) for the election,
// SO_PEERCRED, poll(2), eventfd(2).

#include "ipmbplatform_p.h"
#include "ipmblogging_p.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qcryptographichash.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>
#include <vector>

#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

namespace IpmbPlatform {

// The one mapping from errno to an error code.
static IpmbErrorInfo fromErrno(int error, const QString &context)
{
    IpmbErrorCode code = IpmbErrorCode::Unknown;
    switch (error) {
    case EACCES:
    case EPERM:
        code = IpmbErrorCode::Permission;
        break;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
        code = IpmbErrorCode::Resource;
        break;
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
        code = IpmbErrorCode::Disconnected;
        break;
    case ETIMEDOUT:
        code = IpmbErrorCode::Timeout;
        break;
    default:
        break;
    }
    return IpmbErrorInfo(code, context + QStringLiteral(": ") + qt_error_string(error), error);
}

qint64 currentUserId()
{
    return qint64(::geteuid());
}

qint64 currentProcessId()
{
    return qint64(::getpid());
}

// A directory that only this user may enter: a real directory (not a symlink), ours, and closed
// to group and others. Everything a bus is made of lives in it (doc/protocol.md, "Transport").
static bool checkPrivateDirectory(const QByteArray &path, IpmbErrorInfo *error)
{
    struct stat st;
    if (::lstat(path.constData(), &st) != 0) {
        *error = fromErrno(errno, QString::fromLocal8Bit(path));
        return false;
    }
    QString problem;
    if (S_ISLNK(st.st_mode))
        problem = QStringLiteral("is a symbolic link");
    else if (!S_ISDIR(st.st_mode))
        problem = QStringLiteral("is not a directory");
    else if (st.st_uid != ::geteuid())
        problem = QStringLiteral("belongs to uid %1, not to this user (uid %2)").arg(st.st_uid).arg(::geteuid());
    else if (st.st_mode & 077)
        problem = QStringLiteral("is open to other users (mode %1; it must be 0700)").arg(st.st_mode & 0777, 4, 8, QLatin1Char('0'));
    if (problem.isEmpty())
        return true;
    *error = IpmbErrorInfo(IpmbErrorCode::Permission,
                           QStringLiteral("The bus directory %1 %2").arg(QString::fromLocal8Bit(path), problem));
    return false;
}

// $XDG_RUNTIME_DIR/ipmbqt, or /tmp/ipmbqt-<uid> without it; created 0700 if missing, then checked.
static bool runtimeDirectory(QByteArray *directory, IpmbErrorInfo *error)
{
    const QByteArray xdg = qgetenv("XDG_RUNTIME_DIR");
    if (xdg.startsWith('/'))
        *directory = xdg + "/ipmbqt";
    else
        *directory = "/tmp/ipmbqt-" + QByteArray::number(::geteuid());
    if (::mkdir(directory->constData(), 0700) == 0) {
        ::chmod(directory->constData(), 0700); // whatever the umask left of it
    } else if (errno != EEXIST) {
        *error = fromErrno(errno, QStringLiteral("cannot create the bus directory %1").arg(QString::fromLocal8Bit(*directory)));
        return false;
    }
    return checkPrivateDirectory(*directory, error);
}

static bool isPlainName(const QByteArray &name)
{
    if (name.isEmpty() || name.front() == '.')
        return false;
    for (char c : name) {
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static constexpr QByteArrayView SocketSuffix(".sock");
static constexpr QByteArrayView LockSuffix(".lock");

bool busAddress(const QString &identifier, QByteArray *address, IpmbErrorInfo *error)
{
    QByteArray directory;
    if (!runtimeDirectory(&directory, error))
        return false;
    const QByteArray utf8 = identifier.toUtf8();
    const auto fits = [](const QByteArray &path) { return path.size() < qsizetype(sizeof(sockaddr_un::sun_path)); };
    *address = directory + '/' + utf8 + SocketSuffix;
    if (!isPlainName(utf8) || !fits(*address)) {
        const QByteArray hashed = '%' + QCryptographicHash::hash(utf8, QCryptographicHash::Sha256).toHex().left(40);
        *address = directory + '/' + hashed + SocketSuffix;
    }
    if (!fits(*address)) {
        *error = IpmbErrorInfo(IpmbErrorCode::InvalidArgument,
                               QStringLiteral("The bus directory %1 is too long for a socket address (%2 bytes at most)")
                                       .arg(QString::fromLocal8Bit(directory)).arg(sizeof(sockaddr_un::sun_path) - 1));
        return false;
    }
    return true;
}

static QByteArray lockPathOf(const QByteArray &address)
{
    Q_ASSERT(address.endsWith(SocketSuffix));
    return address.chopped(SocketSuffix.size()) + LockSuffix;
}

static socklen_t socketAddress(const QByteArray &path, sockaddr_un *address)
{
    std::memset(address, 0, sizeof(*address));
    address->sun_family = AF_UNIX;
    Q_ASSERT(path.size() < qsizetype(sizeof(address->sun_path)));
    std::memcpy(address->sun_path, path.constData(), size_t(path.size()));
    return socklen_t(offsetof(sockaddr_un, sun_path) + size_t(path.size()) + 1);
}

static int newStreamSocket()
{
    return ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

ConnectStatus connectTo(const QByteArray &address, Socket *socket, IpmbErrorInfo *error)
{
    const int fd = newStreamSocket();
    if (fd < 0) {
        *error = fromErrno(errno, QStringLiteral("socket"));
        return ConnectStatus::Failed;
    }
    sockaddr_un sa;
    const socklen_t length = socketAddress(address, &sa);
    int result;
    do {
        result = ::connect(fd, reinterpret_cast<const sockaddr *>(&sa), length);
    } while (result < 0 && errno == EINTR);
    // A local stream connect completes at once or fails with EAGAIN when the backlog is full.
    // No file (ENOENT), a file nobody listens on (ECONNREFUSED: its controller died) and a full
    // backlog all make the caller try again, or run for controller.
    if (result < 0) {
        const int saved = errno;
        ::close(fd);
        if (saved == ECONNREFUSED || saved == ENOENT || saved == EAGAIN)
            return ConnectStatus::NoListener;
        *error = fromErrno(saved, QStringLiteral("connect to %1").arg(QString::fromLocal8Bit(address)));
        return ConnectStatus::Failed;
    }
    *socket = fd;
    return ConnectStatus::Connected;
}

// Takes the election lock of `address`, or returns -1 (with *inUse when another process holds it).
static int takeElectionLock(const QByteArray &lockPath, bool *inUse, IpmbErrorInfo *error)
{
    *inUse = false;
    // A controller that leaves removes the lock file while it holds the lock; whoever locked the
    // removed file meanwhile holds nothing, sees it, and tries the new file. Bounded, in case the
    // files change under us for another reason.
    for (int attempt = 0; attempt < 16; ++attempt) {
        const int fd = ::open(lockPath.constData(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            *error = fromErrno(errno, QStringLiteral("open %1").arg(QString::fromLocal8Bit(lockPath)));
            return -1;
        }
        int result;
        do {
            result = ::flock(fd, LOCK_EX | LOCK_NB);
        } while (result < 0 && errno == EINTR);
        if (result < 0) {
            const int saved = errno;
            ::close(fd);
            if (saved == EWOULDBLOCK) {
                *inUse = true;
                return -1;
            }
            *error = fromErrno(saved, QStringLiteral("flock %1").arg(QString::fromLocal8Bit(lockPath)));
            return -1;
        }
        struct stat held, linked;
        if (::fstat(fd, &held) == 0 && ::lstat(lockPath.constData(), &linked) == 0 && held.st_dev == linked.st_dev
            && held.st_ino == linked.st_ino) {
            return fd;
        }
        ::close(fd);
    }
    *inUse = true;
    return -1;
}

ListenStatus listenOn(const QByteArray &address, Listener *listener, IpmbErrorInfo *error)
{
    bool inUse = false;
    const int lock = takeElectionLock(lockPathOf(address), &inUse, error);
    if (lock < 0)
        return inUse ? ListenStatus::AddressInUse : ListenStatus::Failed;
    const auto failed = [&](const QString &context) {
        *error = fromErrno(errno, context);
        ::close(lock);
        return ListenStatus::Failed;
    };
    // The socket file of a controller that died is still there; the lock says it is ours now.
    if (::unlink(address.constData()) != 0 && errno != ENOENT)
        return failed(QStringLiteral("cannot remove the stale %1").arg(QString::fromLocal8Bit(address)));
    const int fd = newStreamSocket();
    if (fd < 0)
        return failed(QStringLiteral("socket"));
    sockaddr_un sa;
    const socklen_t length = socketAddress(address, &sa);
    if (::bind(fd, reinterpret_cast<const sockaddr *>(&sa), length) < 0 || ::listen(fd, SOMAXCONN) < 0) {
        const int saved = errno;
        ::close(fd);
        errno = saved;
        return failed(QStringLiteral("cannot listen on %1").arg(QString::fromLocal8Bit(address)));
    }
    listener->socket = fd;
    listener->lock = lock;
    listener->address = address;
    return ListenStatus::Listening;
}

void closeListener(Listener *listener)
{
    if (listener->lock < 0)
        return;
    // Both files go while the lock is still held: nobody can have bound or locked them since.
    ::unlink(listener->address.constData());
    ::unlink(lockPathOf(listener->address).constData());
    closeSocket(listener->socket);
    ::close(int(listener->lock));
    *listener = Listener();
}

Socket acceptFrom(Socket listener, IpmbErrorInfo *error)
{
    int fd;
    do {
        fd = ::accept4(int(listener), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0 && errno != EAGAIN && errno != EWOULDBLOCK && error)
        *error = fromErrno(errno, QStringLiteral("accept"));
    return fd < 0 ? InvalidSocket : Socket(fd);
}

bool peerCredentials(Socket socket, Credentials *credentials)
{
    ucred cred = {};
    socklen_t length = sizeof(cred);
    if (::getsockopt(int(socket), SOL_SOCKET, SO_PEERCRED, &cred, &length) < 0)
        return false;
    credentials->pid = cred.pid;
    credentials->uid = cred.uid;
    return true;
}

IoResult read(Socket socket, char *buffer, qint64 size, QList<qintptr> *handles)
{
    iovec iov {buffer, size_t(size)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * IpmbLimits::MaxHandlesPerIo)];
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n;
    do {
        n = ::recvmsg(int(socket), &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return {IoStatus::WouldBlock, 0, {}};
        if (errno == ECONNRESET)
            return {IoStatus::Closed, 0, {}};
        return {IoStatus::Failed, 0, fromErrno(errno, QStringLiteral("recvmsg"))};
    }
    bool received = false;
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const int *fds = reinterpret_cast<const int *>(CMSG_DATA(c));
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, fds + i, sizeof(int));
            received = true;
            if (handles)
                handles->append(fd);
            else
                ::close(fd); // nobody expects handles here
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
        return {IoStatus::Failed, 0,
                IpmbErrorInfo(IpmbErrorCode::Resource,
                              QStringLiteral("file descriptors sent by the peer were lost (out of descriptors?)"))};
    }
    if (n == 0 && !received)
        return {IoStatus::Closed, 0, {}};
    return {IoStatus::Ok, n, {}};
}

IoResult write(Socket socket, const IoSlice *slices, int count, const qintptr *handles, int handleCount)
{
    iovec iov[64];
    count = qMin(count, int(sizeof(iov) / sizeof(iov[0])));
    for (int i = 0; i < count; ++i) {
        iov[i].iov_base = const_cast<char *>(slices[i].data);
        iov[i].iov_len = size_t(slices[i].size);
    }
    msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = size_t(count);
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * IpmbLimits::MaxHandlesPerIo)];
    Q_ASSERT(handleCount <= IpmbLimits::MaxHandlesPerIo);
    if (handleCount > 0) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * size_t(handleCount));
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * size_t(handleCount));
        for (int i = 0; i < handleCount; ++i) {
            const int fd = int(handles[i]);
            std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
        }
    }
    ssize_t n;
    do {
        n = ::sendmsg(int(socket), &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return {IoStatus::Ok, n, {}};
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return {IoStatus::WouldBlock, 0, {}};
    if (errno == EPIPE || errno == ECONNRESET)
        return {IoStatus::Closed, 0, {}};
    return {IoStatus::Failed, 0, fromErrno(errno, QStringLiteral("sendmsg"))};
}

void closeSocket(Socket socket)
{
    if (socket != InvalidSocket)
        ::close(int(socket));
}

void closeHandle(qintptr handle)
{
    ::close(int(handle));
}

qintptr duplicateHandle(qintptr handle, QString *errorString)
{
    const int fd = ::fcntl(int(handle), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        const int error = errno;
        *errorString = QCoreApplication::translate("IpmbNativeHandle", "Cannot duplicate handle %1: %2")
                               .arg(handle).arg(qt_error_string(error));
        errno = error; // for the caller, whatever formatting the message did
    }
    return fd;
}

void raiseHandleLimit()
{
    rlimit limit;
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
            qCDebug(lcIpmbTransport, "cannot raise RLIMIT_NOFILE: %s", qPrintable(qt_error_string(errno)));
    }
}

void releaseFreeMemory()
{
    // glibc keeps freed memory in its arenas (the controller's and each I/O thread's have one of
    // their own) and returns only the top of the main heap by itself.
    ::malloc_trim(0);
}

qint64 handleLimit()
{
    rlimit limit;
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return std::numeric_limits<qint64>::max();
    return qint64(limit.rlim_cur);
}

bool poll(PollEntry *entries, int count, int timeoutMsecs)
{
    // As many entries as the caller has: a controller polls one per endpoint, and a fixed array
    // here once ignored every endpoint beyond the 1,024th. Kept per thread, so it keeps its memory.
    thread_local std::vector<pollfd> fds;
    thread_local std::vector<int> map;
    fds.clear();
    map.clear();
    for (int i = 0; i < count; ++i) {
        entries[i].readable = entries[i].writable = false;
        if (!entries[i].wantRead && !entries[i].wantWrite)
            continue;
        fds.push_back({int(entries[i].socket),
                       short((entries[i].wantRead ? POLLIN : 0) | (entries[i].wantWrite ? POLLOUT : 0)), 0});
        map.push_back(i);
    }
    const int n = ::poll(fds.data(), nfds_t(fds.size()), timeoutMsecs);
    if (n < 0) {
        if (errno == EINTR)
            return true;
        qCWarning(lcIpmbTransport, "poll failed: %s", qPrintable(qt_error_string(errno)));
        return false;
    }
    for (size_t j = 0; j < fds.size(); ++j) {
        PollEntry &e = entries[map[j]];
        const short r = fds[j].revents;
        // Errors and hang-ups surface as a read of 0 or -1, which is where they are handled.
        e.readable = e.wantRead && (r & (POLLIN | POLLHUP | POLLERR | POLLNVAL));
        e.writable = e.wantWrite && (r & (POLLOUT | POLLHUP | POLLERR | POLLNVAL));
    }
    return true;
}

Waker::Waker()
    : m_socket(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC))
{
    if (m_socket < 0)
        qCWarning(lcIpmbTransport, "eventfd failed: %s", qPrintable(qt_error_string(errno)));
}

Waker::~Waker()
{
    closeSocket(m_socket);
}

void Waker::wake()
{
    const quint64 one = 1;
    [[maybe_unused]] ssize_t n = ::write(int(m_socket), &one, sizeof(one));
}

void Waker::drain()
{
    quint64 value;
    [[maybe_unused]] ssize_t n = ::read(int(m_socket), &value, sizeof(value));
}

} // namespace IpmbPlatform
