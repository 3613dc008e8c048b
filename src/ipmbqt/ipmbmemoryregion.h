// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBMEMORYREGION_H
#define IPMBMEMORYREGION_H

#include "ipmbqtglobal.h"
#include "ipmbnativehandle.h"

#include <QtCore/qhashfunctions.h>
#include <QtCore/qmetatype.h>
#include <QtCore/qobjectdefs.h>
#include <QtCore/qshareddata.h>
#include <QtCore/qstring.h>

class IpmbMemoryRegionPrivate;
QT_BEGIN_NAMESPACE
class QDebug;
QT_END_NAMESPACE

// A block of shared memory that several processes map at once (a memfd on Linux). Copies refer to
// the same mapping; a cross-process reference count in the block tells how many holders remain.
class IPMBQT_EXPORT IpmbMemoryRegion
{
    Q_GADGET
    Q_PROPERTY(bool null READ isNull)
    Q_PROPERTY(qsizetype size READ size)
    Q_PROPERTY(quint64 id READ id)
    Q_PROPERTY(int refCount READ refCount)
    Q_PROPERTY(Error error READ error)
    Q_PROPERTY(QString errorString READ errorString)

public:
    enum Error {
        NoError,
        ResourceError,
        InvalidHandleError,
        OutOfRangeError,
        LockError,
        UnknownError
    };
    Q_ENUM(Error)

    IpmbMemoryRegion();
    IpmbMemoryRegion(const IpmbMemoryRegion &other);
    IpmbMemoryRegion(IpmbMemoryRegion &&other) noexcept;
    IpmbMemoryRegion &operator=(const IpmbMemoryRegion &other);
    IpmbMemoryRegion &operator=(IpmbMemoryRegion &&other) noexcept;
    ~IpmbMemoryRegion();
    void swap(IpmbMemoryRegion &other) noexcept
    {
        d.swap(other.d);
        std::swap(m_error, other.m_error);
        m_errorString.swap(other.m_errorString);
    }

    static IpmbMemoryRegion create(qsizetype size);
    static IpmbMemoryRegion fromHandle(const IpmbNativeHandle &handle);

    bool isNull() const;
    qsizetype size() const;
    void *data();
    const void *data() const;
    const void *constData() const;

    // Not const: the view is writable, as data() is.
    IpmbMemoryRegion map(qsizetype offset, qsizetype length);

    bool lock();
    bool unlock();

    int refCount() const;
    bool waitForReleased(int msecs = 30000) const;
    IpmbNativeHandle nativeHandle() const;
    quint64 id() const;

    Error error() const;
    QString errorString() const;
    void clearError();

    friend IPMBQT_EXPORT bool operator==(const IpmbMemoryRegion &lhs, const IpmbMemoryRegion &rhs);
    friend bool operator!=(const IpmbMemoryRegion &lhs, const IpmbMemoryRegion &rhs) { return !(lhs == rhs); }

private:
    friend class IpmbMemoryRegionPrivate;
    explicit IpmbMemoryRegion(IpmbMemoryRegionPrivate *dd);
    bool failOnNullRegion();
    void setError(Error error, const QString &errorString);

    QExplicitlySharedDataPointer<IpmbMemoryRegionPrivate> d;
    // Each copy has its own error state, so that copies used in different threads do not share it.
    Error m_error = NoError;
    QString m_errorString;
};

Q_DECLARE_SHARED(IpmbMemoryRegion)

IPMBQT_EXPORT size_t qHash(const IpmbMemoryRegion &region, size_t seed = 0) noexcept;
#ifndef QT_NO_DEBUG_STREAM
IPMBQT_EXPORT QDebug operator<<(QDebug debug, const IpmbMemoryRegion &region);
#endif

Q_DECLARE_METATYPE(IpmbMemoryRegion)

#endif // IPMBMEMORYREGION_H
