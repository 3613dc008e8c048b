// SPDX-License-Identifier: BSD-3-Clause
// The front end of the worker-pool example: a window that starts N worker processes and fans
// jobs out to them with request/reply. The bus code is in Main.qml; this file starts the workers
// (Workers) and reads the command line.
#include <QtCore/QCommandLineParser>
#include <QtCore/QDir>
#include <QtCore/QProcess>
#include <QtCore/QSocketNotifier>
#include <QtGui/QGuiApplication>
#include <QtGui/QImage>
#include <QtQml/QQmlApplicationEngine>
#include <QtQuick/QQuickWindow>

#include <cstdio>
#include <fcntl.h>
#include <memory>
#include <unistd.h>
#include <vector>

using namespace Qt::StringLiterals;

// The worker processes (worker-pool-worker, beside this program), for the window's buttons.
class Workers : public QObject
{
    Q_OBJECT

public:
    explicit Workers(QString bus, QObject *parent = nullptr) : QObject(parent), m_bus(std::move(bus)) { }
    ~Workers() override
    {
        for (const auto &process : m_processes) {
            process->terminate();
            if (!process->waitForFinished(3000))
                process->kill();
        }
    }

    // Starts `count` more workers.
    Q_INVOKABLE void start(int count)
    {
        for (int i = 0; i < count; ++i) {
            auto process = std::make_unique<QProcess>();
            process->setProcessChannelMode(QProcess::ForwardedChannels);
            process->start(QDir(QCoreApplication::applicationDirPath()).filePath(u"worker-pool-worker"_s),
                           {u"--bus"_s, m_bus});
            m_processes.push_back(std::move(process));
        }
    }
    // Kills the worker whose process id is `pid` (SIGKILL: it gets no chance to reply), as a crash
    // would; false if it is not one of ours.
    Q_INVOKABLE bool kill(qint64 pid)
    {
        for (const auto &process : m_processes) {
            if (process->processId() == pid) {
                process->kill();
                return true;
            }
        }
        return false;
    }

private:
    QString m_bus;
    std::vector<std::unique_ptr<QProcess>> m_processes;
};

// Automation hooks for the headless test (tests/auto/workerpool), not needed by the example.
// Commands on stdin: `run <count>`, `kill <worker pid>`, `grab <file.png>`, `quit`. Events on
// stdout: `workers <count> pids=<pid,...>`, `settled <job> ok=<0|1> worker=<pid> text=<text>`,
// `grabbed <file>`. Off when stdin is a terminal or closed.
class Automation : public QObject
{
    Q_OBJECT

public:
    Automation(QQuickWindow *window, Workers *workers) : QObject(window), m_window(window), m_workers(workers)
    {
        connect(window, SIGNAL(poolChanged(int,QString)), this, SLOT(poolChanged(int,QString)));
        connect(window, SIGNAL(jobSettled(int,bool,int,QString)), this, SLOT(jobSettled(int,bool,int,QString)));
        auto *notifier = new QSocketNotifier(STDIN_FILENO, QSocketNotifier::Read, this);
        connect(notifier, &QSocketNotifier::activated, this, [this, notifier] {
            char buffer[4096];
            const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
            if (n <= 0)
                notifier->setEnabled(false);
            m_input.append(buffer, qMax<ssize_t>(n, 0));
            for (qsizetype end; (end = m_input.indexOf('\n')) >= 0; m_input.remove(0, end + 1))
                run(QString::fromUtf8(m_input.first(end)));
        });
    }

private Q_SLOTS:
    void poolChanged(int count, const QString &pids) { print(u"workers %1 pids=%2"_s.arg(count).arg(pids)); }
    void jobSettled(int job, bool ok, int worker, const QString &text)
    {
        print(u"settled %1 ok=%2 worker=%3 text=%4"_s.arg(job).arg(int(ok)).arg(worker).arg(text));
    }

private:
    void run(const QString &command)
    {
        if (command.startsWith("run "_L1)) {
            QMetaObject::invokeMethod(m_window, "runJobs", Q_ARG(int, command.mid(4).toInt()));
        } else if (command.startsWith("kill "_L1)) {
            m_workers->kill(command.mid(5).toLongLong());
        } else if (command.startsWith("grab "_L1)) {
            const QString file = command.mid(5);
            print((m_window->grabWindow().save(file) ? "grabbed "_L1 : "grab failed "_L1) + file);
        } else if (command == "quit"_L1) {
            QCoreApplication::quit();
        }
    }
    static void print(const QString &line)
    {
        std::printf("%s\n", qPrintable(line));
        std::fflush(stdout);
    }

    QQuickWindow *m_window;
    Workers *m_workers;
    QByteArray m_input;
};

int main(int argc, char *argv[])
{
    QGuiApplication app(argc, argv);
    QCommandLineParser parser;
    parser.setApplicationDescription(u"Fans jobs out to worker processes over an IpmbQt bus."_s);
    parser.addHelpOption();
    parser.addOption({u"bus"_s, u"The bus (default: com.example.workerpool)."_s, u"ID"_s,
                      u"com.example.workerpool"_s});
    parser.addOption({u"workers"_s, u"How many workers to start (default: 3)."_s, u"N"_s, u"3"_s});
    parser.process(app);

    Workers workers(parser.value(u"bus"_s));
    QQmlApplicationEngine engine;
#ifdef WORKER_POOL_IPMBQT_IMPORT_DIR
    engine.addImportPath(QStringLiteral(WORKER_POOL_IPMBQT_IMPORT_DIR)); // built inside the IpmbQt tree
#endif
    engine.setInitialProperties({{u"busIdentifier"_s, parser.value(u"bus"_s)},
                                 {u"workers"_s, QVariant::fromValue(&workers)}});
    engine.load(QUrl(u"qrc:/WorkerPool/frontend/Main.qml"_s));
    const QList<QObject *> roots = engine.rootObjects();
    auto *window = roots.isEmpty() ? nullptr : qobject_cast<QQuickWindow *>(roots.constFirst());
    if (!window)
        return 1;
    if (::fcntl(STDIN_FILENO, F_GETFD) != -1 && !::isatty(STDIN_FILENO))
        new Automation(window, &workers);
    // The window's endpoint joins first (so that it hosts the bus), then the workers.
    workers.start(parser.value(u"workers"_s).toInt());
    return app.exec();
}

#include "main.moc"
