// SPDX-License-Identifier: BSD-3-Clause
// A producer fills an 8 MiB shared-memory region with a "video frame" and sends it to a consumer
// process, which reads it in place (no copy) and answers with a checksum. The producer takes its
// regions from an IpmbMemoryRegistry, which hands the same region out again once the consumer has
// let go of it: no new shared memory per frame.
#include <IpmbQt/IpmbEndpoint>
#include <IpmbQt/IpmbMemoryRegistry>

#include <QtCore/QCoreApplication>
#include <QtCore/QProcess>
#include <QtCore/QTimer>

using namespace Qt::StringLiterals;

static quint64 checksum(const uchar *bytes, qsizetype size)
{
    quint64 sum = 0;
    for (qsizetype i = 0; i < size; i += 4096)
        sum += bytes[i] * quint64(i / 4096 + 1);
    return sum;
}

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const bool consumer = app.arguments().value(1) == "consumer"_L1;
    IpmbEndpoint endpoint;
    endpoint.setIdentifier(u"com.example.sharedmemory"_s);
    endpoint.setLabel({consumer ? u"consumer"_s : u"producer"_s});
    QTimer::singleShot(30000, &app, [&] { qWarning("timed out"); app.exit(1); });

    IpmbMemoryRegistry registry;
    int frameNumber = 0;
    auto sendFrame = [&] {
        IpmbMemoryRegion frame = registry.alloc(8 * 1024 * 1024, u"frames"_s);
        auto *pixels = static_cast<uchar *>(frame.data());
        for (qsizetype i = 0; i < frame.size(); i += 4096)
            pixels[i] = uchar(i / 4096 + frameNumber);
        IpmbMessage message(IpmbSelector::unicast(IpmbLabelOp("consumer"), std::chrono::seconds(5)), frameNumber);
        message.addRegion(frame);
        endpoint.send(message);
        qInfo() << "producer: sent frame" << frameNumber << "checksum" << checksum(pixels, frame.size());
    };

    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, [&](const IpmbMessage &message) {
        if (consumer) {
            const IpmbMemoryRegion region = message.regions().first();
            const quint64 sum = checksum(static_cast<const uchar *>(region.constData()), region.size());
            qInfo() << "consumer: frame" << message.payload().toInt() << "of" << region.size() << "bytes,"
                    << "checksum" << sum << "- read in place, no copy";
            endpoint.send(IpmbSelector::unicast(IpmbLabelOp("producer")), sum);
            if (message.payload().toInt() == 2)
                app.quit();  // leave() hands the answer to the bus first
            return;  // `region` goes out of scope here: the producer may reuse the memory
        }
        qInfo() << "producer: consumer answered" << message.payload().toULongLong()
                << "- regions in the pool:" << registry.count();
        if (++frameNumber < 3)
            return sendFrame();
        app.quit();
    });
    QObject::connect(&endpoint, &IpmbEndpoint::joined, [&] {
        if (consumer)
            return;
        QProcess::startDetached(QCoreApplication::applicationFilePath(), {u"consumer"_s});
        sendFrame();  // kept by the bus (ttl 5 s) until the consumer has joined
    });
    endpoint.join();
    return app.exec();
}
