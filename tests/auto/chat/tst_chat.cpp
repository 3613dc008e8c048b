// SPDX-License-Identifier: BSD-3-Clause
// examples/chat, three windows headless on a bus of their own, driven through the example's
// automation hooks (see its main.cpp: `say`, `grab` and `quit` on stdin; `joined` and `line` on
// stdout). Checks that every window shows every line once, with the pid and label the bus
// reports, and that the window really draws them: grabs before and after are compared. Who is
// online (a PeerModel) follows windows that come and go.
#include "ipmbtestutil.h"

#include <QtCore/qfile.h>
#include <QtCore/qprocess.h>
#include <QtCore/qset.h>
#include <QtGui/qcolor.h>
#include <QtGui/qimage.h>
#include <QtTest/qtest.h>

#include <array>

using namespace IpmbTest;

namespace {

// One chat process; killed by the destructor if a failed check leaves it running.
class ChatWindow
{
public:
    explicit ChatWindow(QByteArray name) : m_name(std::move(name)), m_output(&m_process) { }

    void start(const QString &bus)
    {
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
        environment.insert(QStringLiteral("QT_QUICK_BACKEND"), QStringLiteral("software"));
        m_process.setProcessEnvironment(environment);
        m_process.start(QStringLiteral(CHAT_EXECUTABLE),
                        {QStringLiteral("--bus"), bus, QStringLiteral("--name"), QString::fromUtf8(m_name)});
    }
    QByteArray waitFor(const QByteArray &prefix) { return m_output.waitForLine(prefix, 15000); }
    void command(const QByteArray &line) { m_process.command(line); }
    // Asks for a grab of the window into `file` and waits for it.
    bool grab(const QString &file)
    {
        QFile::remove(file);
        command("grab " + file.toUtf8());
        return waitFor("grabbed") == "grabbed " + file.toUtf8();
    }
    bool quit() { return m_process.quit(10000); }
    QByteArray name() const { return m_name; }
    QByteArray pid() const { return QByteArray::number(m_process.processId()); }
    // The label the chat joins with, as the bus reports it: its names sorted.
    QByteArray label() const { return m_name < "chat" ? m_name + ",chat" : "chat," + m_name; }

private:
    QByteArray m_name;
    ChildProcess m_process;
    PeerOutput m_output;
};

// The line a window prints when it adds the `count`th line, said by `sayer`.
QByteArray expectedLine(int count, const ChatWindow &sayer, const QByteArray &text)
{
    return "line " + QByteArray::number(count) + " pid=" + sayer.pid() + " label=" + sayer.label()
            + " text=" + text;
}

int distinctColours(const QImage &image)
{
    QSet<QRgb> colours;
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x)
            colours.insert(image.pixel(x, y));
    }
    return int(colours.size());
}

// Pixels of clearly coloured (not grey) ink in the upper half of the window, where the list is:
// the sender lines are drawn in their sender's colour; nothing else there has a hue.
int colouredPixelsInList(const QImage &image)
{
    int count = 0;
    for (int y = 0; y < image.height() / 2; ++y) {
        for (int x = 0; x < image.width(); ++x) {
            const QColor colour = QColor::fromRgb(image.pixel(x, y));
            count += colour.hslSaturationF() > 0.4 && colour.lightnessF() < 0.8;
        }
    }
    return count;
}

int differingPixelsInList(const QImage &a, const QImage &b)
{
    int count = 0;
    for (int y = 0; y < a.height() / 2; ++y) {
        for (int x = 0; x < a.width(); ++x)
            count += a.pixel(x, y) != b.pixel(x, y);
    }
    return count;
}

} // namespace

class tst_Chat : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void threeWindowsTalk();
};

void tst_Chat::threeWindowsTalk()
{
    const QString bus = uniqueBusName();
    ChatWindow alice("alice"), bob("bob"), carol("carol");
    std::array<ChatWindow *, 3> all{&alice, &bob, &carol};
    // All at once, as a user starting three windows would: they agree on who routes the bus.
    for (ChatWindow *window : all)
        window->start(bus);
    for (ChatWindow *window : all)
        QCOMPARE(window->waitFor("joined"), "joined pid=" + window->pid());
    // Each lists the two others (sorted here: the order is the order they joined).
    for (ChatWindow *window : all) {
        QByteArrayList others;
        for (ChatWindow *other : all) {
            if (other != window)
                others.append(other->name());
        }
        const QByteArray line = window->waitFor("online 2");
        QByteArrayList names = field(line, "names").split(',');
        std::sort(names.begin(), names.end());
        QCOMPARE(names, others);
    }

    const QString before = QStringLiteral(CHAT_GRAB_DIR "/chat-before.png");
    const QString after = QStringLiteral(CHAT_GRAB_DIR "/chat-after.png");
    QVERIFY(carol.grab(before));

    // Each says a line after the one before has arrived, so that every window has the same
    // order. The sender gets its own multicast too (its label matches "chat"): the window shows
    // it then, once. Were it shown twice, the next line's count would be off.
    const std::array<std::pair<ChatWindow *, QByteArray>, 3> conversation{{
        {&bob, "hi all, bob here"},
        {&carol, "hello bob! three windows, one bus"},
        {&alice, "and each line shows the pid and label the bus saw"},
    }};
    int count = 0;
    for (const auto &[sayer, text] : conversation) {
        ++count;
        sayer->command("say " + text);
        for (ChatWindow *window : all)
            QCOMPARE(window->waitFor("line"), expectedLine(count, *sayer, text));
    }
    QVERIFY(carol.grab(after));
    qInfo("grabs of carol's window: %s, %s", qPrintable(before), qPrintable(after));

    const QImage beforeImage(before), afterImage(after);
    QVERIFY(!beforeImage.isNull());
    QVERIFY(!afterImage.isNull());
    QCOMPARE(afterImage.size(), beforeImage.size());
    QVERIFY2(beforeImage.width() >= 200 && beforeImage.height() >= 200, "a window too small to read");
    // Drawn, not blank: antialiased text alone gives dozens of shades.
    QVERIFY2(distinctColours(beforeImage) > 20, QByteArray::number(distinctColours(beforeImage)));
    QVERIFY2(distinctColours(afterImage) > 20, QByteArray::number(distinctColours(afterImage)));
    // The list was empty, and now shows three lines with coloured senders.
    QCOMPARE(colouredPixelsInList(beforeImage), 0);
    QVERIFY2(colouredPixelsInList(afterImage) > 100, QByteArray::number(colouredPixelsInList(afterImage)));
    QVERIFY2(differingPixelsInList(beforeImage, afterImage) > 1000,
             QByteArray::number(differingPixelsInList(beforeImage, afterImage)));

    // A window that closes leaves the others' lists.
    QVERIFY(alice.quit());
    for (ChatWindow *window : {&bob, &carol})
        QCOMPARE(field(window->waitFor("online 1"), "names"), window == &bob ? QByteArray("carol") : QByteArray("bob"));
    for (ChatWindow *window : {&bob, &carol})
        QVERIFY2(window->quit(), window->name());
}

QTEST_GUILESS_MAIN(tst_Chat)

#include "tst_chat.moc"
