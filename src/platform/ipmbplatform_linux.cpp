// SPDX-License-Identifier: BSD-3-Clause
// Linux: AF_UNIX stream sockets in the abstract namespace, SO_PEERCRED, poll(2), eventfd(2).

#include "ipmbplatform_p.h"
#include "ipmblogging_p.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qcryptographichash.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

namespace IpmbPlatform {

// The one mapping from errno to IpmbEndpoint::Error.
static IpmbErrorInfo fromErrno(int error, const QString &context)
{
    IpmbEndpoint::Error code = IpmbEndpoint::UnknownError;
    switch (error) {
    case EACCES:
    case EPERM:
        code = IpmbEndpoint::PermissionError;
        break;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
        code = IpmbEndpoint::ResourceError;
        break;
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
        code = IpmbEndpoint::DisconnectedError;
        break;
    case ETIMEDOUT:
        code = IpmbEndpoint::TimeoutError;
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

QByteArray busAddress(const QString &identifier, qint64 uid)
{
    const QByteArray prefix = "ipmbqt." + QByteArray::number(uid) + '.';
    QByteArray name = prefix + identifier.toUtf8();
    // sun_path holds 108 bytes, one of which is the leading NUL of an abstract name.
    if (name.size() > qsizetype(sizeof(sockaddr_un::sun_path)) - 1)
        name = prefix + QCryptographicHash::hash(identifier.toUtf8(), QCryptographicHash::Sha256).toHex();
    return name;
}

static socklen_t abstractAddress(const QByteArray &name, sockaddr_un *address)
{
    std::memset(address, 0, sizeof(*address));
    address->sun_family = AF_UNIX;
    Q_ASSERT(name.size() < qsizetype(sizeof(address->sun_path)));
    std::memcpy(address->sun_path + 1, name.constData(), size_t(name.size()));
    return socklen_t(offsetof(sockaddr_un, sun_path) + 1 + size_t(name.size()));
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
    const socklen_t length = abstractAddress(address, &sa);
    int result;
    do {
        result = ::connect(fd, reinterpret_cast<const sockaddr *>(&sa), length);
    } while (result < 0 && errno == EINTR);
    // A local stream connect completes at once or fails with EAGAIN when the backlog is full;
    // both the "nobody there" and the "full" case make the caller try again.
    if (result < 0) {
        const int saved = errno;
        ::close(fd);
        if (saved == ECONNREFUSED || saved == ENOENT || saved == EAGAIN)
            return ConnectStatus::NoListener;
        *error = fromErrno(saved, QStringLiteral("connect"));
        return ConnectStatus::Failed;
    }
    *socket = fd;
    return ConnectStatus::Connected;
}

ListenStatus listenOn(const QByteArray &address, Socket *socket, IpmbErrorInfo *error)
{
    const int fd = newStreamSocket();
    if (fd < 0) {
        *error = fromErrno(errno, QStringLiteral("socket"));
        return ListenStatus::Failed;
    }
    sockaddr_un sa;
    const socklen_t length = abstractAddress(address, &sa);
    if (::bind(fd, reinterpret_cast<const sockaddr *>(&sa), length) < 0) {
        const int saved = errno;
        ::close(fd);
        if (saved == EADDRINUSE)
            return ListenStatus::AddressInUse;
        *error = fromErrno(saved, QStringLiteral("bind"));
        return ListenStatus::Failed;
    }
    if (::listen(fd, SOMAXCONN) < 0) {
        *error = fromErrno(errno, QStringLiteral("listen"));
        ::close(fd);
        return ListenStatus::Failed;
    }
    *socket = fd;
    return ListenStatus::Listening;
}

Socket acceptFrom(Socket listener)
{
    int fd;
    do {
        fd = ::accept4(int(listener), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        qCWarning(lcIpmbTransport, "accept failed: %s", qPrintable(qt_error_string(errno)));
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
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MaxHandlesPerWrite)];
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
                IpmbErrorInfo(IpmbEndpoint::ResourceError,
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
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MaxHandlesPerWrite)];
    Q_ASSERT(handleCount <= MaxHandlesPerWrite);
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

qint64 handleLimit()
{
    rlimit limit;
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return std::numeric_limits<qint64>::max();
    return qint64(limit.rlim_cur);
}

bool poll(PollEntry *entries, int count, int timeoutMsecs)
{
    constexpr int MaxEntries = 1024;
    pollfd fds[MaxEntries];
    int used = 0;
    int map[MaxEntries];
    for (int i = 0; i < count && used < MaxEntries; ++i) {
        entries[i].readable = entries[i].writable = false;
        if (!entries[i].wantRead && !entries[i].wantWrite)
            continue;
        fds[used].fd = int(entries[i].socket);
        fds[used].events = short((entries[i].wantRead ? POLLIN : 0) | (entries[i].wantWrite ? POLLOUT : 0));
        fds[used].revents = 0;
        map[used++] = i;
    }
    const int n = ::poll(fds, nfds_t(used), timeoutMsecs);
    if (n < 0) {
        if (errno == EINTR)
            return true;
        qCWarning(lcIpmbTransport, "poll failed: %s", qPrintable(qt_error_string(errno)));
        return false;
    }
    for (int j = 0; j < used; ++j) {
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
