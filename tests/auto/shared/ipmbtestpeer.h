// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBTESTPEER_H
#define IPMBTESTPEER_H

// The multi-process fixture: a helper process (ipmbqt_test_peer, see multiprocess/peer/main.cpp
// for its commands and output lines) driven through stdin/stdout, the bus the helpers of one test
// join, and (ipmbtestraw.h) a raw connection for frames written by hand. A test target that
// includes this defines IPMBQT_PEER (the helper's path).

#include "ipmbtestraw.h"
#include "ipmbtestutil.h"

#include <QtCore/qfile.h>
#include <QtCore/qfileinfo.h>
#include <QtCore/qprocess.h>
#include <QtCore/qstandardpaths.h>
#include <QtCore/qtemporarydir.h>

#include <initializer_list>

#include <signal.h>
#include <unistd.h>

namespace IpmbTest {

class Peer
{
public:
    // A peer runs the helper `program` (by default the multi-process one, IPMBQT_PEER), which
    // takes --bus and --label, and prints "joined ... id=<id>" once joined.
    explicit Peer(const QString &program = QStringLiteral(IPMBQT_PEER)) : m_output(&m_process), m_program(program) { }

    void start(const QStringList &arguments, const QString &program = QString(),
               const QProcessEnvironment &environment = QProcessEnvironment::systemEnvironment())
    {
        m_process.setProcessEnvironment(environment);
        m_process.start(program.isEmpty() ? m_program : program, arguments);
    }
    // Starts a peer on `bus` and waits until it has joined.
    bool join(const QString &bus, const QString &label, const QStringList &extra = {},
              const QProcessEnvironment &environment = QProcessEnvironment::systemEnvironment())
    {
        start(QStringList{QStringLiteral("--bus"), bus, QStringLiteral("--label"), label} + extra,
              m_program, environment);
        const QByteArray line = waitFor("joined");
        m_isController = field(line, "controller") == "1";
        m_id = field(line, "id").toUInt();
        return !line.isEmpty();
    }
    // Keeps the peer's stderr (its warnings) for errorOutput() instead of forwarding it; call before start().
    void captureErrors() { m_process.setProcessChannelMode(QProcess::SeparateChannels); }
    QByteArray errorOutput() { return m_errors += m_process.readAllStandardError(); }
    QByteArray waitFor(const QByteArray &prefix, int msecs = 20000) { return m_output.waitForLine(prefix, msecs); }
    bool hasPrinted(const QByteArray &prefix) { return m_output.hasLine(prefix); }
    // Every line starting with `prefix` printed so far (see PeerOutput::printed()).
    QByteArrayList printed(const QByteArray &prefix) { return m_output.printed(prefix); }
    void command(const QByteArray &line) { m_process.command(line); }
    // Asks for the counters; returns the "count ..." line.
    QByteArray counts()
    {
        command("count");
        return waitFor("count");
    }
    qint64 pid() const { return m_process.processId(); }
    bool isController() const { return m_isController; }
    // Its endpoint id, from the "joined" line of join().
    quint32 id() const { return m_id; }
    void signal(int sig) { ::kill(pid_t(m_process.processId()), sig); }
    void kill() { m_process.kill(); m_process.waitForFinished(5000); }
    bool quit() { return m_process.quit(15000); }

private:
    ChildProcess m_process;
    PeerOutput m_output;
    QByteArray m_errors;
    bool m_isController = false;
    quint32 m_id = 0;
    QString m_program;
};

inline quint64 countField(const QByteArray &line, const QByteArray &key)
{
    return field(line, key).toULongLong();
}

// The bus of one test: a name of its own (runs in parallel never meet) and the peers that join it.
//
//     Bus bus;
//     Peer controller, receiver, sender;
//     QVERIFY(bus.join({{controller, "ctl"}, {receiver, "receiver"}, {sender, "sender"}}));
class Bus
{
public:
    // A peer to join: its label, the helper's extra options, and its environment.
    struct Member
    {
        Peer &peer;
        const char *label;
        QStringList options = {};
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
    };

    const QString name = uniqueBusName();

    // Starts each peer with its label, in order (so the first hosts the controller), and waits
    // until it has joined; false at the first that did not (its output is in the log).
    bool join(std::initializer_list<Member> members) const
    {
        for (const Member &member : members) {
            if (!member.peer.join(name, QString::fromUtf8(member.label), member.options, member.environment))
                return false;
        }
        return true;
    }
    bool join(Peer &peer, const QString &label, const QStringList &options = {}) const
    {
        return peer.join(name, label, options);
    }
};

#ifdef IPMBQT_LIBRARY
// Runs helper processes as uid/gid 65534 (nobody), for the cross-user tests; needs root. The build
// tree may not be reachable by that uid, so the helper and the library are copied to a directory
// it can read.
class OtherUser
{
public:
    static constexpr qint64 Uid = 65534;

    OtherUser()
    {
        m_setpriv = QStandardPaths::findExecutable(QStringLiteral("setpriv"));
        if (!m_dir.isValid() || m_setpriv.isEmpty())
            return;
        QFile::setPermissions(m_dir.path(), QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner
                                                    | QFile::ReadOther | QFile::ExeOther | QFile::ReadGroup
                                                    | QFile::ExeGroup);
        m_peer = m_dir.filePath(QStringLiteral("peer"));
        const QString library = QStringLiteral(IPMBQT_LIBRARY);
        m_valid = QFile::copy(QStringLiteral(IPMBQT_PEER), m_peer)
                && QFile::copy(library, m_dir.filePath(QFileInfo(library).fileName()));
        // The soname link: the loader looks for libIpmbQt.so.<major>.
        QFile::link(QFileInfo(library).fileName(), m_dir.filePath(QStringLiteral("libIpmbQt.so.0")));
    }
    // False without setpriv (util-linux) or a temporary directory.
    bool isValid() const { return m_valid; }

    void start(Peer &peer, const QStringList &arguments, QProcessEnvironment env = QProcessEnvironment::systemEnvironment())
    {
        env.insert(QStringLiteral("LD_LIBRARY_PATH"), m_dir.path());
        env.insert(QStringLiteral("HOME"), m_dir.path());
        env.remove(QStringLiteral("XDG_RUNTIME_DIR"));  // ours: that user's bus directory is elsewhere
        peer.start(QStringList{QStringLiteral("--reuid=65534"), QStringLiteral("--regid=65534"),
                               QStringLiteral("--clear-groups"), m_peer} + arguments, m_setpriv, env);
    }

private:
    QTemporaryDir m_dir;
    QString m_setpriv;
    QString m_peer;
    bool m_valid = false;
};
#endif

} // namespace IpmbTest

#endif // IPMBTESTPEER_H
