// SPDX-License-Identifier: BSD-3-Clause
// pong: answers every "ping" with "pong". Start it, then start ping in another terminal.
#include <IpmbQt/IpmbEndpoint>

#include <QtCore/QCoreApplication>

using namespace Qt::StringLiterals;

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    IpmbEndpoint endpoint;
    endpoint.setIdentifier(u"com.example.pingpong"_s);
    endpoint.setLabel({u"pong"_s});
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, [&](const IpmbMessage &message) {
        qInfo() << "pong: got" << message.payload().toInt() << "from pid" << message.senderPid();
        endpoint.send(IpmbSelector::unicast(IpmbLabelOp("ping")), message.payload().toInt());
    });
    QObject::connect(&endpoint, &IpmbEndpoint::errorOccurred, [&] {
        qWarning() << "pong:" << endpoint.errorString();
        app.exit(1);
    });
    endpoint.join();
    return app.exec();
}
