// SPDX-License-Identifier: BSD-3-Clause
// Qt side of the helper protocol (see benchcommon.h): driver commands read in an event loop.
#ifndef IPMBQT_BENCHQT_H
#define IPMBQT_BENCHQT_H

#include "benchcommon.h"

#include <QtCore/qbytearray.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qobject.h>
#include <QtCore/qsocketnotifier.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace Bench {

// Calls onCommand for every line the driver writes, and with an empty line at end of input.
inline void watchCommands(QObject *context, std::function<void(const QByteArray &)> onCommand)
{
    auto *notifier = new QSocketNotifier(STDIN_FILENO, QSocketNotifier::Read, context);
    auto pending = std::make_shared<QByteArray>();
    QObject::connect(notifier, &QSocketNotifier::activated, context, [notifier, pending, onCommand] {
        char chunk[256];
        const ssize_t r = ::read(STDIN_FILENO, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            return;
        if (r <= 0) {
            notifier->setEnabled(false);
            onCommand(QByteArray());
            return;
        }
        pending->append(chunk, qsizetype(r));
        qsizetype newline;
        while ((newline = pending->indexOf('\n')) >= 0) {
            const QByteArray line = pending->left(newline);
            pending->remove(0, newline + 1);
            if (!line.isEmpty())
                onCommand(line);
        }
    });
}

// The sender's side of a throughput run in an event loop: `warmup` Warm payloads after the
// driver's "warm", then Data for `durationNs` after its "go", then one End. next() says what to
// send now; 0 means nothing until the driver speaks again.
class SendSchedule
{
public:
    SendSchedule(int64_t warmup, int64_t durationNs) : m_warmLeft(warmup), m_duration(durationNs) { }

    char next()
    {
        if (m_phase == Warming) {
            if (m_warmLeft-- > 0)
                return Warm;
            m_phase = Idle;
        } else if (m_phase == Sending) {
            if ((m_sent & 15) == 0 && nowNs() - m_t0 >= m_duration) {
                m_phase = Done;
                say("sent n=%lld t0=%lld", (long long)m_sent, (long long)m_t0);
                return End;
            }
            ++m_sent;
            return Data;
        }
        return 0;
    }
    bool isDone() const { return m_phase == Done; }

    // Follows the driver's commands ("warm", "go", end of input), calling pump() to send.
    void watchCommands(QCoreApplication *app, std::function<void()> pump)
    {
        Bench::watchCommands(app, [this, app, pump](const QByteArray &line) {
            if (line.isEmpty()) {
                app->quit();
                return;
            }
            if (line == "warm") {
                m_phase = Warming;
            } else if (line == "go") {
                m_phase = Sending;
                m_t0 = nowNs();
            }
            pump();
        });
    }

private:
    enum Phase { Idle, Warming, Sending, Done } m_phase = Idle;
    int64_t m_warmLeft;
    int64_t m_duration;
    int64_t m_sent = 0;
    int64_t m_t0 = 0;
};

// A payload of the given size whose first byte is the kind.
inline QByteArray makePayload(qsizetype size, Kind kind)
{
    QByteArray bytes(qMax<qsizetype>(size, 1), 'x');
    bytes[0] = kind;
    return bytes;
}

// The main() of a Qt helper: the watchdog (--watchdog seconds, 300), then the function of the role
// that the first argument names.
using Role = int (*)(QCoreApplication &, const Args &);
inline int runHelper(int argc, char **argv, const std::map<std::string, Role> &roles)
{
    QCoreApplication app(argc, argv);
    const Args args(argc, argv);
    guardProcess(unsigned(args.number("watchdog", "300")));
    const auto role = roles.find(args.role());
    if (role == roles.end())
        fail("unknown role '%s'", args.role().c_str());
    return role->second(app, args);
}

// The ping side of a latency run in an event loop: `send` sends one ping, and the slot that gets
// an answer calls arrived(). The driver's "go" sends the first; once `rounds` round trips (after
// `warmup` unmeasured ones) are in, it reports them ("lat ...") and quits.
class PingLoop
{
public:
    PingLoop(QCoreApplication *app, const Args &args, std::function<void()> send)
        : m_app(app), m_rounds(args.number("rounds")), m_next(-args.number("warmup")), m_send(std::move(send))
    {
        m_samples.reserve(size_t(m_rounds));
        watchCommands(app, [this](const QByteArray &line) {
            if (line.isEmpty())
                m_app->quit();
            else if (line == "go")
                sendOne();
        });
    }
    void arrived()
    {
        if (m_next >= m_rounds)
            return;
        if (m_next++ >= 0)
            m_samples.push_back(m_timer.nsecsElapsed());
        if (m_next == m_rounds) {
            reportLatency(m_samples);
            m_app->quit();
            return;
        }
        sendOne();
    }

private:
    void sendOne()
    {
        m_timer.start();
        m_send();
    }

    QCoreApplication *m_app;
    const int64_t m_rounds;
    int64_t m_next;
    std::function<void()> m_send;
    std::vector<int64_t> m_samples;
    QElapsedTimer m_timer;
};

} // namespace Bench

#endif // IPMBQT_BENCHQT_H
