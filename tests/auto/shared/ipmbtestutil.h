// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBTESTUTIL_H
#define IPMBTESTUTIL_H

#include <QtCore/qbytearray.h>
#include <QtCore/qprocess.h>
#include <QtCore/qstring.h>
#include <QtCore/quuid.h>
#include <QtTest/qtest.h>

#include <signal.h>

namespace IpmbTest {

// A helper process of a test, driven through stdin. Its stderr goes to the test's, and one that
// a failed check leaves running (or stopped: it gets SIGCONT first) is killed when this goes.
class ChildProcess : public QProcess
{
public:
    ChildProcess() { setProcessChannelMode(QProcess::ForwardedErrorChannel); }
    ~ChildProcess() override
    {
        if (state() != QProcess::NotRunning) {
            ::kill(pid_t(processId()), SIGCONT);
            QProcess::kill();
            waitForFinished(5000);
        }
    }
    void command(const QByteArray &line) { write(line + '\n'); }
    // "quit" on stdin, then end of input; true once it exited with 0 within `msecs`.
    bool quit(int msecs)
    {
        command("quit");
        closeWriteChannel();
        return waitForFinished(msecs) && exitStatus() == QProcess::NormalExit && exitCode() == 0;
    }
};

// Every test gets a bus of its own, so that runs in parallel never meet.
inline QString uniqueBusName()
{
    return QStringLiteral("ipmbqt.test.") + QUuid::createUuid().toString(QUuid::WithoutBraces);
}

// Collects a process's stdout and finds lines in it; the driver waits on these, never on sleeps.
class PeerOutput
{
public:
    explicit PeerOutput(QProcess *process) : m_process(process) { }

    // Waits until a line starting with `prefix` appears after the last consumed one; returns it
    // (without the newline) and consumes everything up to it. Empty on timeout.
    QByteArray waitForLine(const QByteArray &prefix, int msecs = 15000)
    {
        QByteArray found;
        (void)QTest::qWaitFor([&] {
            readOutput();
            qsizetype from = 0;
            for (;;) {
                const qsizetype end = m_buffer.indexOf('\n', from);
                if (end < 0)
                    return false;
                const QByteArray line = m_buffer.mid(from, end - from);
                from = end + 1;
                if (line.startsWith(prefix)) {
                    found = line;
                    m_buffer.remove(0, from);
                    return true;
                }
            }
        }, msecs);
        if (found.isEmpty())
            qWarning("no line starting with \"%s\" within %d ms; the peer's output since: %s",
                     prefix.constData(), msecs, m_buffer.constData());
        return found;
    }

    // Whether a line starting with `prefix` has been printed (and not yet consumed), without waiting.
    bool hasLine(const QByteArray &prefix)
    {
        readOutput();
        return m_buffer.startsWith(prefix) || m_buffer.contains('\n' + prefix);
    }

    // Every complete line starting with `prefix` that the process has printed so far, consumed or
    // not, without waiting: for counting events.
    QByteArrayList printed(const QByteArray &prefix)
    {
        readOutput();
        QByteArrayList lines;
        for (const QByteArray &line : m_log.split('\n')) {
            if (line.startsWith(prefix))
                lines.append(line);
        }
        if (!m_log.endsWith('\n') && !lines.isEmpty() && m_log.endsWith(lines.last()))
            lines.removeLast();  // not complete yet
        return lines;
    }

private:
    void readOutput()
    {
        const QByteArray bytes = m_process->readAllStandardOutput();
        m_buffer += bytes;
        m_log += bytes;
    }

    QProcess *m_process;
    QByteArray m_buffer;
    QByteArray m_log;   // everything it printed
};

inline QByteArray field(const QByteArray &line, const QByteArray &key)
{
    for (const QByteArray &part : line.split(' ')) {
        if (part.startsWith(key + '='))
            return part.mid(key.size() + 1);
    }
    return {};
}

} // namespace IpmbTest

#endif // IPMBTESTUTIL_H
