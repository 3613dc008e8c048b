// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBSHAREDMEMORY_P_H
#define IPMBSHAREDMEMORY_P_H

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

// The OS seam for IpmbMemoryRegion: shared-memory objects, mappings and a process-shared lock.
// Implemented once per OS in ipmbsharedmemory_<os>.cpp; no OS header is included here. The region
// header layout is in src/ipmbqt/ipmbmemoryregion_p.h; the reference count, the mapping cache and
// all validation live in src/ipmbqt/ipmbregionmapping.cpp.

#include "ipmbqtglobal.h"
#include "ipmberror_p.h"

#include <QtCore/qstring.h>

namespace IpmbPlatform {

// The granularity of mappings (offsets passed to mapSharedMemory() need not be multiples of it).
qsizetype pageSize();

// A new anonymous shared-memory object of `size` bytes (a memfd on Linux), zero-filled, that
// nobody can shrink. Returns the owned handle, or -1 with `error` set.
qintptr createSharedMemory(qsizetype size, IpmbErrorInfo *error);

struct SharedMemoryInfo
{
    qint64 size = 0;            // current size of the object in bytes
    quint64 id = 0;             // identity of the kernel object, equal in every process...
    quint64 device = 0;         // ...together with this (inode and device numbers on Linux)
};
// Facts about `handle`, in one system call. Fails with InvalidHandleError for anything that is not
// a memory-backed file (pipes, sockets, devices, closed handles).
bool sharedMemoryInfo(qintptr handle, SharedMemoryInfo *info, IpmbErrorInfo *error);
// True only for objects sealed against shrinking: then no access below their size can ever fault.
bool cannotShrink(qintptr handle);

// Reads `size` bytes at `offset` without mapping anything; a short read is an InvalidHandleError.
bool readSharedMemory(qintptr handle, qint64 offset, void *buffer, qsizetype size,
                      IpmbErrorInfo *error);

// Maps `length` bytes at `offset` shared, read-write. Returns the address of byte `offset` (the
// mapping itself starts at the page boundary below it), or nullptr with `error` set.
void *mapSharedMemory(qintptr handle, qint64 offset, qsizetype length, IpmbErrorInfo *error);
// Undoes mapSharedMemory(): `address` and `length` exactly as passed to / returned by it.
void unmapSharedMemory(void *address, qsizetype length);

// A lock that works across processes and survives the death of its holder. It lives in shared
// memory: ProcessSharedLockSize bytes, aligned to 8, initialised once by its creator.
constexpr qsizetype ProcessSharedLockSize = 64;
bool initProcessSharedLock(void *lock, IpmbErrorInfo *error);
// Blocks until the lock is ours. `ownerDied` tells that the previous holder died while holding it
// (the lock is ours and usable again; the data it protects may be half-written).
bool lockProcessShared(void *lock, bool *ownerDied, IpmbErrorInfo *error);
bool unlockProcessShared(void *lock, IpmbErrorInfo *error);

// Sleeping on a 32-bit word of shared memory, across processes (a futex on Linux): waitOnAddress()
// sleeps while *address == expected, at most msecs (false on timeout); wakeAddressWaiters() wakes
// every thread sleeping on it. Spurious wake-ups happen: callers re-check their condition.
bool waitOnAddress(void *address, qint32 expected, int msecs);
void wakeAddressWaiters(void *address);

} // namespace IpmbPlatform

#endif // IPMBSHAREDMEMORY_P_H
