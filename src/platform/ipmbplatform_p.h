// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBPLATFORM_P_H
#define IPMBPLATFORM_P_H

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

// The only seam between IpmbQt and the operating system. Everything here is implemented once per OS
// in ipmbplatform_<os>.cpp; no OS header is included outside those files. Framing, handshake and
// routing are OS-independent and live in src/ipmbqt/.

#include "ipmbqtglobal.h"
#include "ipmberror_p.h"
#include "ipmblimits_p.h"

#include <QtCore/qbytearray.h>
#include <QtCore/qlist.h>
#include <QtCore/qstring.h>

namespace IpmbPlatform {

using Socket = qintptr;
constexpr Socket InvalidSocket = -1;

struct Credentials
{
    qint64 pid = -1;
    qint64 uid = -1;
};

enum class IoStatus { Ok, WouldBlock, Closed, Failed };

struct IoResult
{
    IoStatus status = IoStatus::Ok;
    qint64 bytes = 0;          // transferred, when status is Ok
    IpmbErrorInfo error;       // when status is Failed
};

struct IoSlice
{
    const char *data;
    qint64 size;
};

IPMBQT_AUTOTEST_EXPORT qint64 currentUserId();
IPMBQT_AUTOTEST_EXPORT qint64 currentProcessId();
// Whether a process with this id exists now (presence after failover: has a peer's process died?).
IPMBQT_AUTOTEST_EXPORT bool processExists(qint64 pid);

// The OS-level address of bus `identifier` for this process's user (doc/protocol.md,
// "Transport"). On Linux a socket path in the user's private runtime directory, which this creates
// if needed and checks (owner, mode, not a symlink) every time. False with a PermissionError (the
// directory is not safe) or an InvalidArgumentError (the path would be too long).
IPMBQT_AUTOTEST_EXPORT bool busAddress(const QString &identifier, QByteArray *address, IpmbErrorInfo *error);

enum class ConnectStatus { Connected, NoListener, Failed };
// Connects a non-blocking stream socket to `address`. NoListener means nobody listens there (yet).
IPMBQT_AUTOTEST_EXPORT ConnectStatus connectTo(const QByteArray &address, Socket *socket, IpmbErrorInfo *error);

// The controller's side of a bus address: the listening socket and the election lock it holds.
struct Listener
{
    Socket socket = InvalidSocket;
    qintptr lock = -1;
    QByteArray address;
};
enum class ListenStatus { Listening, AddressInUse, Failed };
// Runs the election for `address`: takes its lock (AddressInUse when another process holds it),
// then listens there. The kernel releases the lock when the holder's process dies.
IPMBQT_AUTOTEST_EXPORT ListenStatus listenOn(const QByteArray &address, Listener *listener, IpmbErrorInfo *error);
// Stops listening: removes the address, so that the next election starts clean, then releases
// the lock.
IPMBQT_AUTOTEST_EXPORT void closeListener(Listener *listener);

// Accepts one pending connection (non-blocking); InvalidSocket when there is none, or when it
// failed (then *error says why: ResourceError when this process is out of descriptors).
IPMBQT_AUTOTEST_EXPORT Socket acceptFrom(Socket listener, IpmbErrorInfo *error = nullptr);

IPMBQT_AUTOTEST_EXPORT bool peerCredentials(Socket socket, Credentials *credentials);

// A connected pair of local stream sockets (non-blocking, not inherited by child processes): a
// direct channel between two endpoints. Their peer credentials name this process.
IPMBQT_AUTOTEST_EXPORT bool socketPair(Socket *first, Socket *second, IpmbErrorInfo *error);
// Whether `handle` is a local stream socket (what socketPair() makes), and not any other file.
IPMBQT_AUTOTEST_EXPORT bool isLocalStreamSocket(qintptr handle);

// Reads bytes; handles that arrived with them are appended to *handles (owned by the caller).
// Handles lost in transit (the reader ran out of descriptors) make it fail.
IPMBQT_AUTOTEST_EXPORT IoResult read(Socket socket, char *buffer, qint64 size, QList<qintptr> *handles = nullptr);
// Writes bytes; the handles (at most IpmbLimits::MaxHandlesPerIo) go with the first byte written.
IPMBQT_AUTOTEST_EXPORT IoResult write(Socket socket, const IoSlice *slices, int count,
                                      const qintptr *handles = nullptr, int handleCount = 0);
IPMBQT_AUTOTEST_EXPORT void closeSocket(Socket socket);

// Owned kernel handles (IpmbNativeHandle): close, and duplicate (InvalidNative on failure).
void closeHandle(qintptr handle);
// A new handle to the same kernel object, or -1 with a readable reason (errno kept on POSIX).
qintptr duplicateHandle(qintptr handle, QString *errorString);
// Raises this process's limit of open handles as far as it may (the soft limit to the hard one).
IPMBQT_AUTOTEST_EXPORT void raiseHandleLimit();
// Gives memory that this process has freed back to the system, where the allocator keeps it (a
// queue that held megabytes for a stopped receiver leaves them behind otherwise). Not cheap: call it
// once an episode is over, not per message.
IPMBQT_AUTOTEST_EXPORT void releaseFreeMemory();
// How many handles this process may have open at once (the soft RLIMIT_NOFILE on Linux).
IPMBQT_AUTOTEST_EXPORT qint64 handleLimit();

// Waits for readiness of sockets. Entries with neither flag set are ignored. A thread that polls
// many sockets keeps a kernel set of them between calls (epoll on Linux), known by descriptor
// number: a socket passed to poll() must be closed with closeSocket(), which tells that set.
struct PollEntry
{
    Socket socket = InvalidSocket;
    bool wantRead = false;
    bool wantWrite = false;
    bool readable = false;  // out: data, end of stream or error to read
    bool writable = false;  // out
};
// Returns false only on an unexpected OS error; a timeout returns true with nothing ready.
IPMBQT_AUTOTEST_EXPORT bool poll(PollEntry *entries, int count, int timeoutMsecs);

// Wakes a thread blocked in poll(): the waker's socket becomes readable until drain().
class IPMBQT_AUTOTEST_EXPORT Waker
{
public:
    Waker();
    ~Waker();
    Q_DISABLE_COPY_MOVE(Waker)
    Socket socket() const { return m_socket; }
    void wake();
    void drain();

private:
    Socket m_socket = InvalidSocket;
};

// One handle that is readable while any of its sockets is (an epoll set on Linux): what an event
// loop watches, with one QSocketNotifier, for sockets that come and go. Sockets are removed
// before they are closed. Thread-safe.
class IPMBQT_AUTOTEST_EXPORT ReadinessSet
{
public:
    ReadinessSet();
    ~ReadinessSet();
    Q_DISABLE_COPY_MOVE(ReadinessSet)
    qintptr handle() const { return m_handle; }  // -1 if the OS would not make one
    void add(Socket socket);
    void remove(Socket socket);

private:
    qintptr m_handle = -1;
};

} // namespace IpmbPlatform

#endif // IPMBPLATFORM_P_H
