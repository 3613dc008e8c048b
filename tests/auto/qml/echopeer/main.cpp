// SPDX-License-Identifier: BSD-3-Clause
// The C++ side of the QML tests: joins the bus given as the first argument with the label "echo",
// prints "joined pid=<pid>", and answers every message by a multicast to "qmltest":
//   payload "frame"      -> a 4x4 red image in a memory region, described for SharedImage
//   payload "badframe"   -> the same region, described as larger than it is
//   anything else        -> {echo: <payload>, type: <payload type name>, pid: <this pid>}
// A request is answered with reply() instead: "re:<payload>" ({echo: <payload>} for an object),
// except the payload "stall", which
// gets no answer (it is held until the peer quits).
// It quits when its stdin closes (the test ended).
#include <IpmbQt/IpmbEndpoint>
#include <IpmbQt/IpmbMemoryRegion>

#include <ipmbqmlsharedimage.h>

#include <QtCore/qcoreapplication.h>
#include <QtCore/qsocketnotifier.h>
#include <QtGui/qguiapplication.h>
#include <QtGui/qimage.h>

#include <cstdio>
#include <cstring>
#include <unistd.h>

int main(int argc, char **argv)
{
    QGuiApplication app(argc, argv);
    if (app.arguments().size() < 2)
        return 2;
    IpmbEndpoint endpoint;
    endpoint.setIdentifier(app.arguments().at(1));
    endpoint.setLabel({QStringLiteral("echo")});
    const IpmbSelector back = IpmbSelector::multicast(IpmbLabelOp("qmltest"));

    QObject::connect(&endpoint, &IpmbEndpoint::joined, [] {
        std::printf("joined pid=%lld\n", static_cast<long long>(QCoreApplication::applicationPid()));
        std::fflush(stdout);
    });
    QObject::connect(&endpoint, &IpmbEndpoint::errorOccurred, [&endpoint](IpmbEndpoint::Error) {
        std::fprintf(stderr, "echopeer: %s\n", qPrintable(endpoint.errorString()));
    });
    QList<IpmbMessage> stalled;
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, [&](const IpmbMessage &message) {
        const QVariant payload = message.payload();
        if (message.isRequest()) {
            if (payload == QVariant(QStringLiteral("stall")))
                stalled.append(message);
            else if (payload.metaType() == QMetaType::fromType<QVariantMap>())
                endpoint.reply(message, QVariantMap{{QStringLiteral("echo"), payload}});
            else
                endpoint.reply(message, QStringLiteral("re:") + payload.toString());
            return;
        }
        if (payload == QVariant(QStringLiteral("frame")) || payload == QVariant(QStringLiteral("badframe"))) {
            QImage image(4, 4, QImage::Format_ARGB32_Premultiplied);
            image.fill(Qt::red);
            IpmbMemoryRegion region = IpmbMemoryRegion::create(image.sizeInBytes());
            std::memcpy(region.data(), image.constBits(), size_t(image.sizeInBytes()));
            QVariantMap description = IpmbQmlSharedImage::describe(image);
            if (payload == QVariant(QStringLiteral("badframe")))
                description[QStringLiteral("height")] = 4096; // a sender that lies about the size
            IpmbMessage reply(back, description);
            reply.addRegion(region);
            endpoint.send(reply);
            return;
        }
        endpoint.send(back, QVariantMap{{QStringLiteral("echo"), payload},
                                        {QStringLiteral("type"), QString::fromLatin1(message.payloadTypeName())},
                                        {QStringLiteral("pid"), QCoreApplication::applicationPid()}});
    });
    QSocketNotifier stdinClosed(STDIN_FILENO, QSocketNotifier::Read);
    QObject::connect(&stdinClosed, &QSocketNotifier::activated, [&] {
        char buffer[256];
        if (::read(STDIN_FILENO, buffer, sizeof buffer) <= 0)
            app.quit();
    });
    endpoint.join();
    return app.exec();
}
