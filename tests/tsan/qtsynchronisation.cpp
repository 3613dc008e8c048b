// SPDX-License-Identifier: BSD-3-Clause
//
// Only in the ThreadSanitizer build (IPMBQT_TSAN, ./dev.sh tsan): tells TSan about two kinds of
// synchronisation that happen inside Debian's libQt6Core, which is not built with TSan.
//
// - QWaitCondition::wait(QMutex *) unlocks and relocks the mutex inside libQt6Core. Our own
//   QMutex lock()/unlock() calls are annotated (qmutex.h includes qtsan_impl.h), so without this
//   TSan believes the waiting thread still holds the mutex: it reports "double lock of a mutex"
//   when another thread takes it, and data races on everything the mutex guards.
// - QThread::wait() returns once the thread has finished, but Qt's threads are detached and the
//   hand-over is a QMutex/flag inside libQt6Core: TSan sees no happens-before from the thread's
//   last accesses to the code after wait() (pthread_join would have given one).
//
// The functions below take the place of libQt6Core's exported ones (this library comes first in
// every TSan-build target's link, see the top CMakeLists.txt), add the annotations, and call the
// real function found with dlsym(RTLD_NEXT). They change no behaviour. What is still invisible
// (event posting between threads) is suppressed with named Qt frames in tests/tsan.supp.

#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qmutex.h>
#include <QtCore/qobject.h>
#include <QtCore/qthread.h>
#include <QtCore/qwaitcondition.h>

#include <sanitizer/tsan_interface.h>

#include <dlfcn.h>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <mutex>

namespace {

template <typename Fn>
Fn realFunction(const char *mangled)
{
    void *const f = dlsym(RTLD_NEXT, mangled);
    if (!f) {
        std::fprintf(stderr, "tsan support: %s not found in libQt6Core: %s\n", mangled, dlerror());
        std::abort();
    }
    return reinterpret_cast<Fn>(f);
}

// What QBasicMutex::unlock()/lock() in qmutex.h tell TSan, for the calls libQt6Core makes.
void annotateUnlock(QMutex *mutex)
{
    __tsan_mutex_pre_unlock(mutex, 0);
    __tsan_mutex_post_unlock(mutex, 0);
}

void annotateLock(QMutex *mutex)
{
    __tsan_mutex_pre_lock(mutex, 0);
    __tsan_mutex_post_lock(mutex, 0, 0);
}

} // namespace

QT_BEGIN_NAMESPACE

bool QWaitCondition::wait(QMutex *mutex, QDeadlineTimer deadline)
{
    using Real = bool (*)(QWaitCondition *, QMutex *, QDeadlineTimer);
    static const Real real = realFunction<Real>("_ZN14QWaitCondition4waitEP6QMutex14QDeadlineTimer");
    annotateUnlock(mutex);
    const bool woken = real(this, mutex, deadline);
    annotateLock(mutex);  // relocked, woken or not
    return woken;
}

bool QWaitCondition::wait(QMutex *mutex, unsigned long time)
{
    using Real = bool (*)(QWaitCondition *, QMutex *, unsigned long);
    static const Real real = realFunction<Real>("_ZN14QWaitCondition4waitEP6QMutexm");
    annotateUnlock(mutex);
    const bool woken = real(this, mutex, time);
    annotateLock(mutex);
    return woken;
}

void QThread::start(Priority priority)
{
    using Real = void (*)(QThread *, Priority);
    static const Real real = realFunction<Real>("_ZN7QThread5startENS_8PriorityE");
    // finished() is emitted in the thread itself after run() returned, before wait() can return.
    if (!isRunning()) {
        QObject::connect(this, &QThread::finished, this, [this] { __tsan_release(this); },
                         Qt::DirectConnection);
    }
    real(this, priority);
}

bool QThread::wait(QDeadlineTimer deadline)
{
    using Real = bool (*)(QThread *, QDeadlineTimer);
    static const Real real = realFunction<Real>("_ZN7QThread4waitE14QDeadlineTimer");
    const bool finished = real(this, deadline);
    if (finished)
        __tsan_acquire(this);
    return finished;
}

// QMetaObject::invokeMethod(context, functor, Qt::QueuedConnection) posts an event to the
// context's thread: QCoreApplication::postEvent() appends it to that thread's posted-event list
// under a QMutex inside libQt6Core. Two threads posting to the same thread (the I/O threads of two
// endpoints in one process, to its main thread) grow the same QList there, and TSan, seeing
// neither that mutex nor the frames in between, reports the list's realloc() as a race between
// them. A real mutex per receiving thread (hashed into a few) around the post shows TSan the
// ordering that Qt's provides; it takes no other lock and runs no code of ours while held.
bool QMetaObject::invokeMethodImpl(QObject *object, QtPrivate::QSlotObjectBase *slot, Qt::ConnectionType type,
                                   void *ret)
{
    using Real = bool (*)(QObject *, QtPrivate::QSlotObjectBase *, Qt::ConnectionType, void *);
    static const Real real = realFunction<Real>(
            "_ZN11QMetaObject16invokeMethodImplEP7QObjectPN9QtPrivate15QSlotObjectBaseEN2Qt14ConnectionTypeEPv");
    static std::mutex postLocks[16];
    QThread *const receiving = object && type == Qt::QueuedConnection ? object->thread() : nullptr;
    if (!receiving)
        return real(object, slot, type, ret);
    std::lock_guard<std::mutex> lock(postLocks[(quintptr(receiving) >> 4) % std::size(postLocks)]);
    return real(object, slot, type, ret);
}

QT_END_NAMESPACE
