// SPDX-License-Identifier: BSD-3-Clause
// Linux: AF_UNIX stream sockets in a private runtime directory, flock(2) for the election,
// SO_PEERCRED, poll(2) and epoll(7) (for a controller with many endpoints), eventfd(2).
// Over 600 lines because the layout keeps one file per OS behind ipmbplatform_p.h (shared memory,
// a separate seam, has its own); most of it is the checks of the bus directory and of errno.

#include "ipmbplatform_p.h"
#include "ipmblogging_p.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qcryptographichash.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>
#include <vector>

#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
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

bool processExists(qint64 pid)
{
    if (pid <= 0 || pid > std::numeric_limits<pid_t>::max())
        return false;
    return ::kill(pid_t(pid), 0) == 0 || errno == EPERM;  // EPERM: it exists, as another user's
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

bool socketPair(Socket *first, Socket *second, IpmbErrorInfo *error)
{
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
        *error = fromErrno(errno, QStringLiteral("socketpair"));
        return false;
    }
    *first = fds[0];
    *second = fds[1];
    return true;
}

bool isLocalStreamSocket(qintptr handle)
{
    struct stat st;
    if (::fstat(int(handle), &st) < 0 || !S_ISSOCK(st.st_mode))
        return false;
    int value = 0;
    socklen_t length = sizeof(value);
    if (::getsockopt(int(handle), SOL_SOCKET, SO_DOMAIN, &value, &length) < 0 || value != AF_UNIX)
        return false;
    length = sizeof(value);
    return ::getsockopt(int(handle), SOL_SOCKET, SO_TYPE, &value, &length) == 0 && value == SOCK_STREAM;
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

// poll() keeps an epoll set per thread when it waits for many sockets, and registers a socket once,
// by its descriptor. When a socket is closed and its number is reused by a new one, the set must
// register the new one: closeSocket() counts closes per descriptor number, and poll() registers a
// socket again when the count changed since it did. Descriptors up to Linux's default nr_open
// (1,048,576) are counted, in chunks allocated when a descriptor of theirs is first closed.
namespace {
class CloseCounts
{
public:
    static constexpr int ChunkBits = 12;
    static constexpr int ChunkSize = 1 << ChunkBits;
    static constexpr int Chunks = 256;

    static bool covers(int fd) { return fd >= 0 && fd < Chunks * ChunkSize; }
    quint32 count(int fd) const
    {
        const std::atomic<quint32> *chunk = m_chunks[fd >> ChunkBits].load(std::memory_order_acquire);
        return chunk ? chunk[fd & (ChunkSize - 1)].load(std::memory_order_acquire) : 0;
    }
    void closing(int fd)
    {
        if (!covers(fd))
            return;
        std::atomic<std::atomic<quint32> *> &slot = m_chunks[fd >> ChunkBits];
        std::atomic<quint32> *chunk = slot.load(std::memory_order_acquire);
        if (!chunk) {
            // Never freed: at most 4 MiB for a million descriptors, and reachable from here.
            auto *fresh = new std::atomic<quint32>[ChunkSize]();
            if (slot.compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel))
                chunk = fresh;
            else
                delete[] fresh; // another thread was first; chunk is its
        }
        chunk[fd & (ChunkSize - 1)].fetch_add(1, std::memory_order_acq_rel);
    }

private:
    std::atomic<std::atomic<quint32> *> m_chunks[Chunks] = {};
};

CloseCounts closeCounts; // constant-initialised
} // namespace

static void forgetPolled(int fd);

void closeSocket(Socket socket)
{
    if (socket == InvalidSocket)
        return;
    forgetPolled(int(socket));
    closeCounts.closing(int(socket)); // before the number can be reused
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

// Errors and hang-ups surface as a read of 0 or -1 (or a failed write), which is where they are
// handled: both count as readable and writable.
static void setReady(PollEntry &e, bool in, bool out, bool failure)
{
    e.readable = e.wantRead && (in || failure);
    e.writable = e.wantWrite && (out || failure);
}

static bool pollFew(PollEntry *entries, int count, int timeoutMsecs)
{
    // As many entries as the caller has: a fixed array here once ignored every endpoint beyond
    // the 1,024th. Kept per thread, so it keeps its memory.
    thread_local std::vector<pollfd> fds;
    thread_local std::vector<int> map;
    fds.clear();
    map.clear();
    for (int i = 0; i < count; ++i) {
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
        const short r = fds[j].revents;
        setReady(entries[map[j]], r & POLLIN, r & POLLOUT, r & (POLLHUP | POLLERR | POLLNVAL));
    }
    return true;
}

// A controller polls one socket per endpoint, and most of them are idle: poll(2) costs it
// ~250 ns per socket per call in the kernel (a wait-queue entry added and removed on each),
// 0.5 ms of every turn of its loop at 2,000 endpoints. An epoll set registers each socket once and
// reports the ready ones only; what changes from one call to the next (a socket added, removed,
// or waiting for writability too) is applied with epoll_ctl. Used from a threshold on, where it
// is cheaper than poll(2); the set lives as long as its thread, or until that thread polls few
// sockets again.
class EpollSet
{
public:
    static constexpr int EnterAt = 64;   // sockets wanted in one call
    static constexpr int LeaveBelow = 16;

    EpollSet() { s_current = this; }
    ~EpollSet()
    {
        reset();
        s_current = nullptr;
    }
    Q_DISABLE_COPY_MOVE(EpollSet)

    // This thread's set, if it has one: closeSocket() takes a socket out of it before closing it.
    static EpollSet *current() { return s_current; }

    bool active() const { return m_epoll >= 0; }
    void reset()
    {
        if (m_epoll >= 0)
            ::close(m_epoll);
        m_epoll = -1;
        m_slots.clear();
        m_registered.clear();
    }

    // Before `fd` is closed by this thread. A socket closed while a copy of its descriptor lives
    // on (in a child between fork() and exec(), say) would stay in the set under its old number,
    // out of reach of EPOLL_CTL_DEL, and could report ready until the copy goes.
    void forget(int fd)
    {
        if (m_epoll < 0 || fd < 0 || size_t(fd) >= m_slots.size() || m_slots[size_t(fd)].events == 0)
            return;
        ::epoll_ctl(m_epoll, EPOLL_CTL_DEL, fd, nullptr);
        m_slots[size_t(fd)].events = 0; // and out of m_registered at the next call
    }

    // Returns false when it cannot serve this call (then the caller resets the set and poll(2)
    // serves it): no epoll, a descriptor beyond the counted ones, one socket twice.
    bool poll(PollEntry *entries, int count, int timeoutMsecs, bool *ok)
    {
        if (m_epoll < 0) {
            m_epoll = ::epoll_create1(EPOLL_CLOEXEC);
            if (m_epoll < 0)
                return false;
        }
        ++m_call;
        bool failed = false;   // a socket the kernel would not register: report it at once
        for (int i = 0; i < count; ++i) {
            PollEntry &e = entries[i];
            if (!e.wantRead && !e.wantWrite)
                continue;
            const int fd = int(e.socket);
            if (!CloseCounts::covers(fd))
                return false;
            if (size_t(fd) >= m_slots.size())
                m_slots.resize(size_t(fd) + 1);
            Slot &slot = m_slots[size_t(fd)];
            if (slot.call == m_call)
                return false; // twice in one call
            slot.call = m_call;
            slot.index = i;
            const quint32 events = (e.wantRead ? quint32(EPOLLIN) : 0u) | (e.wantWrite ? quint32(EPOLLOUT) : 0u);
            const quint32 closes = closeCounts.count(fd);
            if (slot.events != 0 && slot.closes == closes && slot.events == events)
                continue;
            epoll_event ev = {};
            ev.events = events;
            ev.data.fd = fd;
            int result;
            if (slot.events != 0 && slot.closes == closes) {
                result = ::epoll_ctl(m_epoll, EPOLL_CTL_MOD, fd, &ev);
                if (result < 0 && errno == ENOENT) // closed and reused behind closeSocket()'s back
                    result = ::epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &ev);
            } else {
                // New, or a new socket under a number that was closed: the kernel dropped the old
                // one's registration with its last descriptor.
                if (!slot.listed) {
                    slot.listed = true;
                    m_registered.push_back(fd);
                }
                result = ::epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &ev);
                if (result < 0 && errno == EEXIST) // the old file lives on in a duplicate
                    result = ::epoll_ctl(m_epoll, EPOLL_CTL_MOD, fd, &ev);
            }
            if (result < 0) {
                // A bad descriptor: as poll(2) reports POLLNVAL, report it ready, so that its
                // read or write fails where the caller handles failures.
                slot.events = 0;
                failed = true;
                continue;
            }
            slot.events = events;
            slot.closes = closes;
        }
        // Sockets registered before and not wanted now (gone, parked, or closed): out of the set,
        // or they would report ready again and again.
        for (size_t j = 0; j < m_registered.size();) {
            const int fd = m_registered[j];
            Slot &slot = m_slots[size_t(fd)];
            if (slot.call == m_call && slot.events != 0) {
                ++j;
                continue;
            }
            if (slot.events != 0 && slot.closes == closeCounts.count(fd))
                ::epoll_ctl(m_epoll, EPOLL_CTL_DEL, fd, nullptr); // else closed: gone already
            slot.events = 0;
            slot.listed = false;
            m_registered[j] = m_registered.back();
            m_registered.pop_back();
        }
        if (failed) {
            for (int i = 0; i < count; ++i) {
                const int fd = int(entries[i].socket);
                if ((entries[i].wantRead || entries[i].wantWrite) && m_slots[size_t(fd)].events == 0)
                    setReady(entries[i], false, false, true);
            }
            timeoutMsecs = 0; // and whatever else is ready now
        }
        m_events.resize(qMax<size_t>(m_registered.size(), 1));
        const int n = ::epoll_wait(m_epoll, m_events.data(), int(m_events.size()), timeoutMsecs);
        if (n < 0) {
            *ok = errno == EINTR;
            if (!*ok)
                qCWarning(lcIpmbTransport, "epoll_wait failed: %s", qPrintable(qt_error_string(errno)));
            return true;
        }
        for (int k = 0; k < n; ++k) {
            const int fd = m_events[size_t(k)].data.fd;
            const quint32 r = m_events[size_t(k)].events;
            if (fd < 0 || size_t(fd) >= m_slots.size() || m_slots[size_t(fd)].call != m_call)
                continue; // the registration of a closed socket whose file lives on elsewhere
            setReady(entries[m_slots[size_t(fd)].index], r & EPOLLIN, r & EPOLLOUT, r & (EPOLLHUP | EPOLLERR));
        }
        *ok = true;
        return true;
    }

private:
    struct Slot
    {
        quint32 events = 0;   // registered for; 0: not in the set
        quint32 closes = 0;   // closeCounts.count(fd) when registered
        quint64 call = 0;     // the last call that wanted it
        int index = -1;       // its entry in that call
        bool listed = false;  // in m_registered
    };

    static thread_local EpollSet *s_current;
    int m_epoll = -1;
    quint64 m_call = 0;
    std::vector<Slot> m_slots;      // by descriptor
    std::vector<int> m_registered;  // descriptors that may be in the set (Slot::listed)
    std::vector<epoll_event> m_events;
};

thread_local EpollSet *EpollSet::s_current = nullptr;

static void forgetPolled(int fd)
{
    if (EpollSet *set = EpollSet::current())
        set->forget(fd);
}

bool poll(PollEntry *entries, int count, int timeoutMsecs)
{
    thread_local EpollSet set;
    int wanted = 0;
    for (int i = 0; i < count; ++i) {
        entries[i].readable = entries[i].writable = false;
        wanted += entries[i].wantRead || entries[i].wantWrite;
    }
    const bool many = wanted >= EpollSet::EnterAt || (set.active() && wanted >= EpollSet::LeaveBelow);
    // A thread that only looks (timeout 0: the endpoint's thread reading while it is idle) gets no
    // set of its own: one poll(2) costs what building the set would, and the set would hold a
    // descriptor for as long as the thread lives.
    if (many && (set.active() || timeoutMsecs != 0)) {
        bool ok = true;
        if (set.poll(entries, count, timeoutMsecs, &ok))
            return ok;
        set.reset(); // it could not serve this call: start again clean when it can
    } else if (set.active() && !many) {
        set.reset();
    }
    return pollFew(entries, count, timeoutMsecs);
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

ReadinessSet::ReadinessSet()
    : m_handle(::epoll_create1(EPOLL_CLOEXEC))
{
    if (m_handle < 0)
        qCWarning(lcIpmbTransport, "epoll_create1 failed: %s", qPrintable(qt_error_string(errno)));
}

ReadinessSet::~ReadinessSet()
{
    if (m_handle >= 0)
        ::close(int(m_handle));
}

void ReadinessSet::add(Socket socket)
{
    epoll_event ev = {};
    ev.events = EPOLLIN;  // level-triggered: readable until read
    ev.data.fd = int(socket);
    if (m_handle >= 0 && ::epoll_ctl(int(m_handle), EPOLL_CTL_ADD, int(socket), &ev) != 0)
        qCWarning(lcIpmbTransport, "epoll_ctl(ADD) failed: %s", qPrintable(qt_error_string(errno)));
}

void ReadinessSet::remove(Socket socket)
{
    if (m_handle >= 0)
        ::epoll_ctl(int(m_handle), EPOLL_CTL_DEL, int(socket), nullptr);
}

} // namespace IpmbPlatform
