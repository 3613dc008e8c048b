// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQT_TOOL_COMMON_H
#define IPMBQT_TOOL_COMMON_H

#include <IpmbQt/IpmbEndpoint>

#include <QtCore/qcommandlineparser.h>

// Exit codes of every verb (doc/tools.md), in the style of standard Unix tools.
enum ExitCode {
    ExitOk = 0,
    ExitFailure = 1, // the bus said no: could not join, no route, timeout, a peer's error reply
    ExitUsage = 2,   // bad command line: unknown option, missing argument, unparsable label op
};

// The options every verb that joins a bus takes: --bus ID (required), --token T, --label L[,L2],
// --join-timeout MS.
void addBusOptions(QCommandLineParser &parser);

// Parses `arguments` for a verb; on --help prints the help and returns ExitOk, on an error prints
// it with a hint to stderr and returns ExitUsage; otherwise returns -1 (go on). With `needsBus`,
// a missing --bus is a usage error.
int parseVerbArguments(QCommandLineParser &parser, const QStringList &arguments, bool needsBus = true);

// Sets the endpoint up from the bus options and joins; prints why not to stderr and returns false
// when it could not join in time.
bool joinBus(const QCommandLineParser &parser, IpmbEndpoint &endpoint);

// "ipmbqt <verb>: <message>" on stderr.
void printError(const QString &verb, const QString &message);
// A line on stdout, flushed at once (the output may be a pipe that a test or `jq` reads).
void printLine(const QString &line);

#endif // IPMBQT_TOOL_COMMON_H
