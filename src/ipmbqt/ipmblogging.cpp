// SPDX-License-Identifier: BSD-3-Clause
#include "ipmblogging_p.h"

// Warnings are on by default; enable the rest with QT_LOGGING_RULES="ipmbqt.*.debug=true".
Q_LOGGING_CATEGORY(lcIpmbEndpoint, "ipmbqt.endpoint", QtWarningMsg)
Q_LOGGING_CATEGORY(lcIpmbController, "ipmbqt.controller", QtWarningMsg)
Q_LOGGING_CATEGORY(lcIpmbTransport, "ipmbqt.transport", QtWarningMsg)
