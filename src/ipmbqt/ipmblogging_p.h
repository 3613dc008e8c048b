// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBLOGGING_P_H
#define IPMBLOGGING_P_H

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

#include "ipmblimits_p.h"

#include <QtCore/qloggingcategory.h>

Q_DECLARE_LOGGING_CATEGORY(lcIpmbEndpoint)
Q_DECLARE_LOGGING_CATEGORY(lcIpmbController)
Q_DECLARE_LOGGING_CATEGORY(lcIpmbTransport)

#include <QtCore/qelapsedtimer.h>
#include <QtCore/qstring.h>

// Warnings caused by peers go through one of these, so that a flood of bad input cannot fill the
// disk: at most IpmbLimits::WarningsPerSecond per second, and the next one after a quiet spell says how many were
// left out. One per thread (the controller's, an endpoint's I/O thread): not thread-safe.
class IpmbLogLimiter
{
public:

    // Logs a warning (printf-style format) in `category` unless the limit is reached.
    void warn(const QLoggingCategory &category, const char *format, ...) Q_ATTRIBUTE_FORMAT_PRINTF(3, 4);

private:
    QElapsedTimer m_window;
    int m_inWindow = 0;
    quint64 m_suppressed = 0;
};

#endif // IPMBLOGGING_P_H
