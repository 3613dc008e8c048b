// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBNATIVEHANDLE_H
#define IPMBNATIVEHANDLE_H

#include "ipmbqtglobal.h"

#include <QtCore/qhashfunctions.h>
#include <QtCore/qmetatype.h>
#include <QtCore/qobjectdefs.h>
#include <QtCore/qshareddata.h>

class IpmbNativeHandleData;
QT_BEGIN_NAMESPACE
class QDebug;
class QString;
QT_END_NAMESPACE

// An owned kernel handle (a file descriptor on Linux). Copies share the one handle, which is
// closed when the last copy goes; nothing is ever duplicated implicitly.
class IPMBQT_EXPORT IpmbNativeHandle
{
    Q_GADGET
    Q_PROPERTY(bool null READ isNull)
    Q_PROPERTY(qintptr handle READ handle)

public:
    using Native = qintptr;
    static constexpr Native InvalidNative = -1;

    IpmbNativeHandle();
    IpmbNativeHandle(const IpmbNativeHandle &other);
    IpmbNativeHandle(IpmbNativeHandle &&other) noexcept;
    IpmbNativeHandle &operator=(const IpmbNativeHandle &other);
    IpmbNativeHandle &operator=(IpmbNativeHandle &&other) noexcept;
    ~IpmbNativeHandle();
    void swap(IpmbNativeHandle &other) noexcept { d.swap(other.d); }

    static IpmbNativeHandle adopt(Native handle);
    static IpmbNativeHandle duplicate(Native handle, QString *errorString = nullptr);

    bool isNull() const;
    Native handle() const;
    Native release();

    friend IPMBQT_EXPORT bool operator==(const IpmbNativeHandle &lhs, const IpmbNativeHandle &rhs);
    friend bool operator!=(const IpmbNativeHandle &lhs, const IpmbNativeHandle &rhs) { return !(lhs == rhs); }

private:
    QExplicitlySharedDataPointer<IpmbNativeHandleData> d;
};

Q_DECLARE_SHARED(IpmbNativeHandle)

IPMBQT_EXPORT size_t qHash(const IpmbNativeHandle &handle, size_t seed = 0) noexcept;
#ifndef QT_NO_DEBUG_STREAM
IPMBQT_EXPORT QDebug operator<<(QDebug debug, const IpmbNativeHandle &handle);
#endif

Q_DECLARE_METATYPE(IpmbNativeHandle)

#endif // IPMBNATIVEHANDLE_H
