// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt-inspector: a window onto a bus (doc/tools.md, "The inspector"). It joins as a monitor
// (doc/protocol.md, "Monitors"), so it changes nothing on the bus it shows. The bus side is
// BusInspector; the window is Main.qml; this file reads the command line and, for the headless
// test (tests/auto/inspector), takes commands on stdin.
#include "businspector.h"

#include <QtCore/qcommandlineparser.h>
#include <QtCore/qset.h>
#include <QtCore/qsocketnotifier.h>
#include <QtGui/qguiapplication.h>
#include <QtGui/qimage.h>
#include <QtQml/qqmlapplicationengine.h>
#include <QtQuick/qquickitem.h>
#include <QtQuick/qquickwindow.h>
#include <QtQuickControls2/qquickstyle.h>

#include <cstdio>
#include <fcntl.h>
#include <unistd.h>

using namespace Qt::StringLiterals;

namespace {

void print(const QString &line)
{
    std::printf("%s\n", qPrintable(line));
    std::fflush(stdout);
}

// A label in a one-word list: its names joined by '+' (and "(2 endpoints)" as "(2_endpoints)").
QString labelWord(const QString &commaSeparated)
{
    return QString(commaSeparated).replace(u',', u'+').replace(u' ', u'_');
}

// Automation hooks for the headless test, not needed by a user; off when stdin is a terminal or
// closed. Commands, one a line: `grab FILE` saves the window as a PNG and prints `grabbed FILE`;
// `state` prints what the window shows (one `state key=value ...` line); `pause 0|1`, `filter
// [OP]` and `select ROW` do what the Pause button, the filter field and a click on a row do, and
// print `paused 0|1`, `filter ok` or `filter error <why>`, and `selected ...`; `quit` exits.
// Events: `joined bus=<id>` once joined, `error <why>` when it could not join.
class Automation : public QObject
{
public:
    Automation(BusInspector *inspector, QQuickWindow *window)
        : QObject(window), m_inspector(inspector), m_window(window)
    {
        connect(inspector, &BusInspector::joined, this, [this] { print(u"joined bus="_s + m_inspector->bus()); });
        connect(inspector, &BusInspector::joinFailed, this, [](const QString &why) { print(u"error "_s + why); });
        auto *notifier = new QSocketNotifier(STDIN_FILENO, QSocketNotifier::Read, this);
        connect(notifier, &QSocketNotifier::activated, this, [this, notifier] {
            char buffer[4096];
            const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
            if (n <= 0)  // closed: no more commands
                notifier->setEnabled(false);
            m_input.append(buffer, qMax<ssize_t>(n, 0));
            for (qsizetype end; (end = m_input.indexOf('\n')) >= 0; m_input.remove(0, end + 1))
                run(QString::fromUtf8(m_input.first(end)));
        });
    }

private:
    void run(const QString &command)
    {
        const QString verb = command.section(u' ', 0, 0);
        const QString argument = command.section(u' ', 1);
        if (verb == "grab"_L1) {
            print((m_window->grabWindow().save(argument) ? "grabbed "_L1 : "grab failed "_L1) + argument);
        } else if (verb == "state"_L1) {
            print(state());
        } else if (verb == "pause"_L1) {
            m_inspector->setPaused(argument == "1"_L1);
            print(u"paused %1"_s.arg(m_inspector->isPaused() ? 1 : 0));
        } else if (verb == "filter"_L1) {
            m_inspector->setFilterText(argument);
            print(m_inspector->filterError().isEmpty() ? u"filter ok"_s : u"filter error "_s + m_inspector->filterError());
        } else if (verb == "select"_L1) {
            QVariant shown;
            QMetaObject::invokeMethod(m_window, "selectRow", Q_RETURN_ARG(QVariant, shown),
                                      Q_ARG(int, argument.toInt()));
            const QVariantMap details = shown.toMap();
            print(u"selected seq=%1 type=%2 lines=%3"_s.arg(details.value(u"sequence"_s).toString(),
                                                            details.value(u"type"_s).toString())
                          .arg(details.value(u"payload"_s).toString().count(u'\n') + 1));
        } else if (verb == "quit"_L1) {
            QCoreApplication::quit();
        }
    }

    static QQuickItem *findItem(QQuickItem *item, QLatin1StringView name)
    {
        if (item->objectName() == name)
            return item;
        const QList<QQuickItem *> children = item->childItems();
        for (QQuickItem *child : children) {
            if (QQuickItem *found = findItem(child, name))
                return found;
        }
        return nullptr;
    }

    // Where an item of Main.qml (by objectName) is in the window: x,y,w,h.
    QString rectOf(const char *name) const
    {
        const QQuickItem *item = findItem(m_window->contentItem(), QLatin1StringView(name));
        if (!item || !item->isVisible())
            return u"none"_s;
        const QRect r = item->mapRectToScene(QRectF(0, 0, item->width(), item->height())).toAlignedRect();
        return u"%1,%2,%3,%4"_s.arg(r.x()).arg(r.y()).arg(r.width()).arg(r.height());
    }

    QString state() const
    {
        const PeerListModel *peers = m_inspector->peers();
        QStringList labels;
        for (int row = 0; row < peers->rowCount(); ++row)
            labels.append(labelWord(peers->data(peers->index(row), PeerListModel::LabelRole).toString()));
        QStringList rates;
        for (int row = 0; row < peers->rowCount(); ++row)
            rates.append(QString::number(peers->data(peers->index(row), PeerListModel::RateRole).toDouble(), 'f', 1));
        const MessageListModel *messages = m_inspector->messages();
        QSet<QString> senderSet, receiverSet;
        for (int row = 0; row < messages->rowCount(); ++row) {
            const QModelIndex index = messages->index(row);
            senderSet.insert(labelWord(messages->data(index, MessageListModel::SenderRole).toString()));
            receiverSet.insert(labelWord(messages->data(index, MessageListModel::ReceiverRole).toString()));
        }
        QStringList senders(senderSet.cbegin(), senderSet.cend()), receivers(receiverSet.cbegin(), receiverSet.cend());
        senders.sort();
        receivers.sort();
        QStringList series;
        for (const QVariant &line : m_inspector->chartSeries())
            series.append(labelWord(line.toMap().value(u"label"_s).toString()));
        const ObservedMessage *top = messages->at(0);
        return u"state joined=%1 peers=%2 labels=%3 rates=%4 rows=%5 topseq=%6 toptype=%7 seen=%8 paused=%9"_s
                       .arg(m_inspector->isJoined() ? 1 : 0).arg(peers->rowCount())
                       .arg(labels.join(u','), rates.join(u','))
                       .arg(messages->rowCount()).arg(top ? top->sequence : 0)
                       .arg(top ? ObservedText::type(*top) : u"none"_s)
                       .arg(m_inspector->copiesSeen()).arg(m_inspector->isPaused() ? 1 : 0)
                + u" whilepaused=%1 dropped=%2 series=%3 chartrev=%4 ticks=%8 filter=%5 filtererror=%6 senders=%7"_s
                          .arg(m_inspector->copiesWhilePaused()).arg(m_inspector->copiesDropped())
                          .arg(series.join(u','))
                          .arg(m_inspector->chartRevision())
                          .arg(QString(m_inspector->filterText()).remove(u' '))
                          .arg(m_inspector->filterError().isEmpty() ? 0 : 1)
                          .arg(senders.join(u','))
                          .arg(m_inspector->ticks())
                + u" receivers=%1 title=%2 peersrect=%3 tablerect=%4 chartrect=%5 detailrect=%6 errorrect=%7"_s
                          .arg(receivers.join(u','), QString(m_window->title()).replace(u' ', u'_'),
                               rectOf("peerList"), rectOf("messageTable"), rectOf("rateChart"),
                               rectOf("detailPane"), rectOf("filterError"));
    }

    BusInspector *m_inspector;
    QQuickWindow *m_window;
    QByteArray m_input;
};

} // namespace

int main(int argc, char *argv[])
{
    QGuiApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"ipmbqt-inspector"_s);
    QQuickStyle::setStyle(u"Fusion"_s);

    QCommandLineParser parser;
    parser.setApplicationDescription(
            u"A window onto an IpmbQt bus: its peers, the messages each sends per second, and the\n"
            u"last messages with their payloads. It joins as a monitor, which changes nothing on the bus."_s);
    parser.addHelpOption();
    parser.addOption({u"bus"_s, u"The bus to inspect (required)."_s, u"ID"_s});
    parser.addOption({u"token"_s, u"The bus's token, if it has one."_s, u"TOKEN"_s});
    parser.addOption({u"filter"_s, u"Show only messages from or to endpoints whose label matches OP."_s, u"OP"_s});
    parser.addOption({u"rows"_s, u"Keep the last N messages (default 500)."_s, u"N"_s, u"500"_s});
    parser.process(app);
    if (parser.value(u"bus"_s).isEmpty()) {
        std::fprintf(stderr, "ipmbqt-inspector: --bus is required (see --help)\n");
        return 2;
    }
    bool rowsOk = false;
    const int rows = parser.value(u"rows"_s).toInt(&rowsOk);
    if (!rowsOk || rows < 1 || rows > 100000) {
        std::fprintf(stderr, "ipmbqt-inspector: --rows takes a number from 1 to 100000\n");
        return 2;
    }

    BusInspector inspector({parser.value(u"bus"_s), parser.value(u"token"_s).toUtf8(), parser.value(u"filter"_s), rows});
    QQmlApplicationEngine engine;
    engine.addImportPath(u"qrc:/"_s);  // `import IpmbQt.Inspector`: the module is in the resources
    engine.setInitialProperties({{u"inspector"_s, QVariant::fromValue(&inspector)}});
    // Where qt_add_qml_module(URI IpmbQt.Inspector) puts Main.qml in Qt 6.4 (loadFromModule is 6.5).
    engine.load(QUrl(u"qrc:/IpmbQt/Inspector/Main.qml"_s));
    const QList<QObject *> roots = engine.rootObjects();
    auto *window = roots.isEmpty() ? nullptr : qobject_cast<QQuickWindow *>(roots.constFirst());
    if (!window)
        return 1;
    if (::fcntl(STDIN_FILENO, F_GETFD) != -1 && !::isatty(STDIN_FILENO))
        new Automation(&inspector, window);
    inspector.start();
    return app.exec();  // the engine and its window go before the inspector they show
}
