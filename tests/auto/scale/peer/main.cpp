// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt_scale_peer: hosts many endpoints in one process, for tst_scale (and by hand).
//   ipmbqt_scale_peer --bus ID --count N --prefix P [--join-timeout ms] [--watchdog ms]
// Endpoint i has the label {"scale", "P-i"}. Every endpoint counts what it receives. Output, one
// line per event:
//   limit fds=<soft RLIMIT_NOFILE after raising it>
//   joined n=<N> ms=<from the first join() to the last joined()>   (once, when all N have joined)
//   error i=<i> <ErrorName> <errorString>          (any endpoint's errorOccurred)
//   complete tag=<tag> n=<N>                        (every endpoint has received "mc:<tag>")
//   pong token=<t> from=<label> to=<label> us=<round trip>     (the answer to "ping")
//   count mc=<multicasts received, all endpoints> tags=<distinct tags> exact=<0|1> duplicates=<n>
//         other=<n>                                 (answer to "count"; exact=1: every endpoint got
//                                                  every tag that anybody got exactly once)
// Messages (QString payloads): "mc:<tag>" is counted; "ping:<t>" is answered with "pong:<t>" by
// unicast to the sender's label that is not "scale"; "pong:<t>" is reported.
// Commands on stdin, one per line:
//   count | ping <i> <labelop> | multicast <i> <tag> | quit (end of input means quit too)

#include <IpmbQt/IpmbEndpoint>

#include <QtCore/qcommandlineparser.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qhash.h>
#include <QtCore/qmetaobject.h>
#include <QtCore/qsocketnotifier.h>
#include <QtCore/qtimer.h>

#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static void say(const QByteArray &line)
{
    std::fwrite(line.constData(), 1, size_t(line.size()), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

// What a user does for a process that holds many connections: the soft descriptor limit up to
// the hard one. Returns the soft limit now in force.
static qint64 raiseDescriptorLimit()
{
    rlimit limit;
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return -1;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
        ::getrlimit(RLIMIT_NOFILE, &limit);
    }
    return limit.rlim_cur == RLIM_INFINITY ? std::numeric_limits<qint64>::max() : qint64(limit.rlim_cur);
}

struct Slot
{
    std::unique_ptr<IpmbEndpoint> endpoint;
    QByteArray name;                 // "P-i"
    QHash<QByteArray, int> tags;     // multicast tag -> times received
    bool joined = false;
};

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QCommandLineParser parser;
    parser.addOptions({
            {QStringLiteral("bus"), QStringLiteral("Bus identifier."), QStringLiteral("id")},
            {QStringLiteral("count"), QStringLiteral("Endpoints in this process."), QStringLiteral("n"),
             QStringLiteral("100")},
            {QStringLiteral("prefix"), QStringLiteral("Label prefix: endpoint i is <prefix>-<i>."),
             QStringLiteral("text"), QStringLiteral("p")},
            {QStringLiteral("join-timeout"), QStringLiteral("joinTimeout() of every endpoint."), QStringLiteral("ms"),
             QStringLiteral("30000")},
            {QStringLiteral("watchdog"), QStringLiteral("Exit with 3 after ms."), QStringLiteral("ms"),
             QStringLiteral("120000")},
    });
    parser.process(app);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive the test
    QTimer::singleShot(parser.value(QStringLiteral("watchdog")).toInt(), &app, [] {
        say("error i=-1 watchdog expired");
        ::_exit(3);
    });

    const int count = parser.value(QStringLiteral("count")).toInt();
    const QByteArray prefix = parser.value(QStringLiteral("prefix")).toUtf8();
    // Each endpoint holds four: its socket and three eventfds (its wakers, its I/O thread's event
    // dispatcher); the Qt event loop and stdio a few more.
    const qint64 fds = raiseDescriptorLimit();
    say("limit fds=" + QByteArray::number(fds));
    if (fds < 4 * qint64(count) + 64) {
        say("error i=-1 ResourceError the descriptor limit " + QByteArray::number(fds) + " is too low for "
            + QByteArray::number(count) + " endpoints (raise the hard limit: ulimit -Hn)");
        return 1;
    }

    const QMetaEnum errors = QMetaEnum::fromType<IpmbEndpoint::Error>();
    std::vector<Slot> members(static_cast<size_t>(count));
    QHash<QByteArray, int> reached;  // tag -> endpoints that have it
    qint64 duplicates = 0;
    qint64 other = 0;
    int joinedCount = 0;
    QElapsedTimer joinClock;
    QHash<QByteArray, qint64> pings;  // token -> nsecs at sending
    QElapsedTimer clock;
    clock.start();
    int nextToken = 0;

    for (int i = 0; i < count; ++i) {
        Slot &slot = members[size_t(i)];
        slot.name = prefix + '-' + QByteArray::number(i);
        slot.endpoint = std::make_unique<IpmbEndpoint>();
        IpmbEndpoint *endpoint = slot.endpoint.get();
        endpoint->setIdentifier(parser.value(QStringLiteral("bus")));
        endpoint->setLabel({QStringLiteral("scale"), QString::fromUtf8(slot.name)});
        endpoint->setJoinTimeout(parser.value(QStringLiteral("join-timeout")).toInt());
        QObject::connect(endpoint, &IpmbEndpoint::errorOccurred, endpoint, [&, i, endpoint](IpmbEndpoint::Error e) {
            if (e != IpmbEndpoint::NoError)
                say("error i=" + QByteArray::number(i) + ' ' + errors.valueToKey(e) + ' ' + endpoint->errorString().toUtf8());
        });
        QObject::connect(endpoint, &IpmbEndpoint::joined, endpoint, [&, i] {
            Slot &s = members[size_t(i)];
            if (s.joined)
                return; // again after a failover
            s.joined = true;
            if (++joinedCount == count)
                say("joined n=" + QByteArray::number(count) + " ms=" + QByteArray::number(joinClock.elapsed()));
        });
        QObject::connect(endpoint, &IpmbEndpoint::messageReceived, endpoint, [&, i](const IpmbMessage &m) {
            Slot &s = members[size_t(i)];
            const QByteArray text = m.payload().toString().toUtf8();
            if (text.startsWith("mc:")) {
                const QByteArray tag = text.mid(3);
                if (++s.tags[tag] > 1) {
                    ++duplicates;
                } else if (++reached[tag] == count) {
                    say("complete tag=" + tag + " n=" + QByteArray::number(count));
                }
            } else if (text.startsWith("ping:")) {
                QString to;
                for (const QString &name : m.senderLabel().toStringList()) {
                    if (name != QLatin1String("scale"))
                        to = name;
                }
                s.endpoint->send(IpmbSelector::unicast(IpmbLabelOp(to)), QStringLiteral("pong:") + text.mid(5));
            } else if (text.startsWith("pong:")) {
                const QByteArray token = text.mid(5);
                const qint64 sent = pings.take(token);
                QByteArray from;
                for (const QString &name : m.senderLabel().toStringList()) {
                    if (name != QLatin1String("scale"))
                        from = name.toUtf8();
                }
                say("pong token=" + token + " from=" + from + " to=" + s.name
                    + " us=" + QByteArray::number((clock.nsecsElapsed() - sent) / 1000));
            } else {
                ++other;
            }
        });
    }

    auto report = [&] {
        qint64 mc = 0;
        bool exact = true;
        for (const Slot &s : members) {
            exact = exact && s.tags.size() == reached.size();
            for (auto it = s.tags.cbegin(); it != s.tags.cend(); ++it) {
                mc += it.value();
                exact = exact && it.value() == 1;
            }
        }
        say("count mc=" + QByteArray::number(mc) + " tags=" + QByteArray::number(reached.size())
            + " exact=" + QByteArray::number(exact) + " duplicates=" + QByteArray::number(duplicates)
            + " other=" + QByteArray::number(other));
    };
    auto quit = [&] {
        members.clear(); // every endpoint leaves
        app.quit();
    };
    auto onCommand = [&](const QByteArray &line) {
        if (members.empty())
            return; // quit already
        const QList<QByteArray> words = line.split(' ');
        const QByteArray &command = words.value(0);
        if (command == "count") {
            report();
        } else if (command == "ping" && words.size() == 3) {
            const int i = words[1].toInt();
            if (i < 0 || i >= count)
                return say("error i=" + words[1] + " no such endpoint");
            const QByteArray token = members[size_t(i)].name + '.' + QByteArray::number(++nextToken);
            const std::optional<IpmbLabelOp> op = IpmbLabelOp::fromString(QString::fromUtf8(words[2]));
            if (!op)
                return say("error i=" + words[1] + " bad label op " + words[2]);
            pings.insert(token, clock.nsecsElapsed());
            if (!members[size_t(i)].endpoint->send(IpmbSelector::unicast(*op), QStringLiteral("ping:") + QString::fromUtf8(token)))
                say("error i=" + words[1] + " send failed");
        } else if (command == "multicast" && words.size() == 3) {
            const int i = words[1].toInt();
            if (i < 0 || i >= count)
                return say("error i=" + words[1] + " no such endpoint");
            if (!members[size_t(i)].endpoint->send(IpmbSelector::multicast(IpmbLabelOp("scale")),
                                                 QStringLiteral("mc:") + QString::fromUtf8(words[2])))
                say("error i=" + words[1] + " send failed");
        } else if (command == "quit") {
            quit();
        } else {
            say("error i=-1 unknown command " + line);
        }
    };
    QSocketNotifier input(STDIN_FILENO, QSocketNotifier::Read);
    QByteArray pending;
    QObject::connect(&input, &QSocketNotifier::activated, &app, [&] {
        char chunk[512];
        const ssize_t r = ::read(STDIN_FILENO, chunk, sizeof(chunk));
        if (r <= 0) {
            input.setEnabled(false);
            quit();
            return;
        }
        pending.append(chunk, qsizetype(r));
        for (qsizetype newline; (newline = pending.indexOf('\n')) >= 0;) {
            const QByteArray line = pending.left(newline).trimmed();
            pending.remove(0, newline + 1);
            if (!line.isEmpty())
                onCommand(line);
        }
    });

    joinClock.start();
    for (Slot &slot : members)
        slot.endpoint->join();
    return app.exec();
}
