// SPDX-License-Identifier: BSD-3-Clause
// ping: sends numbers to "pong" and prints the round-trip time of each answer.
#include <IpmbQt/IpmbEndpoint>

#include <QtCore/QCoreApplication>
#include <QtCore/QElapsedTimer>

using namespace Qt::StringLiterals;

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    IpmbEndpoint endpoint;
    endpoint.setIdentifier(u"com.example.pingpong"_s);
    endpoint.setLabel({u"ping"_s});
    const IpmbSelector toPong = IpmbSelector::unicast(IpmbLabelOp("pong"), std::chrono::seconds(5));
    QElapsedTimer timer;
    QObject::connect(&endpoint, &IpmbEndpoint::joined, [&] {
        timer.start();
        endpoint.send(toPong, 1);
    });
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, [&](const IpmbMessage &message) {
        const int n = message.payload().toInt();
        qInfo() << "ping: answer" << n << "after" << timer.nsecsElapsed() / 1000 << "us";
        if (n == 10)
            return app.quit();
        timer.start();
        endpoint.send(toPong, n + 1);
    });
    QObject::connect(&endpoint, &IpmbEndpoint::errorOccurred, [&] {
        qWarning() << "ping:" << endpoint.errorString();
        app.exit(1);
    });
    endpoint.join();
    return app.exec();
}
