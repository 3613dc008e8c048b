// SPDX-License-Identifier: BSD-3-Clause
#include "common.h"
#include "verbs.h"

#include <QtCore/qcoreapplication.h>

#include <cstdio>

// ipmbqt VERB [options]: the verbs are in verbs.h; this only dispatches (being written).
int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QStringList arguments = app.arguments();
    const QString verb = arguments.value(1);
    using Verb = int (*)(const QStringList &);
    const std::pair<const char *, Verb> verbs[] = {
        {"peers", runPeers}, {"listen", runListen}, {"send", runSend},
        {"request", runRequest}, {"monitor", runMonitor}, {"bridge", runBridge},
    };
    for (const auto &[name, run] : verbs) {
        if (verb == QLatin1String(name)) {
            arguments.removeFirst();
            arguments.first() = QStringLiteral("ipmbqt ") + verb;
            return run(arguments);
        }
    }
    std::fprintf(stderr, "usage: ipmbqt peers|listen|send|request|monitor|bridge [options]\n");
    return ExitUsage;
}
