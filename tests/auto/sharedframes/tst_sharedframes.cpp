// SPDX-License-Identifier: BSD-3-Clause
// The shared-frames example as a user runs it: the producer renders at 60 fps into shared memory,
// the QML viewer shows the frames. Headless, the viewer's window is grabbed to PNGs twice: the
// image must not be blank, must change between the grabs, and the viewer must show more than 30
// frames a second.
#include "ipmbtestutil.h"

#include <QtCore/qprocess.h>
#include <QtGui/qimage.h>
#include <QtTest/qtest.h>

#include <QtCore/qset.h>

using namespace IpmbTest;

class tst_SharedFrames : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void framesReachTheWindow();
};

namespace {

QString artifact(const char *name)
{
    return QStringLiteral(IPMBQT_ARTIFACT_DIR "/") + QLatin1String(name);
}

double fieldValue(const QByteArray &line, const QByteArray &key)
{
    return field(line, key).toDouble();
}

int distinctColours(const QImage &image)
{
    QSet<QRgb> colours;
    for (int y = 0; y < image.height(); y += 2)
        for (int x = 0; x < image.width(); x += 2)
            colours.insert(image.pixel(x, y));
    return int(colours.size());
}

double changedFraction(const QImage &a, const QImage &b)
{
    qint64 changed = 0;
    for (int y = 0; y < a.height(); ++y)
        for (int x = 0; x < a.width(); ++x)
            changed += a.pixel(x, y) != b.pixel(x, y);
    return double(changed) / (double(a.width()) * a.height());
}

} // namespace

void tst_SharedFrames::framesReachTheWindow()
{
    const QString bus = uniqueBusName();
    QProcess viewer;
    viewer.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    viewer.start(QStringLiteral(IPMBQT_VIEWER), {QStringLiteral("--bus"), bus, QStringLiteral("--stats"), QStringLiteral("3")});
    QProcess producer;
    producer.setProcessChannelMode(QProcess::ForwardedChannels);
    producer.start(QStringLiteral(IPMBQT_PRODUCER), {QStringLiteral("--bus"), bus, QStringLiteral("--fps"), QStringLiteral("60")});
    auto stop = qScopeGuard([&] {
        producer.kill();
        viewer.kill();
        producer.waitForFinished();
        viewer.waitForFinished();
    });
    PeerOutput out(&viewer);
    QVERIFY(!out.waitForLine("first-frame").isEmpty());

    // Two grabs some frames apart (the grab answer says how many frames the window has shown).
    const QString before = artifact("sharedframes-1.png");
    const QString after = artifact("sharedframes-2.png");
    viewer.write("grab " + before.toLocal8Bit() + '\n');
    const QByteArray first = out.waitForLine("grabbed");
    QVERIFY2(first.contains("ok=1"), first.constData());
    QByteArray second;
    for (int attempt = 0; attempt < 50; ++attempt) {
        viewer.write("grab " + after.toLocal8Bit() + '\n');
        second = out.waitForLine("grabbed");
        QVERIFY2(second.contains("ok=1"), second.constData());
        if (fieldValue(second, "frames") >= fieldValue(first, "frames") + 5)
            break;
    }
    qInfo("PNGs: %s %s", qPrintable(before), qPrintable(after));

    const QImage one(before);
    const QImage two(after);
    QVERIFY(!one.isNull() && !two.isNull());
    QCOMPARE(one.size(), two.size());
    // Not blank: the animation has a gradient, coloured spokes and text, thousands of colours.
    QVERIFY2(distinctColours(one) > 100, qPrintable(QString::number(distinctColours(one))));
    QVERIFY2(distinctColours(two) > 100, qPrintable(QString::number(distinctColours(two))));
    // Live: the spokes turn and the ball moves between the grabs.
    const double changed = changedFraction(one, two);
    QVERIFY2(changed > 0.01, qPrintable(QString::number(changed)));

    // The viewer prints its figures after 3 s of frames, then quits.
    const QByteArray stats = out.waitForLine("stats", 20000);
    QVERIFY(!stats.isEmpty());
    qInfo("%s", stats.constData());
    QVERIFY2(fieldValue(stats, "fps") > 30, stats.constData());
    // waitForFinished() is false for a process that already finished while the output was read.
    QVERIFY(viewer.state() == QProcess::NotRunning || viewer.waitForFinished(5000));
    QCOMPARE(viewer.exitStatus(), QProcess::NormalExit);
    QCOMPARE(viewer.exitCode(), 0);
}

QTEST_MAIN(tst_SharedFrames)
#include "tst_sharedframes.moc"
