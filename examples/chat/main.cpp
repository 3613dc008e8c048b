// SPDX-License-Identifier: BSD-3-Clause
// A Qt Quick chat over IpmbQt: start it three times and the windows talk to each other. All the
// bus code is in Main.qml (`import IpmbQt`); this file reads the command line and loads it.
#include <QtCore/QCommandLineParser>
#include <QtCore/QSocketNotifier>
#include <QtGui/QGuiApplication>
#include <QtGui/QImage>
#include <QtQml/QQmlApplicationEngine>
#include <QtQuick/QQuickWindow>

#include <cstdio>
#include <fcntl.h>
#include <unistd.h>

using namespace Qt::StringLiterals;

// Automation hooks for the headless test (tests/auto/chat), not needed by a chat. Commands come
// one a line on stdin: `say <text>` sends a line as if typed, `grab <file.png>` saves the window
// and prints `grabbed <file>`, `quit` exits. Events go to stdout: `joined pid=<pid>`,
// `line <count> pid=<pid> label=<names,...> text=<text>` and `online <count> names=<a,b>`. Off
// when stdin is a terminal or closed.
class Automation : public QObject
{
    Q_OBJECT

public:
    explicit Automation(QQuickWindow *window) : QObject(window), m_window(window)
    {
        connect(window, SIGNAL(busJoined()), this, SLOT(joined()));
        connect(window, SIGNAL(lineAdded(int,int,QString,QString)),
                this, SLOT(lineAdded(int,int,QString,QString)));
        connect(window, SIGNAL(onlineChanged(int,QString)), this, SLOT(onlineChanged(int,QString)));
        auto *notifier = new QSocketNotifier(STDIN_FILENO, QSocketNotifier::Read, this);
        connect(notifier, &QSocketNotifier::activated, this, [this, notifier] {
            char buffer[4096];
            const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
            if (n <= 0) // closed: no more commands
                notifier->setEnabled(false);
            m_input.append(buffer, qMax<ssize_t>(n, 0));
            for (qsizetype end; (end = m_input.indexOf('\n')) >= 0; m_input.remove(0, end + 1))
                run(QString::fromUtf8(m_input.first(end)));
        });
    }

private Q_SLOTS:
    void joined() { print(u"joined pid=%1"_s.arg(QCoreApplication::applicationPid())); }
    void lineAdded(int count, int pid, const QString &label, const QString &text)
    {
        print(u"line %1 pid=%2 label=%3 text=%4"_s.arg(count).arg(pid).arg(label, text));
    }
    void onlineChanged(int count, const QString &names) { print(u"online %1 names=%2"_s.arg(count).arg(names)); }

private:
    void run(const QString &command)
    {
        if (command.startsWith("say "_L1)) {
            bool said = false;
            QMetaObject::invokeMethod(m_window, "say", Q_RETURN_ARG(bool, said), Q_ARG(QString, command.mid(4)));
            if (!said)
                print(u"say failed: "_s + m_window->property("statusText").toString());
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
    QByteArray m_input;
};

int main(int argc, char *argv[])
{
    QGuiApplication app(argc, argv);
    const qint64 pid = QCoreApplication::applicationPid();

    QCommandLineParser parser;
    parser.setApplicationDescription(u"A chat whose windows talk over an IpmbQt bus."_s);
    parser.addHelpOption();
    parser.addOption({u"bus"_s, u"The bus to join (default: com.example.chat)."_s, u"ID"_s,
                      u"com.example.chat"_s});
    parser.addOption({u"name"_s, u"Your name in the chat (default: user-<pid>)."_s, u"NAME"_s,
                      u"user-%1"_s.arg(pid)});
    parser.process(app);

    QQmlApplicationEngine engine;
#ifdef CHAT_IPMBQT_IMPORT_DIR
    engine.addImportPath(QStringLiteral(CHAT_IPMBQT_IMPORT_DIR)); // built inside the IpmbQt tree
#endif
    engine.setInitialProperties({{u"busIdentifier"_s, parser.value(u"bus"_s)},
                                 {u"userName"_s, parser.value(u"name"_s)},
                                 {u"pid"_s, int(pid)}});
    // Where qt_add_qml_module(URI Chat) puts Main.qml in Qt 6.4 (engine.loadFromModule is 6.5).
    engine.load(QUrl(u"qrc:/Chat/Main.qml"_s));
    const QList<QObject *> roots = engine.rootObjects();
    auto *window = roots.isEmpty() ? nullptr : qobject_cast<QQuickWindow *>(roots.constFirst());
    if (!window)
        return 1;
    if (::fcntl(STDIN_FILENO, F_GETFD) != -1 && !::isatty(STDIN_FILENO))
        new Automation(window);
    return app.exec();
}

#include "main.moc"
