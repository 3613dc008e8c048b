// SPDX-License-Identifier: BSD-3-Clause
// The soak run (issue "Trust"): `./dev.sh soak [minutes]`.
//
// Six helper processes (ipmbqt_test_peer, see tests/auto/multiprocess/peer/main.cpp) join one
// unique bus; each is driven through its stdin with an endless mix of traffic (unicast and
// multicast floods of small and large payloads -- 16 KiB and more travel in shared-memory regions --,
// memfds, regions, held regions, registry frames, typed messages). Every minute the process that
// hosts the controller is killed with SIGKILL and a replacement starts in its slot, so there are
// always six. Every few seconds the driver samples, for every live process, VmRSS (and RssAnon,
// RssShmem) from /proc/<pid>/status and the number of entries in /proc/<pid>/fd.
//
// Verdict, per process (a replacement starts fresh, so each process is judged on its own):
//   warm-up W = min(2 min, 20 % of the run), counted from the process's own start;
//   a process is judged when it lived at least min(2 min, 40 % of the run) after its warm-up;
//   RSS: median of the samples in the first minute after warm-up vs. median of its last minute
//        (the last sample of a survivor is taken after the traffic has stopped): growth must
//        be within 10 % of the baseline + 8 MiB;
//   fds: minimum over the same two windows (in-flight handles make single samples noisy): the
//        descriptors other than region memfds may grow by at most 16; region memfds
//        (memfd:ipmbqt-region) come and go with the bounded mapping cache and payload pool
//        (doc/memory.md: 128 idle mappings, 64 pooled regions), so they are held to that bound
//        plus 64 in flight (256) instead.
// Also: after each kill every survivor must rejoin and the replacement join (within 20 s), and
// messages must be delivered before the next kill; no helper may exit on its own or stall (a
// command unanswered for 120 s). Results: a table per minute on stdout, JSON in --output.
// Exit code 0 on pass, 1 on failure, 2 on a usage error.

#include <QtCore/qcommandlineparser.h>
#include <QtCore/qcoreapplication.h>
#include <QtCore/qdatetime.h>
#include <QtCore/qdir.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qfile.h>
#include <QtCore/qfileinfo.h>
#include <QtCore/qjsonarray.h>
#include <QtCore/qjsondocument.h>
#include <QtCore/qjsonobject.h>
#include <QtCore/qprocess.h>
#include <QtCore/qtimer.h>
#include <QtCore/quuid.h>

#include <algorithm>
#include <climits>
#include <map>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef IPMBQT_PEER
#error "IPMBQT_PEER must name the helper (ipmbqt_test_peer)"
#endif

namespace {

constexpr int Slots = 6;
constexpr double RssGrowthFraction = 0.10;
constexpr double RssGrowthSlackMiB = 8.0;
constexpr int FdGrowthMax = 16;
// Region descriptors (memfd:ipmbqt-region) come and go with the mapping cache (at most 128 idle
// mappings) and the sender's payload pool (at most 64 regions), doc/memory.md: they are judged
// against that bound plus 64 in flight, not by their growth.
constexpr int RegionFdBound = 128 + 64 + 64;
constexpr double RejoinWithinS = 20.0;
constexpr double StallS = 120.0;

struct Sample
{
    double t;
    qint64 rssKiB;
    qint64 anonKiB;
    qint64 shmemKiB;
    int fds;
    int regionFds; // of fds: memfd:ipmbqt-region
};

struct Peer
{
    int id = 0;
    int slot = 0;
    std::unique_ptr<QProcess> process;
    qint64 pid = 0;
    double startT = 0;
    double endT = -1;              // when it was killed or exited
    double firstJoinT = -1;
    double controllerSinceT = -1;  // when it first said controller=1
    double lastJoinT = -1;
    int joins = 0;
    bool controller = false;       // from its latest "joined" line
    bool killedByUs = false;
    bool exited = false;
    bool unexpectedExit = false;
    int exitCode = 0;
    QByteArray state;
    QByteArray out;
    std::unique_ptr<QFile> log;    // its stderr
    // pacing: one command at a time, followed by "count" whose answer marks the end
    bool busy = false;
    double commandT = 0;
    double idleSince = 0;
    QByteArray command;
    int cycle = 0;
    bool stalled = false;
    // what it received (cumulative)
    quint64 flood = 0;             // from "count n="
    quint64 droppedReported = 0;   // from "count dropped="
    quint64 regionsOk = 0, regionsBad = 0, fdsOk = 0, fdsBad = 0, regionOk = 0, regionBad = 0;
    quint64 received = 0;
    quint64 frames = 0, framesBad = 0; // registryflood (as sender: frames acknowledged by the receiver)
    quint64 commands = 0;
    QList<QByteArray> errors;
    std::map<QByteArray, int> errorKinds;
    std::vector<Sample> samples;

    bool alive() const { return endT < 0; }
    quint64 delivered() const { return flood + regionsOk + fdsOk + regionOk + received + frames; }
    QByteArray label() const { return "s" + QByteArray::number(slot); }
};

struct Kill
{
    int minute = 0;
    double t = 0;
    int slot = 0;
    qint64 pid = 0;
    int peerId = 0;
    int replacementId = 0;
    std::vector<int> survivors;    // peer ids alive at the kill
    quint64 deliveredAtKill = 0;
    quint64 deliveredBeforeNext = 0;
    double hostSinceT = -1;        // when the killed helper became the controller
    double hostRssTakeoverMiB = 0; // its RSS at the first sample after that
    double hostRssKillMiB = 0;     // and at the last sample before the kill
    int hostFdsKill = 0;
    int hostRegionFdsKill = 0;     // of those, region memfds (the router holds them in flight too)
};

struct MinuteRow
{
    int minute;
    int kills;
    quint64 delivered;
    QList<QByteArray> cells;
};

qint64 statusKiB(const QByteArray &status, const QByteArray &key)
{
    const qsizetype at = status.indexOf("\n" + key + ':');
    if (at < 0)
        return -1;
    const qsizetype end = status.indexOf('\n', at + 1);
    return status.mid(at + key.size() + 2, end - at - key.size() - 2).trimmed().split(' ').value(0).toLongLong();
}

double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

QByteArray field(const QByteArray &line, const QByteArray &key)
{
    for (const QByteArray &part : line.split(' ')) {
        if (part.startsWith(key + '='))
            return part.mid(key.size() + 1);
    }
    return {};
}

class Soak : public QObject
{
public:
    Soak(double minutes, double killInterval, double sampleInterval, QString output, QString logDir)
        : m_duration(minutes * 60), m_killInterval(killInterval), m_sampleInterval(sampleInterval),
          m_output(std::move(output)), m_logDir(std::move(logDir))
    {
        m_warmup = std::min(120.0, 0.2 * m_duration);
        m_minMeasured = std::min(120.0, 0.4 * m_duration);
        m_bus = QStringLiteral("ipmbqt.soak.") + QUuid::createUuid().toString(QUuid::WithoutBraces);
    }

    void start()
    {
        QDir().mkpath(m_logDir);
        std::printf("soak: %d processes of %s on bus %s for %.1f min; controller killed every %.0f s\n", Slots,
                    IPMBQT_PEER, qPrintable(m_bus), m_duration / 60, m_killInterval);
        std::printf("soak: samples every %.0f s; warm-up %.0f s per process; judged if measured >= %.0f s after it\n",
                    m_sampleInterval, m_warmup, m_minMeasured);
        std::printf("soak: thresholds: RSS growth <= %.0f %% of baseline + %.0f MiB (median of first minute after "
                    "warm-up vs. last minute); descriptors other than region memfds: growth <= +%d (minimum of the "
                    "same windows); region memfds (mapping cache + payload pool): at most %d; survivors rejoin "
                    "within %.0f s of each kill; messages delivered after every kill; no helper stalls %.0f s\n",
                    RssGrowthFraction * 100, RssGrowthSlackMiB, FdGrowthMax, RegionFdBound, RejoinWithinS, StallS);
        std::printf("soak: even slots receive with receive() in a thread, odd slots through messageReceived()\n");
        std::printf("soak: helper stderr in %s/peer-<n>.log\n", qPrintable(m_logDir));
        std::fflush(stdout);
        m_clock.start();
        for (int slot = 0; slot < Slots; ++slot)
            startPeer(slot);
        connect(&m_tick, &QTimer::timeout, this, [this] { tick(); });
        m_tick.start(250);
    }

private:
    double now() const { return m_clock.nsecsElapsed() / 1e9; }

    Peer *startPeer(int slot)
    {
        auto peer = std::make_unique<Peer>();
        Peer *p = peer.get();
        p->id = int(m_peers.size());
        p->slot = slot;
        p->startT = now();
        p->idleSince = p->startT;
        p->process = std::make_unique<QProcess>();
        p->log = std::make_unique<QFile>(m_logDir + QStringLiteral("/peer-%1.log").arg(p->id));
        p->log->open(QIODevice::WriteOnly | QIODevice::Truncate);
        QProcess *process = p->process.get();
        connect(process, &QProcess::readyReadStandardOutput, this, [this, p] { readOutput(p); });
        connect(process, &QProcess::readyReadStandardError, this, [p] {
            const QByteArray err = p->process->readAllStandardError();
            p->log->write(err);
            p->log->flush();
        });
        connect(process, &QProcess::finished, this, [this, p](int code, QProcess::ExitStatus) {
            p->exited = true;
            p->exitCode = code;
            if (p->endT < 0)
                p->endT = now();
            if (!p->killedByUs && !m_stopping) {
                p->unexpectedExit = true;
                m_failures.append(QStringLiteral("helper %1 (slot %2, pid %3) exited by itself with code %4 at %5 s")
                                          .arg(p->id).arg(p->slot).arg(p->pid).arg(code).arg(now(), 0, 'f', 1));
                std::printf("!! helper %d (slot %d, pid %lld) exited by itself, code %d\n", p->id, p->slot, p->pid, code);
                std::fflush(stdout);
                replaceSlot(p->slot);
            }
        });
        // A generous watchdog: the run, plus time to shut down.
        const int watchdog = int((m_duration + 600) * 1000);
        // Even slots take messages with receive() in a thread (the direct-read path), odd slots
        // through messageReceived().
        QStringList arguments {QStringLiteral("--bus"), m_bus, QStringLiteral("--label"),
                               QString::fromLatin1(p->label() + ",soak"), QStringLiteral("--watchdog"),
                               QString::number(watchdog)};
        if (slot % 2 == 0)
            arguments << QStringLiteral("--receive-thread");
        process->start(QStringLiteral(IPMBQT_PEER), arguments);
        process->waitForStarted(10000);
        p->pid = process->processId();
        m_live[slot] = p;
        m_peers.push_back(std::move(peer));
        return p;
    }

    void replaceSlot(int slot)
    {
        if (m_stopping)
            return;
        startPeer(slot);
    }

    void readOutput(Peer *p)
    {
        p->out += p->process->readAllStandardOutput();
        for (qsizetype end; (end = p->out.indexOf('\n')) >= 0;) {
            const QByteArray line = p->out.left(end);
            p->out.remove(0, end + 1);
            onLine(p, line);
        }
    }

    void onLine(Peer *p, const QByteArray &line)
    {
        const double t = now();
        if (line.startsWith("joined ")) {
            ++p->joins;
            p->lastJoinT = t;
            if (p->firstJoinT < 0)
                p->firstJoinT = t;
            p->controller = field(line, "controller") == "1";
            if (p->controller && p->controllerSinceT < 0)
                p->controllerSinceT = t;
            m_joinTimes[p->id].push_back(t);
        } else if (line.startsWith("state ")) {
            p->state = line.mid(6);
        } else if (line.startsWith("count ")) {
            p->flood = field(line, "n").toULongLong();
            p->droppedReported = field(line, "dropped").toULongLong();
            p->busy = false;
            p->idleSince = t;
        } else if (line.startsWith("regions ok=")) {
            (line.endsWith("ok=1") ? p->regionsOk : p->regionsBad)++;
        } else if (line.startsWith("fds ok=")) {
            (field(line, "ok") == "1" ? p->fdsOk : p->fdsBad)++;
        } else if (line.startsWith("region ok=")) {
            (field(line, "ok") == "1" ? p->regionOk : p->regionBad)++;
            p->process->write("drop\n"); // it holds the region until then
        } else if (line.startsWith("received ")) {
            ++p->received;
        } else if (line.startsWith("registry ")) {
            p->frames += field(line, "frames").toULongLong();
            p->framesBad += field(line, "bad").toULongLong();
        } else if (line.startsWith("error ")) {
            ++m_errorLines;
            if (p->errors.size() < 50)
                p->errors.append(QByteArray::number(t, 'f', 1) + "s " + line);
            // Each distinct line is printed once, then counted (a receive thread that starts
            // before join() repeats "receive: the endpoint is not joined" until it has joined).
            ++p->errorKinds[line];
            if (m_errorKinds[line]++ == 0) {
                std::printf("   [%6.1fs] helper %d (slot %d, pid %lld): %s (first of its kind)\n", t, p->id, p->slot,
                            p->pid, line.constData());
                std::fflush(stdout);
            }
            if (line.startsWith("error watchdog"))
                m_failures.append(QStringLiteral("helper %1: watchdog expired").arg(p->id));
        }
    }

    // The traffic mix, one command per turn; <t> is another slot's label.
    QByteArray nextCommand(Peer *p, double t)
    {
        const int target = (p->slot + 1 + p->cycle % (Slots - 1)) % Slots;
        const QByteArray to = "s" + QByteArray::number(target);
        const double untilKill = nextKillT() - t;
        for (;;) {
            const int step = p->cycle++ % 12;
            switch (step) {
            case 0: return "flood unicast " + to + " 2000 256";
            case 1: return "flood multicast soak 200 700";
            case 2: return "flood unicast " + to + " 40 65536";         // large: in regions
            case 3: return "sendfds unicast " + to + " 1000 4 40";       // memfds, ttl 1 s
            case 4: return "sendregions unicast " + to + " 0 65536 25";
            case 5: return "flood multicast soak 8 32768";                // large multicast
            case 6:
                // Frames from a registry; acks lost in a failover would leave it waiting, so not
                // right before a kill (and "resetframes" forgets a previous loss).
                if (untilKill < 8)
                    continue;
                return "resetframes\nregistryflood " + to + " 40 262144 4";
            case 7: return "sendregions multicast soak 0 20000 5";
            case 8: return "send unicast " + to + " 0 gadget 3,4,soak\nsend multicast soak 500 str hello";
            case 9: return "sendregion unicast " + to + " 0 131072";      // held until "drop"
            case 10: return "flood unicast (" + to + "||s" + QByteArray::number((target + 1) % Slots) + ") 500 4000";
            case 11: return "sendfds multicast soak 0 2 5";
            }
        }
    }

    double nextKillT() const { return (m_killsDone + 1) * m_killInterval; }

    void tick()
    {
        const double t = now();
        if (m_stopping)
            return;
        if (t >= m_duration) {
            finishTraffic();
            return;
        }
        // Traffic: one command at a time per joined peer, with a short pause in between.
        for (int slot = 0; slot < Slots; ++slot) {
            Peer *p = m_live[slot];
            if (!p || !p->alive() || p->firstJoinT < 0)
                continue;
            if (p->busy) {
                if (!p->stalled && t - p->commandT > StallS) {
                    p->stalled = true;
                    m_failures.append(QStringLiteral("helper %1 (slot %2, pid %3) stalled: \"%4\" unanswered for %5 s")
                                              .arg(p->id).arg(p->slot).arg(p->pid)
                                              .arg(QString::fromLatin1(p->command).replace(u'\n', u';'))
                                              .arg(StallS));
                    std::printf("!! helper %d stalled in \"%s\"\n", p->id, p->command.constData());
                    std::fflush(stdout);
                }
                continue;
            }
            if (t - p->idleSince < 0.15)
                continue;
            p->command = nextCommand(p, t);
            p->busy = true;
            p->commandT = t;
            ++p->commands;
            p->process->write(p->command + "\ncount\n");
        }
        if (t >= m_nextSample) {
            sampleAll(t);
            m_nextSample += m_sampleInterval;
        }
        if (t >= (m_rows.size() + 1) * 60.0)
            addRow(int(m_rows.size()) + 1);
        // Kill the controller's host at each kill time (not at the very end).
        if (t >= nextKillT() && nextKillT() < m_duration - 1)
            killController(t);
    }

    quint64 totalDelivered() const
    {
        quint64 sum = 0;
        for (const auto &p : m_peers)
            sum += p->delivered();
        return sum;
    }

    void killController(double t)
    {
        Peer *controller = nullptr;
        int claims = 0;
        for (Peer *p : m_live) {
            if (p && p->alive() && p->controller && p->joins > 0) {
                ++claims;
                if (!controller || p->lastJoinT > controller->lastJoinT)
                    controller = p;
            }
        }
        if (claims > 1 && !m_splitReported) {
            m_splitReported = true;
            m_suspicious.append(QStringLiteral("%1 live helpers said controller=1 at %2 s").arg(claims).arg(t, 0, 'f', 1));
        }
        if (!controller) {
            if (t - nextKillT() > 30 && !m_noControllerReported) {
                m_noControllerReported = true;
                m_failures.append(QStringLiteral("no helper said it hosts the controller for 30 s after %1 s")
                                          .arg(nextKillT(), 0, 'f', 0));
            }
            return; // try again at the next tick
        }
        Kill kill;
        kill.minute = m_killsDone + 1;
        kill.t = t;
        kill.slot = controller->slot;
        kill.pid = controller->pid;
        kill.peerId = controller->id;
        kill.deliveredAtKill = totalDelivered();
        for (Peer *p : m_live) {
            if (p && p->alive() && p != controller)
                kill.survivors.push_back(p->id);
        }
        sample(controller, t); // its last sample, as the controller's host
        kill.hostSinceT = controller->controllerSinceT;
        for (const Sample &s : controller->samples) {
            if (s.t > controller->controllerSinceT) {
                kill.hostRssTakeoverMiB = s.rssKiB / 1024.0;
                break;
            }
        }
        kill.hostRssKillMiB = controller->samples.back().rssKiB / 1024.0;
        kill.hostFdsKill = controller->samples.back().fds;
        kill.hostRegionFdsKill = controller->samples.back().regionFds;
        ::kill(pid_t(controller->pid), SIGKILL);
        controller->killedByUs = true;
        controller->endT = t;
        // one last sample of it is already in; the zombie is reaped by QProcess
        Peer *replacement = startPeer(controller->slot);
        kill.replacementId = replacement->id;
        if (!m_kills.empty())
            m_kills.back().deliveredBeforeNext = kill.deliveredAtKill - m_kills.back().deliveredAtKill;
        m_kills.push_back(kill);
        ++m_killsDone;
        std::printf("   [%6.1fs] kill %d: SIGKILL to the controller's host, helper %d (slot %d, pid %lld); "
                    "replacement helper %d (pid %lld)\n",
                    t, m_killsDone, controller->id, controller->slot, controller->pid, replacement->id, replacement->pid);
        std::fflush(stdout);
    }

    void sampleAll(double t)
    {
        for (const auto &p : m_peers) {
            if (!p->alive() || p->pid <= 0)
                continue;
            sample(p.get(), t);
        }
    }

    static bool sample(Peer *p, double t)
    {
        QFile status(QStringLiteral("/proc/%1/status").arg(p->pid));
        if (!status.open(QIODevice::ReadOnly))
            return false;
        const QByteArray text = "\n" + status.readAll();
        Sample s;
        s.t = t;
        s.rssKiB = statusKiB(text, "VmRSS");
        s.anonKiB = statusKiB(text, "RssAnon");
        s.shmemKiB = statusKiB(text, "RssShmem");
        const QString fdDir = QStringLiteral("/proc/%1/fd/").arg(p->pid);
        const QStringList fds = QDir(fdDir).entryList(QDir::Files | QDir::System);
        s.fds = int(fds.size());
        s.regionFds = 0;
        for (const QString &fd : fds) {
            char target[256];
            const ssize_t n = ::readlink(QFile::encodeName(fdDir + fd).constData(), target, sizeof(target) - 1);
            if (n > 0 && QByteArrayView(target, n).startsWith("/memfd:ipmbqt-region"))
                ++s.regionFds;
        }
        if (s.rssKiB < 0)
            return false;
        p->samples.push_back(s);
        return true;
    }

    void addRow(int minute)
    {
        MinuteRow row;
        row.minute = minute;
        row.kills = m_killsDone;
        const quint64 total = totalDelivered();
        row.delivered = total - m_deliveredAtLastRow;
        m_deliveredAtLastRow = total;
        for (int slot = 0; slot < Slots; ++slot) {
            Peer *p = m_live[slot];
            QByteArray cell = "-";
            if (p && !p->samples.empty()) {
                const Sample &s = p->samples.back();
                cell = QByteArray::number(p->id) + (p->controller ? "*" : "") + ":"
                        + QByteArray::number(s.rssKiB / 1024.0, 'f', 1) + "/" + QByteArray::number(s.fds);
            } else if (p) {
                cell = QByteArray::number(p->id) + ":new";
            }
            row.cells.append(cell);
        }
        if (m_rows.empty()) {
            std::printf("\ncells: helper id (* = hosts the controller): VmRSS MiB / open fds, last sample; delivered: "
                        "messages received by all helpers in that minute\n");
            std::printf("min kills  delivered");
            for (int slot = 0; slot < Slots; ++slot)
                std::printf("  %-16s", qPrintable(QStringLiteral("s%1 id:MiB/fds").arg(slot)));
            std::printf("\n");
        }
        std::printf("%3d %5d %10llu", row.minute, row.kills, row.delivered);
        for (const QByteArray &cell : std::as_const(row.cells))
            std::printf("  %-16s", cell.constData());
        std::printf("\n");
        std::fflush(stdout);
        m_rows.push_back(row);
    }

    // End of the run: no new commands; wait until every helper has answered its last one (at most
    // 60 s), let in-flight messages settle, take the final sample, then evaluate.
    void finishTraffic()
    {
        m_stopping = true;
        m_tick.stop();
        const double endT = now();
        if (m_rows.size() < size_t(std::ceil(m_duration / 60 - 1e-9)))
            addRow(int(m_rows.size()) + 1);
        QElapsedTimer wait;
        wait.start();
        auto anyBusy = [this] {
            for (Peer *p : m_live) {
                if (p && p->alive() && p->busy && !p->stalled)
                    return true;
            }
            return false;
        };
        while (anyBusy() && wait.elapsed() < 60000)
            QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 100);
        const double drainS = wait.elapsed() / 1000.0;
        int stillBusy = 0;
        for (Peer *p : m_live)
            stillBusy += p && p->alive() && p->busy;
        QElapsedTimer settle;
        settle.start();
        while (settle.elapsed() < 3000)
            QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 100);
        for (Peer *p : m_live) {
            if (p && p->alive())
                sample(p, now());
        }
        if (!m_kills.empty())
            m_kills.back().deliveredBeforeNext = totalDelivered() - m_kills.back().deliveredAtKill;
        std::printf("   traffic stopped at %.1f s; helpers finished their last command in %.1f s (%d still busy); final "
                    "sample after 3 s more\n", endT, drainS, stillBusy);
        evaluate(endT);
        shutdown();
        QCoreApplication::exit(m_failures.isEmpty() ? 0 : 1);
    }

    void shutdown()
    {
        for (Peer *p : m_live) {
            if (p && p->alive()) {
                p->process->write("quit\n");
                p->process->closeWriteChannel();
            }
        }
        for (Peer *p : m_live) {
            if (p && p->alive() && !p->process->waitForFinished(15000)) {
                m_suspicious.append(QStringLiteral("helper %1 did not quit within 15 s; killed").arg(p->id));
                p->process->kill();
                p->process->waitForFinished(5000);
            }
            if (p && p->alive()) {
                p->endT = now();
                if (p->process->exitStatus() != QProcess::NormalExit || p->process->exitCode() != 0)
                    m_suspicious.append(QStringLiteral("helper %1 quit with status %2 code %3")
                                                .arg(p->id).arg(int(p->process->exitStatus())).arg(p->process->exitCode()));
            }
        }
    }

    void evaluate(double endT)
    {
        QJsonArray processes;
        std::printf("\nper process (RSS MiB and fds: baseline = first minute after warm-up, end = last minute)\n");
        std::printf("(fd0/fd1: all descriptors, minimum of each window; oth0/oth1: the same without region memfds, "
                    "judged <= +%d; regmax: most region memfds, judged <= %d; errs: error lines)\n",
                    FdGrowthMax, RegionFdBound);
        std::printf("%3s %4s %8s %7s %7s %7s %8s %8s %8s %6s %5s %5s %5s %5s %6s %5s %6s %10s  %s\n", "id", "slot", "pid",
                    "start", "end", "fate", "rss0", "rss1", "rssMiB/m", "limit", "fd0", "fd1", "oth0", "oth1", "regmax",
                    "anon+", "errs", "delivered", "verdict");
        int judged = 0, judgedSurvivors = 0;
        for (const auto &pp : m_peers) {
            Peer *p = pp.get();
            const double start = p->startT;
            // A helper is judged as an endpoint until it becomes the controller's host (it then
            // holds the router's buffers: a step, not a leak); the hosts are compared at the kills.
            const double roleEnd = p->controllerSinceT >= 0 ? p->controllerSinceT : 1e18;
            const double warmEnd = start + m_warmup;
            std::vector<double> rss0, rss1, anon0, anon1;
            int fd0 = INT_MAX, fd1 = INT_MAX, other0 = INT_MAX, other1 = INT_MAX, regionMax = 0;
            const Sample *first = nullptr, *last = nullptr;
            double lastT = -1;
            for (const Sample &s : p->samples) {
                if (s.t < roleEnd)
                    lastT = s.t;
            }
            for (const Sample &s : p->samples) {
                if (s.t >= roleEnd)
                    break;
                if (s.t >= warmEnd && s.t < warmEnd + 60) {
                    rss0.push_back(s.rssKiB);
                    anon0.push_back(s.anonKiB);
                    fd0 = std::min(fd0, s.fds);
                    other0 = std::min(other0, s.fds - s.regionFds);
                    if (!first)
                        first = &s;
                }
                if (s.t >= warmEnd && s.t >= lastT - 60) {
                    rss1.push_back(s.rssKiB);
                    anon1.push_back(s.anonKiB);
                    fd1 = std::min(fd1, s.fds);
                    other1 = std::min(other1, s.fds - s.regionFds);
                }
                if (s.t >= warmEnd) {
                    last = &s;
                    regionMax = std::max(regionMax, s.regionFds);
                }
            }
            const bool measurable = first && last && last->t - first->t >= m_minMeasured;
            const double base = median(rss0) / 1024, fin = median(rss1) / 1024;
            const double limit = base * RssGrowthFraction + RssGrowthSlackMiB;
            // slope of RSS over the measured window (least squares), MiB per minute
            double slope = 0;
            {
                double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
                for (const Sample &s : p->samples) {
                    if (s.t < warmEnd || s.t >= roleEnd)
                        continue;
                    const double x = s.t / 60, y = s.rssKiB / 1024.0;
                    n += 1; sx += x; sy += y; sxx += x * x; sxy += x * y;
                }
                if (n >= 3 && n * sxx - sx * sx > 1e-9)
                    slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
            }
            QString verdict = QStringLiteral("not judged (measured < %1 s%2)").arg(m_minMeasured, 0, 'f', 0)
                    .arg(p->controllerSinceT >= 0 ? QStringLiteral(" before it hosted the controller") : QString());
            bool pass = true;
            if (measurable) {
                ++judged;
                if (!p->killedByUs && !p->unexpectedExit)
                    ++judgedSurvivors;
                QStringList why;
                if (fin - base > limit)
                    why << QStringLiteral("RSS +%1 MiB > %2").arg(fin - base, 0, 'f', 1).arg(limit, 0, 'f', 1);
                if (other1 - other0 > FdGrowthMax)
                    why << QStringLiteral("non-region fds +%1 > %2").arg(other1 - other0).arg(FdGrowthMax);
                if (regionMax > RegionFdBound)
                    why << QStringLiteral("region fds up to %1 > %2").arg(regionMax).arg(RegionFdBound);
                pass = why.isEmpty();
                verdict = pass ? QStringLiteral("flat") : QStringLiteral("GROWS: ") + why.join(u", ");
                if (!pass)
                    m_failures.append(QStringLiteral("helper %1 (slot %2, pid %3): %4").arg(p->id).arg(p->slot)
                                              .arg(p->pid).arg(why.join(u", ")));
            }
            const char *fate = p->killedByUs ? "killed" : p->unexpectedExit ? "EXITED" : "alive";
            int errorLines = 0;
            for (const auto &kind : p->errorKinds)
                errorLines += kind.second;
            auto num = [measurable](int v) { return measurable ? QByteArray::number(v) : QByteArray("-"); };
            std::printf("%3d %4d %8lld %7.1f %7.1f %7s %8.1f %8.1f %8.2f %6.1f %5s %5s %5s %5s %6s %5.1f %6d %10llu  %s\n",
                        p->id, p->slot, p->pid, start, p->killedByUs || p->unexpectedExit ? p->endT : endT, fate,
                        measurable ? base : 0.0, measurable ? fin : 0.0, slope, measurable ? limit : 0.0,
                        num(fd0).constData(), num(fd1).constData(), num(other0).constData(), num(other1).constData(),
                        num(regionMax).constData(), measurable ? (median(anon1) - median(anon0)) / 1024 : 0.0,
                        errorLines, p->delivered(), qPrintable(verdict));
            QJsonObject o;
            o[u"id"] = p->id;
            o[u"slot"] = p->slot;
            o[u"pid"] = p->pid;
            o[u"start_s"] = start;
            o[u"end_s"] = p->killedByUs || p->unexpectedExit ? p->endT : endT;
            o[u"fate"] = QString::fromLatin1(fate);
            o[u"exit_code"] = p->exitCode;
            o[u"joins"] = p->joins;
            o[u"final_state"] = QString::fromLatin1(p->state);
            o[u"commands"] = double(p->commands);
            o[u"judged"] = measurable;
            o[u"controller_since_s"] = p->controllerSinceT;
            o[u"pass"] = pass;
            o[u"verdict"] = verdict;
            if (measurable) {
                o[u"rss_baseline_mib"] = base;
                o[u"rss_end_mib"] = fin;
                o[u"rss_growth_mib"] = fin - base;
                o[u"rss_limit_mib"] = limit;
                o[u"rss_slope_mib_per_min"] = slope;
                o[u"anon_growth_mib"] = (median(anon1) - median(anon0)) / 1024;
                o[u"fds_baseline"] = fd0;
                o[u"fds_end"] = fd1;
                o[u"non_region_fds_baseline"] = other0;
                o[u"non_region_fds_end"] = other1;
                o[u"region_fds_max"] = regionMax;
            }
            QJsonObject received;
            received[u"flood"] = double(p->flood);
            received[u"regions_ok"] = double(p->regionsOk);
            received[u"regions_bad"] = double(p->regionsBad);
            received[u"fds_ok"] = double(p->fdsOk);
            received[u"fds_bad"] = double(p->fdsBad);
            received[u"held_region_ok"] = double(p->regionOk);
            received[u"held_region_bad"] = double(p->regionBad);
            received[u"typed"] = double(p->received);
            received[u"registry_frames_sent"] = double(p->frames);
            received[u"registry_frames_bad"] = double(p->framesBad);
            received[u"dropped_reported"] = double(p->droppedReported);
            o[u"received"] = received;
            QJsonArray samples;
            for (const Sample &s : p->samples)
                samples.append(QJsonArray{std::round(s.t * 10) / 10, double(s.rssKiB), double(s.anonKiB), s.regionFds,
                                          double(s.shmemKiB), s.fds});
            o[u"samples_t_rssKiB_anonKiB_regionfds_shmemKiB_fds"] = samples;
            QJsonObject kinds;
            for (const auto &[line, n] : p->errorKinds)
                kinds[QString::fromUtf8(line)] = n;
            o[u"error_kinds"] = kinds;
            QJsonArray errors;
            for (const QByteArray &e : std::as_const(p->errors))
                errors.append(QString::fromUtf8(e));
            o[u"error_lines"] = errors;
            processes.append(o);
            if (p->regionsBad || p->fdsBad || p->regionBad || p->framesBad)
                m_failures.append(QStringLiteral("helper %1 saw damaged content: regions bad %2, fds bad %3, held region bad %4, "
                                                 "registry frames bad %5")
                                          .arg(p->id).arg(p->regionsBad).arg(p->fdsBad).arg(p->regionBad).arg(p->framesBad));
        }
        if (judgedSurvivors == 0)
            m_failures.append(QStringLiteral("no surviving helper lived long enough to be judged"));

        // The kills: every survivor rejoined, the replacement joined, messages flowed afterwards.
        QJsonArray kills;
        std::printf("\nkills (rejoin: slowest survivor's joined line after the kill)\n");
        for (const Kill &k : m_kills) {
            double slowest = 0;
            int missing = 0;
            for (int id : k.survivors) {
                const Peer *s = m_peers[size_t(id)].get();
                if (s->killedByUs && s->endT < k.t + RejoinWithinS)
                    continue; // itself killed before it could be judged (not with one kill a minute)
                // the first "joined" after the kill: joins are only recorded as the latest, so
                // use the helper's join history: lastJoinT after k.t means it rejoined at least once
                const double rejoin = firstJoinAfter(id, k.t);
                if (rejoin < 0 || rejoin - k.t > RejoinWithinS)
                    ++missing;
                else
                    slowest = std::max(slowest, rejoin - k.t);
            }
            const Peer *r = m_peers[size_t(k.replacementId)].get();
            const double replacementJoin = r->firstJoinT < 0 ? -1 : r->firstJoinT - k.t;
            std::printf("  %d at %6.1f s: helper %d (slot %d, pid %lld), host since %.1f s, RSS %.1f -> %.1f MiB, %d fds "
                        "(%d region memfds); %zu survivors rejoined, slowest %.2f s%s; replacement joined after %.2f s; "
                        "delivered until next kill/end: %llu\n",
                        int(&k - m_kills.data()) + 1, k.t, k.peerId, k.slot, k.pid, k.hostSinceT, k.hostRssTakeoverMiB,
                        k.hostRssKillMiB, k.hostFdsKill, k.hostRegionFdsKill, k.survivors.size() - missing, slowest,
                        missing ? qPrintable(QStringLiteral(" (%1 did NOT)").arg(missing)) : "", replacementJoin,
                        k.deliveredBeforeNext);
            if (missing)
                m_failures.append(QStringLiteral("kill at %1 s: %2 survivor(s) did not rejoin within %3 s")
                                          .arg(k.t, 0, 'f', 1).arg(missing).arg(RejoinWithinS));
            if (replacementJoin < 0 || replacementJoin > RejoinWithinS)
                m_failures.append(QStringLiteral("kill at %1 s: the replacement did not join within %2 s")
                                          .arg(k.t, 0, 'f', 1).arg(RejoinWithinS));
            if (k.deliveredBeforeNext == 0)
                m_failures.append(QStringLiteral("kill at %1 s: no message delivered afterwards").arg(k.t, 0, 'f', 1));
            QJsonObject o;
            o[u"t_s"] = k.t;
            o[u"slot"] = k.slot;
            o[u"pid"] = k.pid;
            o[u"helper"] = k.peerId;
            o[u"replacement"] = k.replacementId;
            o[u"survivors"] = int(k.survivors.size());
            o[u"survivors_not_rejoined"] = missing;
            o[u"slowest_rejoin_s"] = slowest;
            o[u"replacement_join_s"] = replacementJoin;
            o[u"delivered_until_next"] = double(k.deliveredBeforeNext);
            o[u"host_since_s"] = k.hostSinceT;
            o[u"host_rss_takeover_mib"] = k.hostRssTakeoverMiB;
            o[u"host_rss_at_kill_mib"] = k.hostRssKillMiB;
            o[u"host_fds_at_kill"] = k.hostFdsKill;
            o[u"host_region_fds_at_kill"] = k.hostRegionFdsKill;
            kills.append(o);
        }
        // The controller's hosts, one per minute: does the router's state grow over the run? The
        // RSS of the host at its kill, the first three kills after warm-up against the last three.
        {
            std::vector<const Kill *> hosts;
            for (const Kill &k : m_kills) {
                if (k.t >= m_warmup)
                    hosts.push_back(&k);
            }
            if (hosts.size() >= 6) {
                std::vector<double> a, b, fa, fb;
                for (size_t i = 0; i < 3; ++i) {
                    a.push_back(hosts[i]->hostRssKillMiB);
                    fa.push_back(hosts[i]->hostFdsKill - hosts[i]->hostRegionFdsKill);
                    b.push_back(hosts[hosts.size() - 1 - i]->hostRssKillMiB);
                    fb.push_back(hosts[hosts.size() - 1 - i]->hostFdsKill - hosts[hosts.size() - 1 - i]->hostRegionFdsKill);
                }
                const double base = median(a), fin = median(b), limit = base * RssGrowthFraction + RssGrowthSlackMiB;
                const double fdGrowth = median(fb) - median(fa);
                const bool ok = fin - base <= limit && fdGrowth <= FdGrowthMax;
                std::printf("controller hosts at their kill, median of the first 3 after warm-up -> last 3: RSS %.1f -> "
                            "%.1f MiB (limit +%.1f), descriptors other than region memfds %.0f -> %.0f (limit +%d): %s\n",
                            base, fin, limit, median(fa), median(fb), FdGrowthMax, ok ? "flat" : "GROWS");
                if (!ok)
                    m_failures.append(QStringLiteral("the controller's hosts grow from kill to kill: RSS %1 -> %2 MiB, "
                                                     "non-region fds %3 -> %4").arg(base, 0, 'f', 1).arg(fin, 0, 'f', 1)
                                              .arg(median(fa)).arg(median(fb)));
            } else {
                std::printf("controller hosts: fewer than 6 kills after warm-up, not compared\n");
            }
        }
        // Every survivor is joined at the end.
        for (Peer *p : m_live) {
            if (p && p->alive() && p->state != "JoinedState")
                m_failures.append(QStringLiteral("helper %1 is in %2 at the end").arg(p->id).arg(QString::fromLatin1(p->state)));
        }
        for (const MinuteRow &row : m_rows) {
            if (row.delivered == 0)
                m_failures.append(QStringLiteral("minute %1: no message delivered").arg(row.minute));
        }

        QJsonArray minutes;
        for (const MinuteRow &row : m_rows) {
            QJsonObject o;
            o[u"minute"] = row.minute;
            o[u"kills"] = row.kills;
            o[u"delivered"] = double(row.delivered);
            QJsonArray cells;
            for (const QByteArray &c : row.cells)
                cells.append(QString::fromLatin1(c));
            o[u"slots_id_rssMiB_fds"] = cells;
            minutes.append(o);
        }
        const bool pass = m_failures.isEmpty();
        QJsonObject root;
        root[u"bus"] = m_bus;
        root[u"date"] = QDateTime::currentDateTime().toString(Qt::ISODate);
        root[u"duration_s"] = m_duration;
        root[u"kill_interval_s"] = m_killInterval;
        root[u"sample_interval_s"] = m_sampleInterval;
        root[u"warmup_s"] = m_warmup;
        root[u"min_measured_s"] = m_minMeasured;
        root[u"thresholds"] = QJsonObject{{QStringLiteral("rss_growth_fraction"), RssGrowthFraction},
                                          {QStringLiteral("rss_growth_slack_mib"), RssGrowthSlackMiB},
                                          {QStringLiteral("fd_growth_max"), FdGrowthMax},
                                          {QStringLiteral("region_fd_bound"), RegionFdBound},
                                          {QStringLiteral("rejoin_within_s"), RejoinWithinS},
                                          {QStringLiteral("stall_s"), StallS}};
        root[u"kills"] = kills;
        root[u"minutes"] = minutes;
        root[u"processes"] = processes;
        root[u"delivered_total"] = double(totalDelivered());
        root[u"error_lines"] = m_errorLines;
        root[u"failures"] = QJsonArray::fromStringList(m_failures);
        root[u"suspicious"] = QJsonArray::fromStringList(m_suspicious);
        root[u"pass"] = pass;
        std::printf("\nerror lines printed by helpers: %d; judged processes: %d (%d alive at the end)\n", m_errorLines,
                    judged, judgedSurvivors);
        QJsonObject errorKinds;
        for (const auto &[line, n] : m_errorKinds) {
            std::printf("  %6d x %s\n", n, line.constData());
            errorKinds[QString::fromUtf8(line)] = n;
        }
        root[QStringLiteral("error_kinds")] = errorKinds;
        QDir().mkpath(QFileInfo(m_output).absolutePath());
        QFile out(m_output);
        if (out.open(QIODevice::WriteOnly | QIODevice::Truncate))
            out.write(QJsonDocument(root).toJson());
        else
            std::printf("cannot write %s\n", qPrintable(m_output));
        for (const QString &s : std::as_const(m_suspicious))
            std::printf("suspicious: %s\n", qPrintable(s));
        for (const QString &f : std::as_const(m_failures))
            std::printf("FAILURE: %s\n", qPrintable(f));
        std::printf("results: %s\n", qPrintable(m_output));
        std::printf("SOAK %s: %.1f min, %d kills, %llu messages delivered, %d processes judged; RSS growth <= %.0f %% + %.0f MiB, "
                    "non-region fds growth <= %d, region fds <= %d\n",
                    pass ? "PASS" : "FAIL", m_duration / 60, int(m_kills.size()), totalDelivered(), judged,
                    RssGrowthFraction * 100, RssGrowthSlackMiB, FdGrowthMax, RegionFdBound);
        std::fflush(stdout);
    }

    double firstJoinAfter(int id, double t) const
    {
        const auto it = m_joinTimes.find(id);
        if (it == m_joinTimes.end())
            return -1;
        for (double j : it->second) {
            if (j > t)
                return j;
        }
        return -1;
    }

private:
    double m_duration;
    double m_killInterval;
    double m_sampleInterval;
    double m_warmup = 0;
    double m_minMeasured = 0;
    QString m_output;
    QString m_logDir;
    QString m_bus;
    QElapsedTimer m_clock;
    QTimer m_tick;
    std::vector<std::unique_ptr<Peer>> m_peers;
    Peer *m_live[Slots] = {};
    std::map<int, std::vector<double>> m_joinTimes;
    std::vector<Kill> m_kills;
    std::vector<MinuteRow> m_rows;
    int m_killsDone = 0;
    double m_nextSample = 0;
    quint64 m_deliveredAtLastRow = 0;
    bool m_stopping = false;
    bool m_splitReported = false;
    bool m_noControllerReported = false;
    int m_errorLines = 0;
    std::map<QByteArray, int> m_errorKinds;
    QStringList m_failures;
    QStringList m_suspicious;
};

} // namespace

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("IpmbQt soak run: 6 processes, mixed traffic, a controller kill "
                                                    "every minute, RSS and descriptors sampled."));
    parser.addHelpOption();
    parser.addOptions({
            {QStringLiteral("minutes"), QStringLiteral("Length of the run (default 10)."), QStringLiteral("m"), QStringLiteral("10")},
            {QStringLiteral("kill-interval"), QStringLiteral("Seconds between controller kills (default 60)."),
             QStringLiteral("s"), QStringLiteral("60")},
            {QStringLiteral("sample-interval"), QStringLiteral("Seconds between samples (default 5)."), QStringLiteral("s"),
             QStringLiteral("5")},
            {QStringLiteral("output"), QStringLiteral("JSON results."), QStringLiteral("file"), QStringLiteral(IPMBQT_SOAK_OUTPUT)},
    });
    parser.process(app);
    bool ok1 = false, ok2 = false, ok3 = false;
    const double minutes = parser.value(QStringLiteral("minutes")).toDouble(&ok1);
    const double killInterval = parser.value(QStringLiteral("kill-interval")).toDouble(&ok2);
    const double sampleInterval = parser.value(QStringLiteral("sample-interval")).toDouble(&ok3);
    if (!ok1 || !ok2 || !ok3 || minutes <= 0 || killInterval < 5 || sampleInterval < 0.5) {
        std::fprintf(stderr, "bad --minutes, --kill-interval or --sample-interval\n");
        return 2;
    }
    const QString output = parser.value(QStringLiteral("output"));
    Soak soak(minutes, killInterval, sampleInterval, output, QFileInfo(output).absolutePath() + QStringLiteral("/logs"));
    QTimer::singleShot(0, &soak, [&soak] { soak.start(); });
    return app.exec();
}
