// SPDX-License-Identifier: BSD-3-Clause
#include "common.h"
#include "verbs.h"

// ipmbqt bridge: being written.
int runBridge(const QStringList &arguments)
{
    printError(arguments.value(0), QStringLiteral("not available yet"));
    return ExitFailure;
}
