// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQT_TOOL_VERBS_H
#define IPMBQT_TOOL_VERBS_H

#include <QtCore/qstringlist.h>

// One function per verb of the `ipmbqt` command. Each takes the verb's own arguments (argv[0] is
// "ipmbqt <verb>"), runs it to the end in the running QCoreApplication, and returns the process's
// exit code (common.h, ExitCode).
int runPeers(const QStringList &arguments);   // busverbs.cpp
int runListen(const QStringList &arguments);  // busverbs.cpp
int runSend(const QStringList &arguments);    // busverbs.cpp
int runRequest(const QStringList &arguments); // busverbs.cpp
int runMonitor(const QStringList &arguments); // monitor.cpp
int runBridge(const QStringList &arguments);  // bridge.cpp

#endif // IPMBQT_TOOL_VERBS_H
