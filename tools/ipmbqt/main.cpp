// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt VERB [options]: a command-line tool for IpmbQt buses (doc/tools.md). This file only
// dispatches; the verbs are in verbs.h.
#include "common.h"
#include "verbs.h"

#include <IpmbQt/ipmbqtglobal.h>

#include <QtCore/qcoreapplication.h>

#include <cstdio>

using namespace Qt::StringLiterals;

namespace {

using Verb = int (*)(const QStringList &);
struct VerbEntry
{
    const char *name;
    Verb run;
    const char *summary; // one line of `ipmbqt --help`
};

constexpr VerbEntry verbs[] = {
    {"peers", runPeers, "list the endpoints on a bus"},
    {"listen", runListen, "join with a label and print the messages that arrive"},
    {"send", runSend, "send one message (text, JSON or a file's bytes)"},
    {"request", runRequest, "send a request and print the reply"},
    {"monitor", runMonitor, "watch every message on a bus"},
    {"bridge", runBridge, "connect a bus to an MQTT broker, and so to other machines"},
};

QString usageText()
{
    QString text = u"Usage: ipmbqt VERB [options]\n"
                   u"A command-line tool for IpmbQt message buses.\n\n"
                   u"Verbs:\n"_s;
    for (const VerbEntry &verb : verbs)
        text += u"  %1%2\n"_s.arg(QLatin1String(verb.name), -10).arg(QLatin1String(verb.summary));
    text += u"\nOptions:\n"
            u"  -h, --help     Show this help and exit.\n"
            u"  -v, --version  Show the version and exit.\n\n"
            u"'ipmbqt VERB --help' shows the options of a verb.\n"_s;
    return text;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"ipmbqt"_s);
    QCoreApplication::setApplicationVersion(QStringLiteral(IPMBQT_VERSION_STR));
    QStringList arguments = app.arguments();
    const QString verb = arguments.value(1);
    if (verb == u"-h"_s || verb == u"--help"_s || verb == u"help"_s) {
        std::fputs(qPrintable(usageText()), stdout);
        return ExitOk;
    }
    if (verb == u"-v"_s || verb == u"--version"_s) {
        std::printf("ipmbqt %s\n", IPMBQT_VERSION_STR);
        return ExitOk;
    }
    for (const VerbEntry &entry : verbs) {
        if (verb == QLatin1String(entry.name)) {
            arguments.removeFirst();
            arguments.first() = u"ipmbqt "_s + verb;
            return entry.run(arguments);
        }
    }
    if (verb.isEmpty())
        printError(QString(), u"no verb given (see 'ipmbqt --help')"_s);
    else
        printError(QString(), u"unknown verb '%1' (see 'ipmbqt --help')"_s.arg(verb));
    return ExitUsage;
}
