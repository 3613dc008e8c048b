// SPDX-License-Identifier: BSD-3-Clause
// The producer of the shared-frames example: renders an animation with QPainter straight into
// shared-memory regions from an IpmbMemoryRegistry, and multicasts each frame to the viewers.
// The message carries only a description of the image (SharedImage's format) and the region; no
// pixel crosses the socket, and a region comes back to the pool when every viewer let go of it.
#include <IpmbQt/IpmbEndpoint>
#include <IpmbQt/IpmbMemoryRegistry>
#include <ipmbqmlsharedimage.h>

#include <QtCore/qcommandlineparser.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qtimer.h>
#include <QtGui/qguiapplication.h>
#include <QtGui/qpainter.h>
#include <QtGui/qpainterpath.h>

#include <chrono>
#include <cmath>

using namespace Qt::StringLiterals;

namespace {

// Microseconds of CLOCK_MONOTONIC, the same clock in every process: the viewer subtracts it from
// its own reading to get the latency of a frame.
qint64 monotonicMicroseconds()
{
    using namespace std::chrono;
    return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

void paintFrame(QImage &image, qint64 frame, double seconds)
{
    QPainter p(&image);
    p.setRenderHint(QPainter::Antialiasing);
    QLinearGradient sky(0, 0, 0, image.height());
    sky.setColorAt(0, QColor::fromHsvF(std::fmod(seconds / 20, 1.0), 0.6, 0.35));
    sky.setColorAt(1, QColor(10, 10, 25));
    p.fillRect(image.rect(), sky);

    const QPointF centre(image.width() / 2.0, image.height() / 2.0);
    const double radius = image.height() * 0.38;
    for (int i = 0; i < 12; ++i) { // a wheel of spokes, one turn every 4 s
        const double angle = seconds * M_PI / 2 + i * M_PI / 6;
        p.setPen(QPen(QColor::fromHsvF(i / 12.0, 0.8, 1.0), 6, Qt::SolidLine, Qt::RoundCap));
        p.drawLine(centre, centre + QPointF(std::cos(angle), std::sin(angle)) * radius);
    }
    // A ball bouncing across, so that motion is easy to judge.
    const double x = (0.5 + 0.45 * std::sin(seconds * 1.7)) * image.width();
    const double y = image.height() * (0.9 - 0.6 * std::abs(std::sin(seconds * 3.1)));
    p.setPen(Qt::NoPen);
    p.setBrush(QColor(255, 220, 80));
    p.drawEllipse(QPointF(x, y), 18, 18);

    p.setPen(Qt::white);
    QFont font = p.font();
    font.setPixelSize(22);
    p.setFont(font);
    p.drawText(QRectF(12, 8, image.width() - 24, 32), Qt::AlignLeft, u"frame %1"_s.arg(frame));
}

} // namespace

int main(int argc, char *argv[])
{
    // QPainter's text needs the fonts of a GUI application, but the producer has no window: it
    // needs no display either.
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    QGuiApplication app(argc, argv);
    QCommandLineParser parser;
    parser.setApplicationDescription(u"Renders frames into shared memory and sends them to the viewers."_s);
    parser.addHelpOption();
    parser.addOption({u"bus"_s, u"The bus identifier."_s, u"id"_s, u"com.example.shared-frames"_s});
    parser.addOption({u"fps"_s, u"Frames per second."_s, u"fps"_s, u"60"_s});
    parser.addOption({u"size"_s, u"Frame size, WxH."_s, u"size"_s, u"640x360"_s});
    parser.process(app);
    const double fps = qBound(1.0, parser.value(u"fps"_s).toDouble(), 240.0);
    const QStringList size = parser.value(u"size"_s).split(u'x');
    const int width = qBound(16, size.value(0).toInt(), 4096);
    const int height = qBound(16, size.value(1).toInt(), 4096);

    IpmbEndpoint endpoint;
    endpoint.setIdentifier(parser.value(u"bus"_s));
    endpoint.setLabel({u"producer"_s});
    IpmbMemoryRegistry registry;
    QObject::connect(&endpoint, &IpmbEndpoint::errorOccurred, [&endpoint](IpmbEndpoint::Error error) {
        if (error != IpmbEndpoint::NoError)
            qWarning("producer: %s", qPrintable(endpoint.errorString()));
    });

    const qsizetype bytesPerLine = qsizetype(width) * 4;
    const IpmbSelector viewers = IpmbSelector::multicast(IpmbLabelOp("viewer"));
    QElapsedTimer clock;
    qint64 frame = 0;
    qint64 skipped = 0;
    QTimer timer;
    timer.setTimerType(Qt::PreciseTimer);
    timer.setSingleShot(true);
    QObject::connect(&timer, &QTimer::timeout, [&] {
        // A viewer that falls behind holds regions; past a few frames in flight, skip rather than
        // let the pool grow.
        if (registry.count() - registry.freeCount() < 8) {
            IpmbMemoryRegion region = registry.alloc(bytesPerLine * height, u"frame"_s);
            if (region.isNull()) {
                qWarning("producer: %s", qPrintable(registry.errorString()));
                return app.exit(1);
            }
            // Painted in place: the QImage is a view of the shared memory.
            QImage image(static_cast<uchar *>(region.data()), width, height, bytesPerLine,
                         QImage::Format_ARGB32_Premultiplied);
            paintFrame(image, frame, clock.nsecsElapsed() / 1e9);
            QVariantMap payload = IpmbQmlSharedImage::describe(image);
            payload.insert(u"frame"_s, frame);
            payload.insert(u"sentUs"_s, monotonicMicroseconds());
            IpmbMessage message(viewers, payload);
            message.addRegion(region);
            endpoint.send(message);
        } else {
            ++skipped;
        }
        ++frame;
        // Frame n is due at n / fps seconds: no drift, whatever each frame cost.
        const qint64 due = qint64(frame * 1000 / fps);
        timer.start(int(qMax<qint64>(0, due - clock.elapsed())));
    });
    QObject::connect(&endpoint, &IpmbEndpoint::joined, [&] {
        qInfo("producer: joined %s, %dx%d at %g fps", qPrintable(endpoint.identifier()), width, height, fps);
        clock.start();
        timer.start(0);
    });
    endpoint.join();
    const int rc = app.exec();
    qInfo("producer: %lld frames, %lld skipped", frame, skipped);
    return rc;
}
