// SPDX-License-Identifier: BSD-3-Clause
// The IpmbQt demo: the sun starts earth, mars and the moon as separate processes on one bus.
// The moon says hello to the earth (unicast) and tells every planet its orbit (multicast with a
// user type); then the sun says goodbye to everybody and all exit.
#include <IpmbQt/IpmbEndpoint>

#include <QtCore/QCoreApplication>
#include <QtCore/QProcess>
#include <QtCore/QTimer>

using namespace Qt::StringLiterals;

struct Orbit  // any Q_GADGET (or plain struct) with QDataStream operators can travel
{
    Q_GADGET
public:
    QString around;
    double days = 0;
    friend QDataStream &operator<<(QDataStream &s, const Orbit &o) { return s << o.around << o.days; }
    friend QDataStream &operator>>(QDataStream &s, Orbit &o) { return s >> o.around >> o.days; }
};
Q_DECLARE_METATYPE(Orbit)

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    qRegisterMetaType<Orbit>();  // so that a receiving process can decode it
    const QString role = app.arguments().value(1, u"sun"_s);
    auto say = [role](const QString &text) { qInfo().noquote() << u"[%1]"_s.arg(role, -5) << text; };

    IpmbEndpoint endpoint;
    endpoint.setIdentifier(u"com.example.solar"_s);
    endpoint.setLabel(role == "sun"_L1 ? IpmbLabel{u"sun"_s}
                      : role == "moon"_L1 ? IpmbLabel{u"moon"_s}
                                          : IpmbLabel{u"planet"_s, role});
    QTimer::singleShot(30000, &app, [&] { say(u"timed out"_s); app.exit(1); });
    QObject::connect(&endpoint, &IpmbEndpoint::errorOccurred, [&] { say(endpoint.errorString()); app.exit(1); });

    int ready = 0, done = 0;
    QList<QProcess *> children;
    QObject::connect(&endpoint, &IpmbEndpoint::joined, [&] {
        say(endpoint.isController() ? u"joined, and I am the bus controller"_s : u"joined"_s);
        if (role != "sun"_L1) {
            endpoint.send(IpmbSelector::unicast(IpmbLabelOp("sun")), u"ready"_s);
            return;
        }
        for (const QString &child : {u"earth"_s, u"mars"_s, u"moon"_s}) {
            auto *process = new QProcess(&app);
            process->setProcessChannelMode(QProcess::ForwardedChannels);
            process->start(QCoreApplication::applicationFilePath(), {child});
            children << process;
        }
    });

    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, [&](const IpmbMessage &m) {
        const QString from = m.senderLabel().toStringList().join(u',');
        if (m.payload().metaType() == QMetaType::fromType<Orbit>()) {
            const Orbit o = m.payload().value<Orbit>();
            say(u"%1 told every [%2]: I orbit %3 every %4 days"_s
                        .arg(from, m.selector().labelOp().toString(), o.around).arg(o.days));
            endpoint.send(IpmbSelector::unicast(IpmbLabelOp("sun")), u"done"_s);
            return;
        }
        const QString text = m.payload().toString();
        say(u"got \"%1\" from %2 (pid %3) via %4"_s.arg(text, from).arg(m.senderPid())
                    .arg(m.selector().labelOp().toString()));
        if (text == "ready"_L1 && ++ready == 3)
            endpoint.send(IpmbSelector::unicast(IpmbLabelOp("moon")), u"go"_s);
        else if (text == "go"_L1) {
            endpoint.send(IpmbSelector::unicast(IpmbLabelOp("earth")), u"hello world"_s);
            const IpmbLabelOp planets = IpmbLabelOp("planet") && !IpmbLabelOp("moon");
            endpoint.send(IpmbSelector::multicast(planets), QVariant::fromValue(Orbit{u"the earth"_s, 27.3}));
        } else if (text == "done"_L1 && ++done == 2)
            endpoint.send(IpmbSelector::multicast(IpmbLabelOp::matchAll()), u"goodbye"_s);
        else if (text == "goodbye"_L1 && role != "sun"_L1)
            app.quit();
        else if (text == "goodbye"_L1) {
            for (QProcess *p : children)
                p->waitForFinished(5000);
            say(u"everybody said goodbye; bye"_s);
            app.quit();
        }
    });
    endpoint.join();
    return app.exec();
}

#include "main.moc"
