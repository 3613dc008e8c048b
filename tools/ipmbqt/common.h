// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQT_TOOL_COMMON_H
#define IPMBQT_TOOL_COMMON_H

#include <IpmbQt/IpmbEndpoint>

#include <QtCore/qcommandlineparser.h>
#include <QtCore/qeventloop.h>
#include <QtCore/qtimer.h>

#include <functional>
#include <limits>
#include <memory>
#include <optional>

QT_BEGIN_NAMESPACE
class QSocketNotifier;
QT_END_NAMESPACE

// Exit codes of every verb (doc/tools.md), in the style of standard Unix tools.
enum ExitCode {
    ExitOk = 0,
    ExitFailure = 1, // the bus said no: could not join, no route, timeout, a peer's error reply
    ExitUsage = 2,   // bad command line: unknown option, missing argument, unparsable label op
};

// What a verb's --help says before its options: its synopsis and a paragraph about it.
struct VerbHelp
{
    QString synopsis;    // after "Usage: ipmbqt <verb> "
    QString description; // wrapped by hand at 79 columns, as Qt wraps the options
};

// The options every verb that joins a bus takes: --bus ID (required), --token T, --label L[,L2],
// --join-timeout MS. `labelDescription` says what --label means for this verb (by default: the
// label names to join with).
void addBusOptions(QCommandLineParser &parser, const QString &labelDescription = QString());

// Parses `arguments` for a verb (arguments[0] is "ipmbqt <verb>"); on --help prints the help to
// stdout and returns ExitOk, on an error prints it with a hint to stderr and returns ExitUsage;
// otherwise returns -1 (go on). With `needsBus`, a missing --bus is a usage error.
int parseVerbArguments(QCommandLineParser &parser, const QStringList &arguments, const VerbHelp &help,
                       bool needsBus = true);
// The same with the synopsis "[options]" and the parser's application description, if any.
int parseVerbArguments(QCommandLineParser &parser, const QStringList &arguments, bool needsBus = true);

// The value of an option that takes a count or milliseconds: `fallback` if it is not set, empty
// (with the usage error printed) if it is not a whole number in [0, max].
std::optional<qint64> numberOption(const QCommandLineParser &parser, const QString &verb, const QString &name,
                                   qint64 fallback, qint64 max = std::numeric_limits<int>::max());

// IpmbLabelOp::fromString() with its error printed as a usage error.
std::optional<IpmbLabelOp> labelOpOption(const QCommandLineParser &parser, const QString &verb,
                                         const QString &name);

// Sets the endpoint up from the bus options (the label `defaultLabel` when --label is not given,
// plus `extraName` if not empty) and joins; prints why not to stderr and returns false when it
// could not join in time.
bool joinBus(const QCommandLineParser &parser, const QString &verb, IpmbEndpoint &endpoint,
             const QStringList &defaultLabel, const QString &extraName = QString());
// The same with no label unless --label is given, and errors prefixed "ipmbqt".
bool joinBus(const QCommandLineParser &parser, IpmbEndpoint &endpoint);

// "ipmbqt <verb>: <message>" on stderr.
void printError(const QString &verb, const QString &message);
// A line on stdout, flushed at once (the output may be a pipe that a test or `jq` reads).
void printLine(const QString &line);

// Runs the event loop until finish() is called or `msecs` pass (a negative `msecs`: no limit):
// the tools wait for signals this way, never by sleeping.
class EventWait
{
public:
    static constexpr int TimedOut = -1;

    explicit EventWait(int msecs);
    // Ends exec() with `code` (also when it is called before exec()).
    void finish(int code = 0);
    bool isFinished() const { return m_result.has_value(); }
    // `code` of finish(), or TimedOut.
    int exec();

private:
    QEventLoop m_loop;
    QTimer m_timer;
    std::optional<int> m_result;
};

// A round trip through the bus controller: a message to this endpoint alone goes through the
// controller (doc/protocol.md, "Direct channels": the receiver is the sender itself), which
// sends this endpoint everything in order on one stream. So once it is back, everything the
// controller sent before it has arrived: the end of the peer list, an Undeliverable notice for a
// message sent before it. The endpoint needs a label name of its own for this (name(); pass it
// to joinBus() as `extraName`); it is also how a verb keeps its own endpoint out of a label op.
class ControllerRoundTrip
{
public:
    explicit ControllerRoundTrip(IpmbEndpoint &endpoint);
    ~ControllerRoundTrip();

    QString name() const { return m_name; }
    // Whether `message` is one of the round trip's own (a verb's messageReceived() skips those).
    bool isOwn(const IpmbMessage &message) const;
    // Sends one to itself and waits until it is back; false (errorString() says why) after `msecs`.
    bool run(int msecs);
    QString errorString() const { return m_errorString; }

private:
    IpmbEndpoint &m_endpoint;
    QString m_name;
    QString m_errorString;
    quint64 m_sent = 0;
    quint64 m_back = 0;
    EventWait *m_wait = nullptr;
    QMetaObject::Connection m_connection;
};

// While it lives, SIGINT and SIGTERM call `end` in the event loop instead of killing the process,
// so that a verb that runs until interrupted leaves the bus cleanly. One at a time.
class SignalsEnd
{
public:
    explicit SignalsEnd(std::function<void()> end);
    ~SignalsEnd();

private:
    std::unique_ptr<QSocketNotifier> m_notifier;
    std::function<void()> m_end;
};

#endif // IPMBQT_TOOL_COMMON_H
