// SPDX-License-Identifier: BSD-3-Clause
#include "common.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qrandom.h>
#include <QtCore/qsocketnotifier.h>

#include <csignal>
#include <cstdio>

#include <sys/socket.h>
#include <unistd.h>

using namespace Qt::StringLiterals;

void addBusOptions(QCommandLineParser &parser, const QString &labelDescription)
{
    parser.addOption({u"bus"_s, u"The bus to join (required)."_s, u"ID"_s});
    parser.addOption({u"token"_s, u"The bus's token, if it has one."_s, u"TOKEN"_s});
    parser.addOption({u"label"_s,
                      labelDescription.isEmpty() ? u"Join with these label names (comma-separated)."_s : labelDescription,
                      u"L[,L2]"_s});
    parser.addOption({u"join-timeout"_s, u"Give up joining after MS milliseconds (default 5000)."_s, u"MS"_s,
                      u"5000"_s});
}

int parseVerbArguments(QCommandLineParser &parser, const QStringList &arguments, const VerbHelp &verbHelp,
                       bool needsBus)
{
    const QString verb = arguments.value(0);
    // Not addHelpOption(): it adds --help-all (Qt's own options, which no verb takes), and its
    // help text starts with argv[0] as typed, where ours names the verb.
    const QCommandLineOption help({u"h"_s, u"help"_s}, u"Show this help and exit."_s);
    parser.addOption(help);
    if (!parser.parse(arguments)) {
        QString why = parser.errorText();
        if (why.endsWith(u'.'))
            why.chop(1); // Qt's "Unknown option 'x'."
        printError(verb, why + u" (see '%1 --help')"_s.arg(verb));
        return ExitUsage;
    }
    if (parser.isSet(help)) {
        QString text = parser.helpText();
        text.remove(0, text.indexOf(u'\n') + 1); // Qt's "Usage: <argv[0]> [options]"
        const QString description = verbHelp.description.isEmpty() ? QString() : verbHelp.description + u'\n';
        text.prepend(u"Usage: "_s + verb + u' ' + verbHelp.synopsis + u'\n' + description);
        std::fputs(qPrintable(text), stdout);
        return ExitOk;
    }
    if (!parser.positionalArguments().isEmpty()) {
        printError(verb, u"unexpected argument '%1' (see '%2 --help')"_s.arg(parser.positionalArguments().constFirst(),
                                                                             verb));
        return ExitUsage;
    }
    if (needsBus && parser.value(u"bus"_s).isEmpty()) {
        printError(verb, u"--bus ID is required (see '%1 --help')"_s.arg(verb));
        return ExitUsage;
    }
    return -1;
}

int parseVerbArguments(QCommandLineParser &parser, const QStringList &arguments, bool needsBus)
{
    return parseVerbArguments(parser, arguments, VerbHelp{u"[options]"_s, QString()}, needsBus);
}

std::optional<qint64> numberOption(const QCommandLineParser &parser, const QString &verb, const QString &name,
                                   qint64 fallback, qint64 max)
{
    if (!parser.isSet(name))
        return fallback;
    bool ok = false;
    const qint64 value = parser.value(name).toLongLong(&ok);
    if (ok && value >= 0 && value <= max)
        return value;
    printError(verb, u"--%1 wants a whole number from 0 to %2, not '%3'"_s.arg(name).arg(max).arg(parser.value(name)));
    return std::nullopt;
}

std::optional<IpmbLabelOp> labelOpOption(const QCommandLineParser &parser, const QString &verb, const QString &name)
{
    const QString text = parser.value(name);
    if (text.isEmpty()) {
        printError(verb, u"--%1 LABEL-OP is required (see '%2 --help')"_s.arg(name, verb));
        return std::nullopt;
    }
    QString why;
    std::optional<IpmbLabelOp> op = IpmbLabelOp::fromString(text, &why);
    if (!op)
        printError(verb, u"bad label op '%1': %2"_s.arg(text, why));
    return op;
}

bool joinBus(const QCommandLineParser &parser, const QString &verb, IpmbEndpoint &endpoint,
             const QStringList &defaultLabel, const QString &extraName)
{
    endpoint.setIdentifier(parser.value(u"bus"_s));
    if (parser.isSet(u"token"_s))
        endpoint.setToken(parser.value(u"token"_s).toUtf8());
    QStringList names = parser.isSet(u"label"_s) ? parser.value(u"label"_s).split(u',', Qt::SkipEmptyParts)
                                                  : defaultLabel;
    if (!extraName.isEmpty())
        names.append(extraName);
    endpoint.setLabel(IpmbLabel(names));
    bool ok = false;
    const int timeout = parser.value(u"join-timeout"_s).toInt(&ok);
    endpoint.setJoinTimeout(ok && timeout > 0 ? timeout : 5000);
    endpoint.join();
    if (endpoint.waitForJoined(endpoint.joinTimeout() + 1000))
        return true;
    printError(verb, u"could not join bus '%1': %2"_s.arg(endpoint.identifier(), endpoint.errorString()));
    return false;
}

bool joinBus(const QCommandLineParser &parser, IpmbEndpoint &endpoint)
{
    return joinBus(parser, QString(), endpoint, QStringList());
}

void printError(const QString &verb, const QString &message)
{
    const QString prefix = verb.isEmpty() ? u"ipmbqt"_s : verb;
    std::fflush(stdout); // what was printed before the error comes first in a shared terminal
    std::fprintf(stderr, "%s: %s\n", qPrintable(prefix), qPrintable(message));
}

void printLine(const QString &line)
{
    const QByteArray utf8 = line.toUtf8();
    std::fwrite(utf8.constData(), 1, size_t(utf8.size()), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

EventWait::EventWait(int msecs)
{
    if (msecs < 0)
        return;
    m_timer.setSingleShot(true);
    QObject::connect(&m_timer, &QTimer::timeout, &m_loop, [this] { finish(TimedOut); });
    m_timer.start(msecs);
}

void EventWait::finish(int code)
{
    if (m_result)
        return;
    m_result = code;
    m_loop.exit(code);
}

int EventWait::exec()
{
    if (!m_result)
        m_loop.exec();
    return *m_result;
}

ControllerRoundTrip::ControllerRoundTrip(IpmbEndpoint &endpoint)
    : m_endpoint(endpoint),
      m_name(u"ipmbqt.%1.%2"_s.arg(QCoreApplication::applicationPid())
                     .arg(QRandomGenerator::global()->generate(), 8, 16, QLatin1Char('0')))
{
    m_connection = QObject::connect(&m_endpoint, &IpmbEndpoint::messageReceived, [this](const IpmbMessage &message) {
        if (!isOwn(message))
            return;
        m_back = qMax(m_back, message.payload().toString().section(u' ', 1).toULongLong());
        if (m_wait && m_back >= m_sent)
            m_wait->finish();
    });
}

ControllerRoundTrip::~ControllerRoundTrip()
{
    QObject::disconnect(m_connection);
}

bool ControllerRoundTrip::isOwn(const IpmbMessage &message) const
{
    return message.senderId() == m_endpoint.endpointId() && message.senderLabel().contains(m_name)
            && message.payload().toString().startsWith(m_name + u' ');
}

bool ControllerRoundTrip::run(int msecs)
{
    const QString payload = m_name + u' ' + QString::number(++m_sent);
    if (!m_endpoint.send(IpmbSelector::unicast(IpmbLabelOp(m_name)), payload)) {
        m_errorString = m_endpoint.errorString();
        return false;
    }
    EventWait wait(msecs);
    m_wait = &wait;
    if (m_back >= m_sent)
        wait.finish();
    const bool back = wait.exec() != EventWait::TimedOut;
    m_wait = nullptr;
    if (!back)
        m_errorString = u"the bus controller did not answer within %1 ms"_s.arg(msecs);
    return back;
}

// The handler only writes a byte to a socket pair; the notifier calls `end` in the event loop.
static int signalPair[2] = {-1, -1};

static void onSignal(int)
{
    const char byte = 1;
    [[maybe_unused]] const ssize_t n = ::write(signalPair[1], &byte, 1);
}

SignalsEnd::SignalsEnd(std::function<void()> end) : m_end(std::move(end))
{
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, signalPair) != 0)
        return;  // then the signals keep their default: the process ends
    m_notifier = std::make_unique<QSocketNotifier>(signalPair[0], QSocketNotifier::Read);
    QObject::connect(m_notifier.get(), &QSocketNotifier::activated, m_notifier.get(), [this] {
        char drain[16];
        while (::read(signalPair[0], drain, sizeof(drain)) > 0) { }
        m_end();
    });
    struct sigaction action = {};
    action.sa_handler = onSignal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
}

SignalsEnd::~SignalsEnd()
{
    if (!m_notifier)
        return;
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    m_notifier.reset();
    ::close(signalPair[0]);
    ::close(signalPair[1]);
    signalPair[0] = signalPair[1] = -1;
}
