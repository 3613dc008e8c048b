// SPDX-License-Identifier: BSD-3-Clause
#include "ipmblogging_p.h"

#include <cstdarg>

// Warnings are on by default; enable the rest with QT_LOGGING_RULES="ipmbqt.*.debug=true".
Q_LOGGING_CATEGORY(lcIpmbEndpoint, "ipmbqt.endpoint", QtWarningMsg)
Q_LOGGING_CATEGORY(lcIpmbController, "ipmbqt.controller", QtWarningMsg)
Q_LOGGING_CATEGORY(lcIpmbTransport, "ipmbqt.transport", QtWarningMsg)

void IpmbLogLimiter::warn(const QLoggingCategory &category, const char *format, ...)
{
    if (!category.isWarningEnabled())
        return;
    if (!m_window.isValid() || m_window.elapsed() >= 1000) {
        m_window.start();
        m_inWindow = 0;
    }
    if (m_inWindow >= IpmbLimits::WarningsPerSecond) {
        ++m_suppressed;
        return;
    }
    ++m_inWindow;
    va_list arguments;
    va_start(arguments, format);
    QString message = QString::vasprintf(format, arguments);
    va_end(arguments);
    if (m_suppressed > 0) {
        message += QStringLiteral(" (%1 similar warnings were left out before this one)").arg(m_suppressed);
        m_suppressed = 0;
    }
    qCWarning(category, "%s", qPrintable(message));
}
