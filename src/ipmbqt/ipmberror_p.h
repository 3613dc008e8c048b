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

#include "ipmbendpoint.h"

#include <QtCore/qstring.h>

// An operational error: a code users can switch on, a readable message, and the OS error if any.
struct IpmbErrorInfo
{
    IpmbErrorInfo() = default;
    IpmbErrorInfo(IpmbEndpoint::Error code, const QString &message = {}, int nativeCode = 0);

    bool isError() const { return code != IpmbEndpoint::NoError; }

    IpmbEndpoint::Error code = IpmbEndpoint::NoError;
    QString message;
    int nativeCode = 0;
};

#endif // IPMBERROR_P_H
