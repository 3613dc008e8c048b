// SPDX-License-Identifier: BSD-3-Clause
// The helper process of tst_requests: an endpoint that answers requests, or asks many. It joins
// the bus of --bus with the label of --label, reads commands from stdin (one per line) and prints
// one line per event:
//   joined controller=<0|1> pid=<pid> id=<endpointId>
//   held n=<requests held so far>                 (--replier ignore)
//   second-reply ok=<0|1> error=<Error>           (--replier twice: reply() a second time)
//   reply value=<payload> from=<pid>              (answer to "request")
//   request-failed error=<Error> reason=<text>    (answer to "request")
//   requests done=<n> ok=<n> wrong=<n> failed=<n> repliers=<distinct pids>   (answer to "requests")
//   replied n=<n>                                 (answer to "replyheld")
// --replier: echo (reply "re:<payload>" in this thread), concurrent (the same from a
// QtConcurrent::run() task), ignore (hold every request), twice (reply, then try again).
// Commands:
//   request <labelop> <ttlms> <text> <timeoutms>: one request
//   requests <labelop> <count> <window>: <count> requests with payloads 0..count-1, at most
//       <window> waiting at once; checks that each reply is "re:<its payload>", and counts
//   replyheld: reply to every held request
//   quit
#include "ipmbtestcommands.h"

#include <IpmbQt/IpmbEndpoint>

#include <QtConcurrent/qtconcurrentrun.h>
#include <QtCore/qcommandlineparser.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qmetaobject.h>
#include <QtCore/qset.h>
#include <QtCore/qsocketnotifier.h>
#include <QtCore/qtimer.h>

#include <cstdio>
#include <unistd.h>

using namespace Qt::StringLiterals;

static void say(const QByteArray &line)
{
    std::fwrite(line.constData(), 1, size_t(line.size()), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

static QByteArray errorName(IpmbEndpoint::Error error)
{
    return QMetaEnum::fromType<IpmbEndpoint::Error>().valueToKey(error);
}

static IpmbSelector unicast(const QByteArray &op, qint64 ttl = 0)
{
    return IpmbSelector::unicast(IpmbLabelOp::fromString(QString::fromUtf8(op)).value_or(IpmbLabelOp::matchNone()),
                                 std::chrono::milliseconds(ttl));
}

// Many requests, a window of them at a time, each checked when its reply comes.
class Flood : public QObject
{
public:
    Flood(IpmbEndpoint *endpoint, const QByteArray &op, int count, int window)
        : m_endpoint(endpoint), m_op(op), m_count(count), m_window(window) { }
    void start()
    {
        while (m_next < m_count && m_next - m_done < m_window)
            sendOne();
    }

private:
    void sendOne()
    {
        const int i = m_next++;
        m_endpoint->request(unicast(m_op), i, 30000)
                .then(this, [this, i](const IpmbMessage &reply) {
                    if (!m_answered.contains(i) && reply.payload().toString() == u"re:"_s + QString::number(i))
                        ++m_ok;
                    else
                        ++m_wrong;
                    m_answered.insert(i);
                    m_repliers.insert(reply.senderPid());
                    finishOne();
                })
                .onFailed(this, [this](const IpmbRequestError &e) {
                    ++m_failed;
                    if (m_failed == 1)
                        say("first-failure error=" + errorName(e.error()) + " reason=" + e.errorString().toUtf8());
                    finishOne();
                });
    }
    void finishOne()
    {
        ++m_done;
        if (m_next < m_count)
            sendOne();
        if (m_done == m_count) {
            say("requests done=" + QByteArray::number(m_done) + " ok=" + QByteArray::number(m_ok) + " wrong="
                + QByteArray::number(m_wrong) + " failed=" + QByteArray::number(m_failed) + " repliers="
                + QByteArray::number(m_repliers.size()));
            deleteLater();
        }
    }

    IpmbEndpoint *m_endpoint;
    QByteArray m_op;
    int m_count, m_window;
    int m_next = 0, m_done = 0, m_ok = 0, m_wrong = 0, m_failed = 0;
    QSet<int> m_answered;
    QSet<qint64> m_repliers;
};

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QCommandLineParser parser;
    parser.addOptions({
            {u"bus"_s, u"Bus identifier."_s, u"id"_s},
            {u"label"_s, u"Comma-separated label."_s, u"names"_s},
            {u"replier"_s, u"echo, concurrent, ignore or twice."_s, u"mode"_s},
            {u"watchdog"_s, u"Exit with 3 after ms."_s, u"ms"_s, u"120000"_s},
    });
    parser.process(app);
    QTimer::singleShot(parser.value(u"watchdog"_s).toInt(), &app, [] { std::_Exit(3); });

    IpmbEndpoint endpoint;
    endpoint.setIdentifier(parser.value(u"bus"_s));
    endpoint.setLabel(IpmbLabel(parser.value(u"label"_s).split(u',', Qt::SkipEmptyParts)));
    const QString mode = parser.value(u"replier"_s);
    QList<IpmbMessage> held;

    QObject::connect(&endpoint, &IpmbEndpoint::joined, [&] {
        say("joined controller=" + QByteArray::number(endpoint.isController()) + " pid="
            + QByteArray::number(QCoreApplication::applicationPid()) + " id=" + QByteArray::number(endpoint.endpointId()));
    });
    QObject::connect(&endpoint, &IpmbEndpoint::errorOccurred, [&](IpmbEndpoint::Error e) {
        say("error " + errorName(e) + ' ' + endpoint.errorString().toUtf8());
    });
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, [&](const IpmbMessage &m) {
        if (!m.isRequest())
            return;
        const QString answer = u"re:"_s + m.payload().toString();
        if (mode == u"echo"_s) {
            endpoint.reply(m, answer);
        } else if (mode == u"concurrent"_s) {
            // reply() from a pool thread, as a worker that does the job there would.
            (void)QtConcurrent::run([&endpoint, m, answer] { endpoint.reply(m, answer); });
        } else if (mode == u"ignore"_s) {
            held.append(m);
            say("held n=" + QByteArray::number(held.size()));
        } else if (mode == u"twice"_s) {
            endpoint.reply(m, answer);
            const bool again = endpoint.reply(m, u"again"_s);
            say("second-reply ok=" + QByteArray::number(again) + " error=" + errorName(endpoint.error()));
        }
    });

    auto command = [&](const QByteArray &line) {
        const QList<QByteArray> w = line.simplified().split(' ');
        if (w.value(0) == "request" && w.size() == 5) {
            // Without a context object: this one may quit (and lose its endpoint) while the
            // request waits, and Qt 6.4 asserts on a continuation whose context has gone.
            endpoint.request(unicast(w[1], w[2].toLongLong()), QString::fromUtf8(w[3]), w[4].toInt())
                    .then([](const IpmbMessage &reply) {
                        say("reply value=" + reply.payload().toString().toUtf8() + " from="
                            + QByteArray::number(reply.senderPid()));
                    })
                    .onFailed([](const IpmbRequestError &e) {
                        say("request-failed error=" + errorName(e.error()) + " reason=" + e.errorString().toUtf8());
                    });
        } else if (w.value(0) == "requests" && w.size() == 4) {
            (new Flood(&endpoint, w[1], w[2].toInt(), w[3].toInt()))->start();
        } else if (w.value(0) == "replyheld") {
            int n = 0;
            for (const IpmbMessage &m : std::as_const(held))
                n += endpoint.reply(m, u"re:"_s + m.payload().toString());
            held.clear();
            say("replied n=" + QByteArray::number(n));
        } else if (w.value(0) == "quit") {
            if (endpoint.state() == IpmbEndpoint::JoiningState)
                endpoint.waitForJoined(10000);
            endpoint.leave();
            QCoreApplication::quit();
        }
    };
    IpmbTest::readCommands(&app, command);
    endpoint.join();
    return app.exec();
}
