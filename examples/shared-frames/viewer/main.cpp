// SPDX-License-Identifier: BSD-3-Clause
// The viewer of the shared-frames example: a QML window that shows the producer's frames with
// SharedImage, straight from the shared memory, and a frame rate and latency overlay.
#include "framestats.h"

#include <QtCore/qcommandlineparser.h>
#include <QtCore/qsocketnotifier.h>
#include <QtCore/qtimer.h>
#include <QtGui/qguiapplication.h>
#include <QtQml/qqmlapplicationengine.h>

#include <algorithm>
#include <cstdio>
#include <unistd.h>

using namespace Qt::StringLiterals;

namespace {

double percentile(std::vector<double> sorted, double p)
{
    if (sorted.empty())
        return 0;
    std::sort(sorted.begin(), sorted.end());
    return sorted[std::min(sorted.size() - 1, size_t(p * double(sorted.size())))];
}

} // namespace

int main(int argc, char *argv[])
{
    QGuiApplication app(argc, argv);
    QCommandLineParser parser;
    parser.setApplicationDescription(u"Shows the frames of shared-frames-producer."_s);
    parser.addHelpOption();
    parser.addOption({u"bus"_s, u"The bus identifier."_s, u"id"_s, u"com.example.shared-frames"_s});
    parser.addOption({u"stats"_s, u"Print the frame rate and latency over <seconds>, then quit."_s, u"seconds"_s});
    parser.process(app);

    QQmlApplicationEngine engine;
#ifdef SHARED_FRAMES_QML_IMPORT_DIR
    engine.addImportPath(QStringLiteral(SHARED_FRAMES_QML_IMPORT_DIR)); // IpmbQt in the build tree
#endif
    engine.setInitialProperties({{u"busIdentifier"_s, parser.value(u"bus"_s)}});
    engine.load(QUrl(u"qrc:/SharedFrames/viewer/Main.qml"_s));
    if (engine.rootObjects().isEmpty())
        return 1;
    QObject *window = engine.rootObjects().constFirst();
    auto *stats = window->findChild<FrameStats *>();

    // Hooks for the headless test and for measuring (doc/qml.md): "grab <file>" on stdin saves
    // the window as a PNG; --stats prints the figures of a run.
    QSocketNotifier commands(STDIN_FILENO, QSocketNotifier::Read);
    QByteArray pending;
    QObject::connect(&commands, &QSocketNotifier::activated, [&] {
        char buffer[512];
        const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
        if (n <= 0)
            return commands.setEnabled(false);
        pending.append(buffer, n);
        for (qsizetype end; (end = pending.indexOf('\n')) >= 0; pending.remove(0, end + 1)) {
            const QByteArray line = pending.left(end).trimmed();
            if (line.startsWith("grab ")) {
                const QString file = QString::fromLocal8Bit(line.mid(5));
                const bool ok = static_cast<QQuickWindow *>(window)->grabWindow().save(file);
                std::printf("grabbed ok=%d %s fps=%.1f frames=%lld\n", ok, qPrintable(file), stats->fps(),
                            static_cast<long long>(stats->framesShown()));
                std::fflush(stdout);
            }
        }
    });
    const int seconds = parser.isSet(u"stats"_s) ? qMax(1, parser.value(u"stats"_s).toInt()) : 0;
    // Measured from the first frame shown, so that joining and start-up do not count.
    QMetaObject::Connection firstFrame;
    firstFrame = QObject::connect(stats, &FrameStats::updated, &app, [&, seconds] {
        QObject::disconnect(firstFrame);
        std::printf("first-frame\n");
        std::fflush(stdout);
        if (seconds == 0)
            return;
        stats->takeLatencies();
        stats->takeDeliveryLatencies();
        const qint64 shownBefore = stats->framesShown();
        QTimer::singleShot(seconds * 1000, &app, [&, shownBefore, seconds] {
            const std::vector<double> latencies = stats->takeLatencies();
            const std::vector<double> delivery = stats->takeDeliveryLatencies();
            const qint64 shown = stats->framesShown() - shownBefore;
            std::printf("stats seconds=%d frames=%lld fps=%.1f latency_p50_ms=%.2f latency_p99_ms=%.2f "
                        "latency_max_ms=%.2f delivery_p50_ms=%.3f delivery_p99_ms=%.3f\n",
                        seconds, static_cast<long long>(shown), double(shown) / seconds,
                        percentile(latencies, 0.5), percentile(latencies, 0.99), percentile(latencies, 1.0),
                        percentile(delivery, 0.5), percentile(delivery, 0.99));
            std::fflush(stdout);
            app.quit();
        });
    });
    return app.exec();
}
