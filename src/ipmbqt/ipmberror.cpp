// SPDX-License-Identifier: BSD-3-Clause
#include "ipmberror_p.h"

#include <QtCore/qcoreapplication.h>

static QString defaultMessage(IpmbErrorCode code)
{
    switch (code) {
    case IpmbErrorCode::None: return {};
    case IpmbErrorCode::Timeout: return QCoreApplication::translate("IpmbEndpoint", "The operation timed out");
    case IpmbErrorCode::Disconnected: return QCoreApplication::translate("IpmbEndpoint", "The endpoint is not joined to a bus");
    case IpmbErrorCode::VersionMismatch: return QCoreApplication::translate("IpmbEndpoint", "The bus speaks another protocol version");
    case IpmbErrorCode::TokenMismatch: return QCoreApplication::translate("IpmbEndpoint", "The bus refused the token");
    case IpmbErrorCode::Permission: return QCoreApplication::translate("IpmbEndpoint", "Permission denied");
    case IpmbErrorCode::PayloadTooLarge: return QCoreApplication::translate("IpmbEndpoint", "The payload is too large");
    case IpmbErrorCode::QueueFull: return QCoreApplication::translate("IpmbEndpoint", "The send queue is full");
    case IpmbErrorCode::InvalidArgument: return QCoreApplication::translate("IpmbEndpoint", "Invalid argument");
    case IpmbErrorCode::Protocol: return QCoreApplication::translate("IpmbEndpoint", "The peer broke the protocol");
    case IpmbErrorCode::Resource: return QCoreApplication::translate("IpmbEndpoint", "Out of a system resource");
    case IpmbErrorCode::InvalidHandle: return QCoreApplication::translate("IpmbMemoryRegion", "The handle is not a memory region");
    case IpmbErrorCode::OutOfRange: return QCoreApplication::translate("IpmbMemoryRegion", "Out of range");
    case IpmbErrorCode::Lock: return QCoreApplication::translate("IpmbMemoryRegion", "The lock could not be taken or released");
    case IpmbErrorCode::NoRoute: return QCoreApplication::translate("IpmbEndpoint", "No endpoint matched the message");
    case IpmbErrorCode::PeerLeft: return QCoreApplication::translate("IpmbEndpoint", "The endpoint that got the request left before it replied");
    case IpmbErrorCode::Unknown: break;
    }
    return QCoreApplication::translate("IpmbEndpoint", "Unknown error");
}

IpmbErrorInfo::IpmbErrorInfo(IpmbErrorCode code, const QString &message, int nativeCode)
    : code(code), message(message.isEmpty() ? defaultMessage(code) : message), nativeCode(nativeCode)
{
}
