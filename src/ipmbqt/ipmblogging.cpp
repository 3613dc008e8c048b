// SPDX-License-Identifier: BSD-3-Clause
#include "ipmblogging_p.h"

// Warnings are on by default; enable the rest with QT_LOGGING_RULES="ipmbqt.*.debug=true".
Q_LOGGING_CATEGORY(lcIpmbEndpoint, "ipmbqt.endpoint", QtWarningMsg)
Q_LOGGING_CATEGORY(lcIpmbController, "ipmbqt.controller", QtWarningMsg)
Q_LOGGING_CATEGORY(lcIpmbTransport, "ipmbqt.transport", QtWarningMsg)

bool IpmbLogLimiter::allow(QString *note)
{
    note->clear();
    if (!m_window.isValid() || m_window.elapsed() >= 1000) {
        m_window.start();
        m_inWindow = 0;
    }
    if (m_inWindow >= MaxPerSecond) {
        ++m_suppressed;
        return false;
    }
    ++m_inWindow;
    if (m_suppressed > 0) {
        *note = QStringLiteral(" (%1 similar warnings were left out before this one)").arg(m_suppressed);
        m_suppressed = 0;
    }
    return true;
}
