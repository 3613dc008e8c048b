// SPDX-License-Identifier: BSD-3-Clause
#include "ipmberror_p.h"

#include <QtCore/qcoreapplication.h>

static QString defaultMessage(IpmbEndpoint::Error code)
{
    switch (code) {
    case IpmbEndpoint::NoError: return {};
    case IpmbEndpoint::TimeoutError: return IpmbEndpoint::tr("The operation timed out");
    case IpmbEndpoint::DisconnectedError: return IpmbEndpoint::tr("The endpoint is not joined to a bus");
    case IpmbEndpoint::VersionMismatchError: return IpmbEndpoint::tr("The bus speaks another protocol version");
    case IpmbEndpoint::TokenMismatchError: return IpmbEndpoint::tr("The bus refused the token");
    case IpmbEndpoint::PermissionError: return IpmbEndpoint::tr("Permission denied");
    case IpmbEndpoint::PayloadTooLargeError: return IpmbEndpoint::tr("The payload is too large");
    case IpmbEndpoint::QueueFullError: return IpmbEndpoint::tr("The send queue is full");
    case IpmbEndpoint::InvalidArgumentError: return IpmbEndpoint::tr("Invalid argument");
    case IpmbEndpoint::ProtocolError: return IpmbEndpoint::tr("The peer broke the protocol");
    case IpmbEndpoint::ResourceError: return IpmbEndpoint::tr("Out of a system resource");
    case IpmbEndpoint::UnknownError: break;
    }
    return IpmbEndpoint::tr("Unknown error");
}

IpmbErrorInfo::IpmbErrorInfo(IpmbEndpoint::Error code, const QString &message, int nativeCode)
    : code(code), message(message.isEmpty() ? defaultMessage(code) : message), nativeCode(nativeCode)
{
}
