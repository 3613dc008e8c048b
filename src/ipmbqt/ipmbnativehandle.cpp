// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbnativehandle.h"
#include "ipmbplatform_p.h"

#include <QtCore/qdebug.h>

/*!
    \class IpmbNativeHandle
    \inmodule IpmbQt
    \inheaderfile IpmbQt/IpmbNativeHandle
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

/*!
    \typedef IpmbNativeHandle::Native

    The type of a kernel handle on this platform: an \c int file descriptor on Linux, stored in
    a \c qintptr so that a Windows \c HANDLE or a Mach port name fits as well.
*/

/*!
    \variable IpmbNativeHandle::InvalidNative

    The value handle() and release() return for a null handle: \c -1.
*/

/*!
    Constructs a null handle.
*/
IpmbNativeHandle::IpmbNativeHandle() = default;
/*!
    Constructs a copy of \a other that shares its kernel handle (nothing is duplicated).
*/
IpmbNativeHandle::IpmbNativeHandle(const IpmbNativeHandle &other) = default;
/*!
    Move-constructs a handle from \a other.
*/
IpmbNativeHandle::IpmbNativeHandle(IpmbNativeHandle &&other) noexcept = default;
/*!
    Makes this handle share the kernel handle of \a other and returns a reference to it. The
    handle held before is closed if this was its last copy.
*/
IpmbNativeHandle &IpmbNativeHandle::operator=(const IpmbNativeHandle &other) = default;
/*!
    Move-assigns \a other to this handle and returns a reference to it.
*/
IpmbNativeHandle &IpmbNativeHandle::operator=(IpmbNativeHandle &&other) noexcept = default;
/*!
    \fn IpmbNativeHandle::~IpmbNativeHandle()

    Destroys this copy; the kernel handle is closed when the last copy goes.
*/

/*!
    \fn void IpmbNativeHandle::swap(IpmbNativeHandle &other)

    Swaps this handle with \a other. This operation is very fast and never fails.
*/
IpmbNativeHandle::~IpmbNativeHandle() = default;

/*!
    Takes ownership of \a handle: it is closed when the last copy of the returned
    IpmbNativeHandle goes, so do not close it yourself (use duplicate() to keep your own).
    Returns a null handle if \a handle is InvalidNative.
*/
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

/*!
    \property IpmbNativeHandle::null
    \brief whether this object holds no handle.

    A default-constructed handle, one adopted from InvalidNative, a failed duplicate() and one
    whose handle was release()d are null.
*/
bool IpmbNativeHandle::isNull() const
{
    return !d || d->handle == InvalidNative;
}

/*!
    \property IpmbNativeHandle::handle
    \brief the kernel handle, still owned by this object (InvalidNative when null).

    Use it for the calls of your own (\c read(), \c mmap(), \c fstat()), but do not close it:
    the last copy of this object does. To keep it beyond that, duplicate() it or release() it.
*/
IpmbNativeHandle::Native IpmbNativeHandle::handle() const
{
    return d ? d->handle : InvalidNative;
}

/*!
    Gives up ownership: returns the kernel handle, which the caller must close, and leaves this
    object and every copy of it null. Returns InvalidNative if the handle is null.
*/
IpmbNativeHandle::Native IpmbNativeHandle::release()
{
    if (!d)
        return InvalidNative;
    return std::exchange(d->handle, InvalidNative);
}

/*!
    \fn bool IpmbNativeHandle::operator==(const IpmbNativeHandle &lhs, const IpmbNativeHandle &rhs)

    Returns \c true if \a lhs and \a rhs hold the same handle value (two null handles are
    equal). Two handles to the same open file obtained with duplicate() are not equal.
*/

/*!
    \fn bool IpmbNativeHandle::operator!=(const IpmbNativeHandle &lhs, const IpmbNativeHandle &rhs)

    Returns \c true if \a lhs and \a rhs hold different handle values.
*/
bool operator==(const IpmbNativeHandle &lhs, const IpmbNativeHandle &rhs)
{
    return lhs.handle() == rhs.handle();
}

/*!
    \relates IpmbNativeHandle

    Returns the hash value for \a handle, using \a seed to seed the calculation.
*/
size_t qHash(const IpmbNativeHandle &handle, size_t seed) noexcept
{
    return qHash(handle.handle(), seed);
}

#ifndef QT_NO_DEBUG_STREAM
/*!
    \relates IpmbNativeHandle

    Writes \a handle to \a debug as \c{IpmbNativeHandle(7)}.
*/
QDebug operator<<(QDebug debug, const IpmbNativeHandle &handle)
{
    QDebugStateSaver saver(debug);
    debug.nospace() << "IpmbNativeHandle(" << handle.handle() << ')';
    return debug;
}
#endif

#include "moc_ipmbnativehandle.cpp"
