// SPDX-License-Identifier: BSD-3-Clause
#include "common.h"
#include "verbs.h"

// ipmbqt peers, listen, send, request: being written.
static int notYet(const QStringList &arguments)
{
    printError(arguments.value(0), QStringLiteral("not available yet"));
    return ExitFailure;
}
int runPeers(const QStringList &arguments) { return notYet(arguments); }
int runListen(const QStringList &arguments) { return notYet(arguments); }
int runSend(const QStringList &arguments) { return notYet(arguments); }
int runRequest(const QStringList &arguments) { return notYet(arguments); }
