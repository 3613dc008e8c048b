// SPDX-License-Identifier: BSD-3-Clause
// tools/inspector (ipmbqt-inspector), headless, on a bus of three helper processes
// (tests/auto/multiprocess/peer) that keep sending to each other. Driven through its automation
// hooks (see its main.cpp: `state`, `pause`, `filter`, `select`, `grab` and `quit` on stdin): what
// its models hold is checked from its `state` line, and that the window draws it from grabs, before
// and after traffic, in the regions the `state` line says the peer list, table and chart are.
#include "ipmbtestpeer.h"

#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qfile.h>
#include <QtCore/qset.h>
#include <QtGui/qimage.h>
#include <QtTest/qtest.h>

using namespace IpmbTest;

namespace {

// The inspector process; killed by its ChildProcess if a failed check leaves it running.
class Inspector
{
public:
    Inspector() : m_output(&m_process) { }

    void start(const QString &bus, const QStringList &extra = {})
    {
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
        environment.insert(QStringLiteral("QT_QUICK_BACKEND"), QStringLiteral("software"));
        m_process.setProcessEnvironment(environment);
        m_process.start(QStringLiteral(IPMBQT_INSPECTOR), QStringList{QStringLiteral("--bus"), bus} + extra);
    }
    QByteArray waitFor(const QByteArray &prefix) { return m_output.waitForLine(prefix, 15000); }
    QByteArray run(const QByteArray &command, const QByteArray &answer)
    {
        m_process.command(command);
        return waitFor(answer);
    }
    QByteArray state() { return run("state", "state "); }
    bool grab(const QString &file)
    {
        QFile::remove(file);
        return run("grab " + file.toUtf8(), "grabbed") == "grabbed " + file.toUtf8();
    }
    bool quit() { return m_process.quit(10000); }

private:
    ChildProcess m_process;
    PeerOutput m_output;
};

QSet<QByteArray> listField(const QByteArray &line, const QByteArray &key)
{
    const QByteArray value = field(line, key);
    if (value.isEmpty())
        return {};
    const QByteArrayList items = value.split(',');
    return QSet<QByteArray>(items.cbegin(), items.cend());
}

qint64 number(const QByteArray &line, const QByteArray &key)
{
    return field(line, key).toLongLong();
}

// A region of the window from the `state` line ("x,y,w,h"), within the image.
QRect rectField(const QByteArray &line, const QByteArray &key, const QImage &image)
{
    const QByteArrayList parts = field(line, key).split(',');
    if (parts.size() != 4)
        return {};
    return QRect(parts[0].toInt(), parts[1].toInt(), parts[2].toInt(), parts[3].toInt()) & image.rect();
}

int distinctColours(const QImage &image, const QRect &region)
{
    QSet<QRgb> colours;
    for (int y = region.top(); y <= region.bottom(); ++y) {
        for (int x = region.left(); x <= region.right(); ++x)
            colours.insert(image.pixel(x, y));
    }
    return int(colours.size());
}

int differingPixels(const QImage &a, const QImage &b, const QRect &region)
{
    int count = 0;
    for (int y = region.top(); y <= region.bottom(); ++y) {
        for (int x = region.left(); x <= region.right(); ++x)
            count += a.pixel(x, y) != b.pixel(x, y);
    }
    return count;
}

// Pixels of the filter's error text (dark red) in `region`.
int errorPixels(const QImage &image, const QRect &region)
{
    int count = 0;
    for (int y = region.top(); y <= region.bottom(); ++y) {
        for (int x = region.left(); x <= region.right(); ++x) {
            const QRgb pixel = image.pixel(x, y);
            count += qRed(pixel) > 120 && qGreen(pixel) < 90 && qBlue(pixel) < 90;
        }
    }
    return count;
}

// Three helpers with distinct labels (the first hosts the controller) and the inspector.
struct Fixture
{
    Bus bus;
    Peer alpha, beta, gamma;
    Inspector inspector;

    bool start(const QStringList &inspectorOptions = {})
    {
        if (!bus.join({{alpha, "alpha"}, {beta, "beta"}, {gamma, "gamma,worker"}}))
            return false;
        inspector.start(bus.name, inspectorOptions);
        return inspector.waitFor("joined") == "joined bus=" + bus.name.toUtf8();
    }

    // One round of traffic, each helper's sent once the helper says so: alpha floods beta,
    // gamma multicasts to alpha and beta, beta sends alpha a line.
    bool round()
    {
        alpha.command("flood unicast beta 200 64");
        gamma.command("flood multicast alpha||beta 100 32");
        beta.command("send unicast alpha 0 str hello");
        return alpha.waitFor("sent 200") == "sent 200" && gamma.waitFor("sent 100") == "sent 100"
                && beta.waitFor("sent 1") == "sent 1";
    }

    // Keeps the traffic flowing until the inspector's state satisfies `done` (or 20 s pass); the
    // last state line.
    template<typename Done>
    QByteArray trafficUntil(Done done)
    {
        QDeadlineTimer deadline(20000);
        QByteArray state;
        while (!deadline.hasExpired()) {
            if (!round())
                return {};
            state = inspector.state();
            if (done(state))
                return state;
        }
        qWarning("the inspector never got there; its last state: %s", state.constData());
        return {};
    }

    bool quit()
    {
        bool ok = inspector.quit();
        for (Peer *peer : {&alpha, &beta, &gamma})
            ok = peer->quit() && ok;
        return ok;
    }
};

const QSet<QByteArray> Labels{"alpha", "beta", "gamma+worker"};

} // namespace

class tst_Inspector : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void showsPeersAndMessages();
    void pauseFreezesTableAndChart();
    void filterHidesRows();
    void nobodyOnTheBus();
};

void tst_Inspector::showsPeersAndMessages()
{
    Fixture f;
    QVERIFY(f.start());
    // The peer list is complete before any traffic: the three helpers, the controller among them.
    QByteArray state;
    QTRY_VERIFY_WITH_TIMEOUT(number(state = f.inspector.state(), "peers") == 3, 10000);
    QCOMPARE(listField(state, "labels"), Labels);
    QCOMPARE(field(state, "joined"), "1");
    QCOMPARE(number(state, "rows"), 0);
    QCOMPARE(field(state, "title"), "IpmbQt_Inspector_—_" + f.bus.name.toUtf8());
    const QString before = QStringLiteral(INSPECTOR_GRAB_DIR "/inspector-before.png");
    QVERIFY(f.inspector.grab(before));

    // Traffic until each sender has a line on the chart and a rate in the peer list (rates are
    // taken once a second: a few rounds).
    state = f.trafficUntil([](const QByteArray &s) {
        const QList<QByteArray> rates = field(s, "rates").split(',');
        return number(s, "rows") > 0 && listField(s, "series") == Labels && rates.size() == 3
                && std::all_of(rates.cbegin(), rates.cend(), [](const QByteArray &r) { return r.toDouble() > 0; });
    });
    QVERIFY(!state.isEmpty());
    QCOMPARE(number(state, "dropped"), 0);
    QVERIFY2(number(state, "rows") <= 500, state);  // the table keeps the last 500
    QVERIFY2(number(state, "seen") >= number(state, "rows"), state);
    QVERIFY2(listField(state, "senders").contains("alpha"), state);

    // A payload with a structure: pretty-printed on several lines once selected.
    f.beta.command("send unicast gamma 0 list 20");
    QVERIFY(f.beta.waitFor("sent 1") == "sent 1");
    QTRY_COMPARE_WITH_TIMEOUT(field(state = f.inspector.state(), "toptype"), "QVariantList", 10000);
    const QByteArray selected = f.inspector.run("select 0", "selected");
    QCOMPARE(field(selected, "type"), "QVariantList");
    QCOMPARE(field(selected, "seq"), field(state, "topseq"));
    QVERIFY2(number(selected, "lines") >= 4, selected);  // [, "lll…", 7, ]

    const QString after = QStringLiteral(INSPECTOR_GRAB_DIR "/inspector-after.png");
    QVERIFY(f.inspector.grab(after));
    qInfo("grabs of the inspector: %s, %s", qPrintable(before), qPrintable(after));

    const QImage beforeImage(before), afterImage(after);
    QVERIFY(!beforeImage.isNull());
    QVERIFY(!afterImage.isNull());
    QCOMPARE(afterImage.size(), beforeImage.size());
    QVERIFY2(afterImage.width() >= 1000 && afterImage.height() >= 600, "a window too small to read");
    const QRect peers = rectField(state, "peersrect", afterImage);
    const QRect table = rectField(state, "tablerect", afterImage);
    const QRect chart = rectField(state, "chartrect", afterImage);
    const QRect detail = rectField(state, "detailrect", afterImage);
    for (const QRect &region : {peers, table, chart, detail})
        QVERIFY2(region.width() > 100 && region.height() > 100, state);
    QVERIFY(!peers.intersects(table) && !chart.intersects(table) && !detail.intersects(table));
    // Drawn, not blank: antialiased text alone gives dozens of shades.
    QVERIFY2(distinctColours(afterImage, afterImage.rect()) > 50, "a blank window");
    // The peers were listed before traffic, in their colours.
    QVERIFY2(distinctColours(beforeImage, peers) > 20, QByteArray::number(distinctColours(beforeImage, peers)));
    // The table was empty but for its header, and now has rows; the chart has lines.
    QVERIFY2(distinctColours(afterImage, table) > distinctColours(beforeImage, table) + 20,
             QByteArray::number(distinctColours(afterImage, table)));
    const int tableChange = differingPixels(beforeImage, afterImage, table);
    QVERIFY2(tableChange > table.width() * table.height() / 10, QByteArray::number(tableChange));
    const int chartChange = differingPixels(beforeImage, afterImage, chart);
    QVERIFY2(chartChange > 300, QByteArray::number(chartChange));
    const int detailChange = differingPixels(beforeImage, afterImage, detail);
    QVERIFY2(detailChange > 1000, QByteArray::number(detailChange));
    QVERIFY(f.quit());
}

void tst_Inspector::pauseFreezesTableAndChart()
{
    Fixture f;
    QVERIFY(f.start());
    QByteArray state = f.trafficUntil([](const QByteArray &s) { return number(s, "rows") > 0; });
    QVERIFY(!state.isEmpty());

    QCOMPARE(f.inspector.run("pause 1", "paused"), "paused 1");
    const QByteArray paused = f.inspector.state();
    QCOMPARE(field(paused, "paused"), "1");
    // Copies go on arriving and are counted; the table and the chart stay as they were, also
    // through a tick of the chart's clock.
    state = f.trafficUntil([&paused](const QByteArray &s) {
        return number(s, "whilepaused") >= 301 && number(s, "ticks") > number(paused, "ticks");
    });
    QVERIFY(!state.isEmpty());
    QVERIFY2(number(state, "seen") > number(paused, "seen"), state);
    QCOMPARE(field(state, "topseq"), field(paused, "topseq"));
    QCOMPARE(field(state, "rows"), field(paused, "rows"));
    QCOMPARE(field(state, "chartrev"), field(paused, "chartrev"));

    // Resumed: the copies that came meanwhile (the last 500 of them) are shown at once.
    QCOMPARE(f.inspector.run("pause 0", "paused"), "paused 0");
    state = f.inspector.state();
    QVERIFY2(number(state, "topseq") > number(paused, "topseq"), state);
    QCOMPARE(number(state, "whilepaused"), 0);
    QVERIFY2(number(state, "chartrev") > number(paused, "chartrev"), state);
    QVERIFY(f.quit());
}

void tst_Inspector::filterHidesRows()
{
    Fixture f;
    QVERIFY(f.start({QStringLiteral("--rows"), QStringLiteral("2000")}));
    QByteArray state = f.trafficUntil([](const QByteArray &s) { return listField(s, "senders") == Labels; });
    QVERIFY(!state.isEmpty());
    const qint64 all = number(state, "rows");

    // As `ipmbqt monitor --filter`: rows from or to an endpoint whose label matches. Nothing of
    // alpha's flood to beta or of beta's lines to alpha matches `worker`; gamma's multicasts do.
    QCOMPARE(f.inspector.run("filter worker", "filter"), "filter ok");
    state = f.inspector.state();
    QCOMPARE(field(state, "filter"), "worker");
    QCOMPARE(listField(state, "senders"), QSet<QByteArray>{"gamma+worker"});
    QVERIFY2(number(state, "rows") > 0 && number(state, "rows") < all, state);
    // New rows are filtered as they come; a receiver's label counts too.
    f.alpha.command("send unicast worker 0 str to-the-worker");
    QVERIFY(f.alpha.waitFor("sent 1") == "sent 1");
    QVERIFY(!(state = f.trafficUntil([](const QByteArray &s) {
        return listField(s, "senders").contains("alpha");
    })).isEmpty());
    QCOMPARE(listField(state, "senders"), (QSet<QByteArray>{"alpha", "gamma+worker"}));
    QVERIFY(listField(state, "receivers").contains("gamma+worker"));

    // A filter that does not parse says why and changes nothing.
    const QByteArray error = f.inspector.run("filter alpha &&", "filter");
    QVERIFY2(error.startsWith("filter error ") && error.size() > 20, error);
    const QByteArray bad = f.inspector.state();
    QCOMPARE(field(bad, "filtererror"), "1");
    QCOMPARE(field(bad, "senders"), field(state, "senders"));
    // ... in the window, in red next to the field.
    const QString badGrab = QStringLiteral(INSPECTOR_GRAB_DIR "/inspector-bad-filter.png");
    QVERIFY(f.inspector.grab(badGrab));
    const QImage badImage(badGrab);
    const QRect errorRect = rectField(bad, "errorrect", badImage);
    QVERIFY2(errorRect.width() > 50, bad);
    QVERIFY2(errorPixels(badImage, errorRect) > 30, QByteArray::number(errorPixels(badImage, errorRect)));

    // No filter: everything again, and no error shown.
    QCOMPARE(f.inspector.run("filter", "filter"), "filter ok");
    state = f.inspector.state();
    QCOMPARE(field(state, "filtererror"), "0");
    QCOMPARE(listField(state, "senders"), Labels);
    const QString clearedGrab = QStringLiteral(INSPECTOR_GRAB_DIR "/inspector-no-filter.png");
    QVERIFY(f.inspector.grab(clearedGrab));
    QCOMPARE(errorPixels(QImage(clearedGrab), errorRect), 0);
    QVERIFY(f.quit());
}

void tst_Inspector::nobodyOnTheBus()
{
    // A monitor never starts a bus: a mistyped name says so, in the window and here.
    Inspector inspector;
    inspector.start(uniqueBusName());
    const QByteArray error = inspector.waitFor("error");
    QVERIFY2(error.contains("Nobody is on the bus"), error);
    const QByteArray state = inspector.state();
    QCOMPARE(field(state, "joined"), "0");
    QCOMPARE(number(state, "peers"), 0);
    QVERIFY(inspector.quit());
}

QTEST_GUILESS_MAIN(tst_Inspector)

#include "tst_inspector.moc"
