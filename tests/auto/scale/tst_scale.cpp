// SPDX-License-Identifier: BSD-3-Clause
// 2,000 endpoints on one bus (issue 11, "Scale"): 20 helper processes (ipmbqt_scale_peer, see
// peer/main.cpp) of 100 endpoints each, labelled {"scale", "p<k>-<i>"}, plus this process's own
// endpoint, which joins first and so hosts the controller (2,001 connections to it). It checks
// that
//   - all 2,000 join (the helpers raise their descriptor limit as a user would; so does this test);
//   - one multicast to "scale" reaches every one of the 2,000 exactly once (each endpoint counts
//     what it gets; a second multicast from the same sender is the fence after which a duplicate
//     of the first would have shown, since messages from one sender arrive in order);
//   - a unicast round trip still works, from here to one chosen endpoint and between two helpers;
//   - the controller costs next to no CPU while the bus is idle: its process's utime + stime over
//     a 2 s window stays under 5 % of one core (the controller's thread alone is reported too);
//   - 100 endpoints leave and 100 others join (the controller reuses descriptor numbers), and a
//     multicast still reaches each of the 2,000 exactly once;
//   - IpmbPlatform::poll(), which switches to epoll beyond a few dozen sockets, tells a closed
//     socket from a new one under the same descriptor number.
// The numbers it prints (join time, fan-out, round trips, idle CPU) are for reading, not checked
// beyond the 5 %: the benchmarks measure join and fan-out times (ipmbqt_bench --only scale).

#include "ipmbtestutil.h"

#include <IpmbQt/IpmbEndpoint>

#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qdir.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qeventloop.h>
#include <QtCore/qfile.h>
#include <QtCore/qprocess.h>
#include <QtCore/qtimer.h>
#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

#include "ipmbplatform_p.h"

#include <array>
#include <memory>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace IpmbTest;

namespace {

constexpr int Processes = 20;
constexpr int PerProcess = 100;
constexpr int Endpoints = Processes * PerProcess;
constexpr int JoinMsecs = 50000;
constexpr int IdleWindowMsecs = 2000;
constexpr double IdleCpuBound = 0.05; // of one core

// One ipmbqt_scale_peer, driven through stdin and its stdout lines; its "error" lines are also
// collected as they arrive, whatever line is being waited for.
class ScalePeer
{
public:
    explicit ScalePeer(int index) : m_prefix("p" + QByteArray::number(index)) { }
    void start(const QString &bus)
    {
        m_process.start(QStringLiteral(IPMBQT_SCALE_PEER),
                        {QStringLiteral("--bus"), bus, QStringLiteral("--count"), QString::number(PerProcess),
                         QStringLiteral("--prefix"), QString::fromUtf8(m_prefix)});
    }
    // The next line starting with `prefix` that arrives before `deadline`; empty if none did.
    QByteArray waitFor(const QByteArray &prefix, const QDeadlineTimer &deadline)
    {
        QByteArray found;
        (void)QTest::qWaitFor([&] { return !(found = take(prefix)).isEmpty(); },
                              int(qMax<qint64>(deadline.remainingTime(), 0)));
        if (found.isEmpty())
            qWarning("%s: no line \"%s...\" in time; it printed since: %s", m_prefix.constData(),
                     prefix.constData(), m_skipped.join(" | ").constData());
        return found;
    }
    void command(const QByteArray &line) { m_process.command(line); }
    QByteArrayList errors()
    {
        readLines();
        return m_errors;
    }
    const QByteArray &prefix() const { return m_prefix; }
    qint64 pid() const { return m_process.processId(); }
    bool quit() { return m_process.quit(20000); }

private:
    // Moves what arrived into m_lines, noting "error" lines (without consuming anything).
    void readLines()
    {
        m_buffer += m_process.readAllStandardOutput();
        for (qsizetype end; (end = m_buffer.indexOf('\n')) >= 0;) {
            const QByteArray line = m_buffer.left(end);
            m_buffer.remove(0, end + 1);
            if (line.startsWith("error"))
                m_errors.append(m_prefix + ": " + line);
            m_lines.append(line);
        }
    }
    // Returns (and consumes up to) the first line starting with `prefix`, or nothing.
    QByteArray take(const QByteArray &prefix)
    {
        readLines();
        while (!m_lines.isEmpty()) {
            const QByteArray line = m_lines.takeFirst();
            if (line.startsWith(prefix)) {
                m_skipped.clear();
                return line;
            }
            m_skipped.append(line);
        }
        return {};
    }

    ChildProcess m_process;
    QByteArray m_prefix;
    QByteArray m_buffer;
    QByteArrayList m_lines;    // read, not yet consumed
    QByteArrayList m_errors;
    QByteArrayList m_skipped;  // lines since the last one waited for
};

// utime + stime of a process (/proc/<pid>/stat) or of one of its threads
// (/proc/<pid>/task/<tid>/stat), in seconds; -1 if unreadable.
double cpuSeconds(const QString &statPath)
{
    QFile file(statPath);
    if (!file.open(QIODevice::ReadOnly))
        return -1;
    const QByteArray stat = file.readAll();
    // Fields after the command name, which is in parentheses and may hold spaces: state is the
    // third field of the file, utime the 14th, stime the 15th.
    const QList<QByteArray> fields = stat.mid(stat.lastIndexOf(')') + 2).split(' ');
    if (fields.size() < 13)
        return -1;
    return double(fields[11].toLongLong() + fields[12].toLongLong()) / double(::sysconf(_SC_CLK_TCK));
}

// The stat file of this process's controller thread (named after its QThread), or empty.
QString controllerThreadStat()
{
    const QString tasks = QStringLiteral("/proc/%1/task").arg(::getpid());
    for (const QString &tid : QDir(tasks).entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
        QFile comm(tasks + u'/' + tid + QStringLiteral("/comm"));
        if (comm.open(QIODevice::ReadOnly) && comm.readAll().trimmed() == "IpmbController")
            return tasks + u'/' + tid + QStringLiteral("/stat");
    }
    return {};
}

QByteArray labelOf(const IpmbMessage &message)
{
    QByteArray label;
    for (const QString &name : message.senderLabel().toStringList()) {
        if (name != QLatin1String("scale"))
            label = name.toUtf8();
    }
    return label;
}

} // namespace

class tst_Scale : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    // First: it starts a thread, which a ThreadSanitizer build refuses once QProcess has started
    // a child (Qt's vfork-style clone looks like a fork of this multi-threaded process to TSan).
    void pollFollowsReusedDescriptors();
    void twoThousandJoin();
    void multicastReachesEveryEndpointOnce();
    void unicastRoundTrip();
    void idleControllerCostsNothing();
    void leaveAndJoinAgain();
    void cleanupTestCase();

private:
    QByteArrayList allErrors();
    bool busIsUp() const { return m_peers.size() == size_t(Processes) && m_driver && m_driver->isJoined(); }

    QString m_bus;
    std::unique_ptr<IpmbEndpoint> m_driver;
    QList<IpmbMessage> m_received;  // by m_driver
    std::vector<std::unique_ptr<ScalePeer>> m_peers;
};

QByteArrayList tst_Scale::allErrors()
{
    QByteArrayList errors;
    for (const auto &peer : m_peers)
        errors += peer->errors();
    return errors;
}

void tst_Scale::initTestCase()
{
    // This process hosts the controller: one socket per endpoint, so raise the soft descriptor
    // limit to the hard one, as a user would (join() does it too).
    rlimit limit;
    QVERIFY(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        QVERIFY(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
    }
    QVERIFY2(limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= rlim_t(Endpoints + 200),
             qPrintable(QStringLiteral("the hard descriptor limit (%1) is too low for %2 connections: raise it (ulimit -Hn)")
                                .arg(limit.rlim_max).arg(Endpoints)));
}

// Beyond a few dozen sockets IpmbPlatform::poll() keeps an epoll set per thread, which knows a
// socket by its descriptor number; a socket closed with closeSocket() and a new one under the same
// number must be told apart, whether this thread or another one closed it.
void tst_Scale::pollFollowsReusedDescriptors()
{
    constexpr int Pairs = 100;
    std::vector<std::array<int, 2>> pairs(Pairs);
    for (auto &pair : pairs)
        QVERIFY(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair.data()) == 0);
    std::vector<IpmbPlatform::PollEntry> entries(Pairs);
    const auto pollAll = [&](int timeout) {
        for (int i = 0; i < Pairs; ++i)
            entries[size_t(i)] = {pairs[size_t(i)][0], true, false, false, false};
        return IpmbPlatform::poll(entries.data(), Pairs, timeout);
    };
    const auto readable = [&] {
        QList<int> ready;
        for (int i = 0; i < Pairs; ++i) {
            if (entries[size_t(i)].readable)
                ready.append(i);
        }
        return ready;
    };
    QVERIFY(pollAll(0));
    QCOMPARE(readable(), QList<int>());
    for (const bool otherThread : {false, true}) {
        // Closed while registered (and readable, so that a stale registration would show)...
        const int victim = otherThread ? 70 : 30;
        QCOMPARE(::write(pairs[size_t(victim)][1], "x", 1), ssize_t(1));
        QVERIFY(pollAll(0));
        QCOMPARE(readable(), QList<int>{victim});
        char byte;
        QCOMPARE(::read(pairs[size_t(victim)][0], &byte, 1), ssize_t(1));
        const int number = pairs[size_t(victim)][0];
        if (otherThread) {
            std::thread([number] { IpmbPlatform::closeSocket(number); }).join();
        } else {
            IpmbPlatform::closeSocket(number);
        }
        IpmbPlatform::closeSocket(pairs[size_t(victim)][1]);
        // ...and a new socket under the same number, which becomes readable.
        QVERIFY(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pairs[size_t(victim)].data()) == 0);
        QCOMPARE(pairs[size_t(victim)][0], number);
        QVERIFY(pollAll(0));
        QCOMPARE(readable(), QList<int>());
        QCOMPARE(::write(pairs[size_t(victim)][1], "y", 1), ssize_t(1));
        QVERIFY(pollAll(1000));
        QCOMPARE(readable(), QList<int>{victim});
        QCOMPARE(::read(pairs[size_t(victim)][0], &byte, 1), ssize_t(1));
        QCOMPARE(byte, 'y');
    }
    for (auto &pair : pairs) {
        IpmbPlatform::closeSocket(pair[0]);
        IpmbPlatform::closeSocket(pair[1]);
    }
}

void tst_Scale::twoThousandJoin()
{
    m_bus = uniqueBusName();
    m_driver = std::make_unique<IpmbEndpoint>();
    m_driver->setIdentifier(m_bus);
    m_driver->setLabel({QStringLiteral("scale-driver")});
    connect(m_driver.get(), &IpmbEndpoint::messageReceived, this, [this](const IpmbMessage &m) { m_received.append(m); });
    m_driver->join();
    QVERIFY(m_driver->waitForJoined(10000));
    QVERIFY(m_driver->isController());

    QElapsedTimer joinTime;
    joinTime.start();
    for (int k = 0; k < Processes; ++k) {
        m_peers.push_back(std::make_unique<ScalePeer>(k));
        m_peers.back()->start(m_bus);
    }
    const QDeadlineTimer deadline(JoinMsecs);
    qint64 slowestInside = 0;
    for (const auto &peer : m_peers) {
        const QByteArray line = peer->waitFor("joined", deadline);
        QVERIFY2(!line.isEmpty(), allErrors().join('\n').constData());
        QCOMPARE(field(line, "n").toInt(), PerProcess);
        slowestInside = qMax(slowestInside, field(line, "ms").toLongLong());
    }
    qInfo("%d endpoints in %d processes joined in %lld ms (from starting the processes; the slowest "
          "process took %lld ms from its first join() to its last joined())",
          Endpoints, Processes, joinTime.elapsed(), slowestInside);
    QVERIFY2(allErrors().isEmpty(), allErrors().join('\n').constData());
}

void tst_Scale::multicastReachesEveryEndpointOnce()
{
    QVERIFY2(busIsUp(), "the bus of twoThousandJoin() is not up");
    QElapsedTimer fanOut;
    fanOut.start();
    QVERIFY(m_driver->send(IpmbSelector::multicast(IpmbLabelOp("scale")), QStringLiteral("mc:first")));
    QDeadlineTimer deadline(20000);
    for (const auto &peer : m_peers)
        QVERIFY2(!peer->waitFor("complete tag=first", deadline).isEmpty(), allErrors().join('\n').constData());
    qInfo("one multicast reached all %d endpoints within %lld ms (as seen through the helpers' stdout)",
          Endpoints, fanOut.elapsed());

    // The fence: once every endpoint has this one, a duplicate of the first would have arrived.
    QVERIFY(m_driver->send(IpmbSelector::multicast(IpmbLabelOp("scale")), QStringLiteral("mc:fence")));
    deadline.setRemainingTime(20000);
    for (const auto &peer : m_peers)
        QVERIFY(!peer->waitFor("complete tag=fence", deadline).isEmpty());
    for (const auto &peer : m_peers) {
        peer->command("count");
        const QByteArray line = peer->waitFor("count", deadline);
        QVERIFY(!line.isEmpty());
        QVERIFY2(field(line, "exact") == "1" && field(line, "duplicates") == "0"
                         && field(line, "mc").toInt() == 2 * PerProcess && field(line, "tags") == "2",
                 (peer->prefix() + ": " + line).constData());
    }
    QVERIFY(m_received.isEmpty()); // "scale-driver" is not "scale"
    QVERIFY2(allErrors().isEmpty(), allErrors().join('\n').constData());
}

void tst_Scale::unicastRoundTrip()
{
    QVERIFY2(busIsUp(), "the bus of twoThousandJoin() is not up");
    // From here to one endpoint of the last process to join, and back.
    const QByteArray chosen = "p" + QByteArray::number(Processes - 1) + '-' + QByteArray::number(PerProcess / 2);
    QSignalSpy answered(m_driver.get(), &IpmbEndpoint::messageReceived);
    QElapsedTimer roundTrip;
    roundTrip.start();
    QVERIFY(m_driver->send(IpmbSelector::unicast(IpmbLabelOp(QString::fromUtf8(chosen))), QStringLiteral("ping:t1")));
    QVERIFY(answered.wait(10000));
    QCOMPARE(m_received.size(), 1);
    qInfo("unicast round trip to %s: %lld us", chosen.constData(), roundTrip.nsecsElapsed() / 1000);
    QCOMPARE(m_received.first().payload().toString(), QStringLiteral("pong:t1"));
    QCOMPARE(labelOf(m_received.first()), chosen);

    // Between two helpers: the first endpoint of the first process asks the last one of the last.
    const QByteArray last = "p" + QByteArray::number(Processes - 1) + '-' + QByteArray::number(PerProcess - 1);
    m_peers.front()->command("ping 0 " + last);
    const QByteArray pong = m_peers.front()->waitFor("pong", QDeadlineTimer(10000));
    QVERIFY(!pong.isEmpty());
    QCOMPARE(field(pong, "from"), last);
    QCOMPARE(field(pong, "to"), QByteArray("p0-0"));
    qInfo("unicast round trip p0-0 -> %s -> p0-0: %s us", last.constData(), field(pong, "us").constData());
    QCOMPARE(m_received.size(), 1);
    QVERIFY2(allErrors().isEmpty(), allErrors().join('\n').constData());
}

void tst_Scale::idleControllerCostsNothing()
{
    QVERIFY2(busIsUp(), "the bus of twoThousandJoin() is not up");
    const QString threadStat = controllerThreadStat();
    QVERIFY2(!threadStat.isEmpty(), "no thread named IpmbController in this process");
    const QString processStat = QStringLiteral("/proc/%1/stat").arg(::getpid());
    QList<double> helpersBefore;
    for (const auto &peer : m_peers)
        helpersBefore.append(cpuSeconds(QStringLiteral("/proc/%1/stat").arg(peer->pid())));
    const double processBefore = cpuSeconds(processStat);
    const double threadBefore = cpuSeconds(threadStat);
    QElapsedTimer window;
    window.start();
    // A measurement window, not a synchronisation: nothing is waited for, the bus is left alone
    // for 2 s while this thread sleeps in its event loop.
    QEventLoop loop;
    QTimer::singleShot(IdleWindowMsecs, Qt::PreciseTimer, &loop, &QEventLoop::quit);
    loop.exec();
    const double seconds = double(window.nsecsElapsed()) / 1e9;
    const double process = (cpuSeconds(processStat) - processBefore) / seconds;
    const double thread = (cpuSeconds(threadStat) - threadBefore) / seconds;
    double helpers = 0;
    for (size_t k = 0; k < m_peers.size(); ++k)
        helpers += cpuSeconds(QStringLiteral("/proc/%1/stat").arg(m_peers[k]->pid())) - helpersBefore[qsizetype(k)];
    qInfo("idle for %.2f s: the controller's process used %.1f %% of a core, its controller thread %.1f %%; "
          "the %d helper processes together %.1f %% (one wake-up a second per endpoint)",
          seconds, 100 * process, 100 * thread, Processes, 100 * helpers / seconds);
    QVERIFY2(process < IdleCpuBound,
             qPrintable(QStringLiteral("the controller's process used %1 % of a core while idle").arg(100 * process)));
}

// A process of 100 endpoints leaves and another one joins: the controller closes 100 sockets and
// accepts 100 that are likely to get the same descriptor numbers (see
// pollFollowsReusedDescriptors), and the bus still reaches every one of the 2,000 exactly once.
void tst_Scale::leaveAndJoinAgain()
{
    QVERIFY2(busIsUp(), "the bus of twoThousandJoin() is not up");
    QVERIFY(m_peers.front()->quit());
    m_peers.erase(m_peers.begin());
    m_peers.push_back(std::make_unique<ScalePeer>(Processes));
    m_peers.back()->start(m_bus);
    QDeadlineTimer deadline(20000);
    QVERIFY2(!m_peers.back()->waitFor("joined", deadline).isEmpty(), allErrors().join('\n').constData());
    QVERIFY(m_driver->send(IpmbSelector::multicast(IpmbLabelOp("scale")), QStringLiteral("mc:again")));
    for (const auto &peer : m_peers)
        QVERIFY2(!peer->waitFor("complete tag=again", deadline).isEmpty(), allErrors().join('\n').constData());
    for (const auto &peer : m_peers) {
        peer->command("count");
        const QByteArray line = peer->waitFor("count", deadline);
        QVERIFY2(field(line, "exact") == "1" && field(line, "duplicates") == "0",
                 (peer->prefix() + ": " + line).constData());
    }
    QVERIFY2(allErrors().isEmpty(), allErrors().join('\n').constData());
}

void tst_Scale::cleanupTestCase()
{
    for (const auto &peer : m_peers)
        peer->command("quit");
    for (const auto &peer : m_peers)
        QVERIFY2(peer->quit(), peer->prefix().constData());
    QVERIFY2(allErrors().isEmpty(), allErrors().join('\n').constData());
    m_peers.clear();
    m_driver.reset();
}

QTEST_MAIN(tst_Scale)
#include "tst_scale.moc"
