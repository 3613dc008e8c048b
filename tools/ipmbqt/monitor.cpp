// SPDX-License-Identifier: BSD-3-Clause
#include "common.h"
#include "verbs.h"

// ipmbqt monitor: being written (monitors land in the library first).
int runMonitor(const QStringList &arguments)
{
    printError(arguments.value(0), QStringLiteral("not available yet"));
    return ExitFailure;
}
