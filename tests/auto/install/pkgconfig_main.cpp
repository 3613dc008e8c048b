// SPDX-License-Identifier: BSD-3-Clause
// Built with nothing but `g++ pkgconfig_main.cpp $(pkg-config --cflags --libs ipmbqt)` against an
// installed IpmbQt (installcheck.cmake, tests/package/checkdeb.sh): joins the bus named by argv[1],
// sends itself a message, and prints what came back.
#include <IpmbQt/IpmbEndpoint>
#include <IpmbQt/IpmbLabelOp>
#include <IpmbQt/IpmbMessage>
#include <IpmbQt/IpmbSelector>

#include <QtCore/qcoreapplication.h>
#include <QtCore/qtimer.h>

#include <cstdio>

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s BUS\n", argv[0]);
        return 2;
    }
    IpmbEndpoint endpoint;
    endpoint.setIdentifier(QString::fromLocal8Bit(argv[1]));
    endpoint.setLabel({QStringLiteral("pkgconfig")});
    QObject::connect(&endpoint, &IpmbEndpoint::joined, &endpoint, [&endpoint] {
        if (!endpoint.send(IpmbSelector::unicast(IpmbLabelOp("pkgconfig")), QStringLiteral("hello")))
            QCoreApplication::exit(4);
    });
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, &app, [](const IpmbMessage &message) {
        std::printf("pkg-config build of IpmbQt %s: received %s\n", IPMBQT_VERSION_STR,
                    qPrintable(message.payload().toString()));
        QCoreApplication::exit(message.payload().toString() == QLatin1String("hello") ? 0 : 5);
    });
    QObject::connect(&endpoint, &IpmbEndpoint::errorOccurred, &app, [&endpoint] {
        std::fprintf(stderr, "error: %s\n", qPrintable(endpoint.errorString()));
        QCoreApplication::exit(6);
    });
    QTimer::singleShot(20000, &app, [] {
        std::fprintf(stderr, "timed out\n");
        QCoreApplication::exit(3);
    });
    endpoint.join();
    return app.exec();
}
