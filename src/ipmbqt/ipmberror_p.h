// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBERROR_P_H
#define IPMBERROR_P_H

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

#include <QtCore/qstring.h>

// The error codes of the layers below the public API (platform, shared memory, protocol,
// controller), as Qt Serial Port keeps native errors in its backends: the public classes convert
// them once, IpmbEndpoint to IpmbEndpoint::Error and IpmbMemoryRegion to IpmbMemoryRegion::Error.
// The first twelve have the numbers of IpmbEndpoint::Error, which a Refuse frame carries on the
// wire (doc/protocol.md); ipmbendpoint.cpp checks that they stay equal.
enum class IpmbErrorCode : quint8 {
    None,
    Timeout,
    Disconnected,
    VersionMismatch,
    TokenMismatch,
    Permission,
    PayloadTooLarge,
    QueueFull,
    InvalidArgument,
    Protocol,
    Resource,
    Unknown,
    NoRoute,            // a tracked message or request reached nobody
    PeerLeft,           // a request's replier left before it replied
    LastPublic = PeerLeft,  // the codes up to here are IpmbEndpoint::Error's
    // Shared memory only.
    InvalidHandle,
    OutOfRange,
    Lock,
};

// An operational error: a code, a readable message, and the OS error if any.
struct IpmbErrorInfo
{
    IpmbErrorInfo() = default;
    // An empty message is replaced by the code's default one.
    IpmbErrorInfo(IpmbErrorCode code, const QString &message = {}, int nativeCode = 0);

    bool isError() const { return code != IpmbErrorCode::None; }

    IpmbErrorCode code = IpmbErrorCode::None;
    QString message;
    int nativeCode = 0;
};

#endif // IPMBERROR_P_H
