// SPDX-License-Identifier: BSD-3-Clause
// examples/worker-pool headless, driven through its automation hooks (see its frontend/main.cpp):
// 24 jobs spread over three workers and all answered; then a worker is killed during a second
// run, and only the jobs it had not answered fail, each with the reason; the grab shows it.
#include "ipmbtestutil.h"

#include <QtCore/qfile.h>
#include <QtCore/qset.h>
#include <QtGui/qcolor.h>
#include <QtGui/qimage.h>
#include <QtTest/qtest.h>

using namespace IpmbTest;

namespace {

struct Settled
{
    int job;
    bool ok;
    qint64 worker;
    QByteArray text;
};

// The `settled` lines of one run of `count` jobs.
QList<Settled> waitForRun(PeerOutput &output, int count)
{
    QList<Settled> all;
    for (int i = 0; i < count; ++i) {
        const QByteArray line = output.waitForLine("settled", 30000);
        if (line.isEmpty())
            break;
        all.append({line.split(' ').value(1).toInt(), field(line, "ok") == "1", field(line, "worker").toLongLong(),
                    line.mid(line.indexOf("text=") + 5)});
    }
    return all;
}

// Tiles drawn with a red border or text: failed jobs.
int redPixels(const QImage &image)
{
    int count = 0;
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x) {
            const QColor c = QColor::fromRgb(image.pixel(x, y));
            count += c.red() > 150 && c.green() < 80 && c.blue() < 80;
        }
    }
    return count;
}

} // namespace

class tst_WorkerPool : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void jobsSpreadAndAWorkerDies();
};

void tst_WorkerPool::jobsSpreadAndAWorkerDies()
{
    ChildProcess window;
    PeerOutput output(&window);
    QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
    environment.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    environment.insert(QStringLiteral("QT_QUICK_BACKEND"), QStringLiteral("software"));
    window.setProcessEnvironment(environment);
    window.start(QStringLiteral(WORKER_POOL_EXECUTABLE), {QStringLiteral("--bus"), uniqueBusName(),
                                                           QStringLiteral("--workers"), QStringLiteral("3")});
    const QByteArray pool = output.waitForLine("workers 3", 30000);
    QVERIFY(!pool.isEmpty());
    const QByteArrayList pids = field(pool, "pids").split(',');
    QCOMPARE(pids.size(), 3);

    // All answered, by all three (the bus hands unicasts out in turn).
    window.command("run 24");
    const QList<Settled> first = waitForRun(output, 24);
    QCOMPARE(first.size(), 24);
    QSet<qint64> workers;
    QSet<int> jobs;
    for (const Settled &s : first) {
        QVERIFY2(s.ok, s.text.constData());
        QVERIFY2(s.text.contains("primes"), s.text.constData());
        workers.insert(s.worker);
        jobs.insert(s.job);
    }
    QCOMPARE(workers.size(), 3);
    QCOMPARE(jobs.size(), 24);

    // Kill one worker right after the jobs went out: its unanswered jobs fail with the reason,
    // the others are answered by the two left.
    const qint64 victim = pids.first().toLongLong();
    window.command("run 24");
    window.command("kill " + QByteArray::number(victim));
    const QList<Settled> second = waitForRun(output, 24);
    QCOMPARE(second.size(), 24);
    int failed = 0;
    for (const Settled &s : second) {
        if (s.ok) {
            QVERIFY(s.text.contains("primes"));
            continue;
        }
        ++failed;
        QVERIFY2(s.text.contains("left before it replied"), s.text.constData());
    }
    qInfo("second run: %d of 24 jobs failed with their worker", failed);
    QVERIFY2(failed >= 1 && failed <= 8, QByteArray::number(failed));  // at most its share

    const QString file = QStringLiteral(WORKER_POOL_GRAB_DIR "/worker-pool.png");
    QFile::remove(file);
    window.command("grab " + file.toUtf8());
    QCOMPARE(output.waitForLine("grabbed"), "grabbed " + file.toUtf8());
    const QImage image(file);
    QVERIFY(!image.isNull());
    QVERIFY2(redPixels(image) > 50, QByteArray::number(redPixels(image)));  // the failed tiles
    QVERIFY(window.quit(15000));
}

QTEST_GUILESS_MAIN(tst_WorkerPool)
#include "tst_workerpool.moc"
