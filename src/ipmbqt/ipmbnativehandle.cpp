// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbnativehandle.h"
#include "ipmbplatform_p.h"

#include <QtCore/qdebug.h>

/*!
    \class IpmbNativeHandle
    \brief An owned kernel handle: a file descriptor on Linux.

    adopt() takes ownership of a handle you pass in; duplicate() makes a new handle referring to
    the same kernel object and leaves yours alone. Copies of an IpmbNativeHandle share one handle,
    closed when the last copy is destroyed. release() takes the handle back out: the caller owns
    it, and every copy becomes null.

    Attached to an IpmbMessage (IpmbMessage::addHandle()), the handle is passed to the receiving
    process, which gets a new handle to the same open file, pipe, socket or memfd.
*/

class IpmbNativeHandleData : public QSharedData
{
public:
    explicit IpmbNativeHandleData(IpmbNativeHandle::Native h) : handle(h) { }
    ~IpmbNativeHandleData()
    {
        if (handle != IpmbNativeHandle::InvalidNative)
            IpmbPlatform::closeHandle(handle);
    }
    Q_DISABLE_COPY_MOVE(IpmbNativeHandleData)

    IpmbNativeHandle::Native handle;
};

IpmbNativeHandle::IpmbNativeHandle() = default;
IpmbNativeHandle::IpmbNativeHandle(const IpmbNativeHandle &other) = default;
IpmbNativeHandle::IpmbNativeHandle(IpmbNativeHandle &&other) noexcept = default;
IpmbNativeHandle &IpmbNativeHandle::operator=(const IpmbNativeHandle &other) = default;
IpmbNativeHandle &IpmbNativeHandle::operator=(IpmbNativeHandle &&other) noexcept = default;
IpmbNativeHandle::~IpmbNativeHandle() = default;

IpmbNativeHandle IpmbNativeHandle::adopt(Native handle)
{
    IpmbNativeHandle result;
    if (handle != InvalidNative)
        result.d = new IpmbNativeHandleData(handle);
    return result;
}

/*!
    Returns a new handle that refers to the same kernel object as \a handle, which stays yours.
    On failure (\a handle is not open, or the process is out of handles) returns a null handle
    and, if \a errorString is not null, sets it to a readable reason; on Linux \c errno also
    still says why (\c EBADF, \c EMFILE).
*/
IpmbNativeHandle IpmbNativeHandle::duplicate(Native handle, QString *errorString)
{
    QString why;
    const Native duplicated = IpmbPlatform::duplicateHandle(handle, &why);
    if (duplicated == InvalidNative && errorString)
        *errorString = why;
    return adopt(duplicated);
}

bool IpmbNativeHandle::isNull() const
{
    return !d || d->handle == InvalidNative;
}

IpmbNativeHandle::Native IpmbNativeHandle::handle() const
{
    return d ? d->handle : InvalidNative;
}

IpmbNativeHandle::Native IpmbNativeHandle::release()
{
    if (!d)
        return InvalidNative;
    return std::exchange(d->handle, InvalidNative);
}

bool operator==(const IpmbNativeHandle &lhs, const IpmbNativeHandle &rhs)
{
    return lhs.handle() == rhs.handle();
}

size_t qHash(const IpmbNativeHandle &handle, size_t seed) noexcept
{
    return qHash(handle.handle(), seed);
}

#ifndef QT_NO_DEBUG_STREAM
QDebug operator<<(QDebug debug, const IpmbNativeHandle &handle)
{
    QDebugStateSaver saver(debug);
    debug.nospace() << "IpmbNativeHandle(" << handle.handle() << ')';
    return debug;
}
#endif

#include "moc_ipmbnativehandle.cpp"
