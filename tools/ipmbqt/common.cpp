// SPDX-License-Identifier: BSD-3-Clause
#include "common.h"

#include <QtCore/qtextstream.h>

#include <cstdio>

void addBusOptions(QCommandLineParser &parser)
{
    parser.addOption({QStringLiteral("bus"), QStringLiteral("The bus to join (required)."), QStringLiteral("ID")});
    parser.addOption({QStringLiteral("token"), QStringLiteral("The bus's token, if it has one."), QStringLiteral("TOKEN")});
    parser.addOption({QStringLiteral("label"),
                      QStringLiteral("Join with these label names (comma-separated; default: the verb's name)."),
                      QStringLiteral("L[,L2]")});
    parser.addOption({QStringLiteral("join-timeout"), QStringLiteral("Give up joining after MS milliseconds (default 5000)."),
                      QStringLiteral("MS"), QStringLiteral("5000")});
}

int parseVerbArguments(QCommandLineParser &parser, const QStringList &arguments, bool needsBus)
{
    const QString verb = arguments.value(0);
    const QCommandLineOption help = parser.addHelpOption();
    if (!parser.parse(arguments)) {
        printError(verb, parser.errorText() + QStringLiteral(" (see '%1 --help')").arg(verb));
        return ExitUsage;
    }
    if (parser.isSet(help)) {
        std::fputs(qPrintable(parser.helpText()), stdout);
        return ExitOk;
    }
    if (needsBus && parser.value(QStringLiteral("bus")).isEmpty()) {
        printError(verb, QStringLiteral("--bus ID is required (see '%1 --help')").arg(verb));
        return ExitUsage;
    }
    return -1;
}

bool joinBus(const QCommandLineParser &parser, IpmbEndpoint &endpoint)
{
    endpoint.setIdentifier(parser.value(QStringLiteral("bus")));
    if (parser.isSet(QStringLiteral("token")))
        endpoint.setToken(parser.value(QStringLiteral("token")).toUtf8());
    if (parser.isSet(QStringLiteral("label")))
        endpoint.setLabel(IpmbLabel(parser.value(QStringLiteral("label")).split(u',', Qt::SkipEmptyParts)));
    bool ok = false;
    const int timeout = parser.value(QStringLiteral("join-timeout")).toInt(&ok);
    endpoint.setJoinTimeout(ok && timeout > 0 ? timeout : 5000);
    endpoint.join();
    if (endpoint.waitForJoined(endpoint.joinTimeout() + 1000))
        return true;
    printError(QString(), QStringLiteral("could not join bus '%1': %2")
                              .arg(endpoint.identifier(), endpoint.errorString()));
    return false;
}

void printError(const QString &verb, const QString &message)
{
    const QString prefix = verb.isEmpty() ? QStringLiteral("ipmbqt") : verb;
    std::fprintf(stderr, "%s: %s\n", qPrintable(prefix), qPrintable(message));
}

void printLine(const QString &line)
{
    const QByteArray utf8 = line.toUtf8();
    std::fwrite(utf8.constData(), 1, size_t(utf8.size()), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}
