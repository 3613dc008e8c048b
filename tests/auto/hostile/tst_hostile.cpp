// SPDX-License-Identifier: BSD-3-Clause
// The bus attacked from outside: by a process of another user, and by raw peers of the same user
// that speak the wire protocol (this test process). Each test reproduces one hole that an outside
// check found (the issue "Trust") and checks that the offender gets nothing and the bus goes on.

#include "ipmbtestpeer.h"

#include <IpmbQt/IpmbEndpoint>

#include "ipmbplatform_p.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qdir.h>
#include <QtTest/qtest.h>

#include <sys/stat.h>
#include <unistd.h>

using namespace IpmbTest;

class tst_Hostile : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void otherUserRacesTheElection();
    void unsafeBusDirectory_data();
    void unsafeBusDirectory();
};

// The address a squatter aims at: the one this user's endpoints use for `bus`.
static QByteArray squatAddress(const QString &bus)
{
    return busAddressOf(bus);
}

// Hole 1: another user binds the bus address while the controller is dead, and the bus never
// comes back. Here a process of uid 65534 tries to bind it in a tight loop while the controller is
// killed; the survivors must elect one of themselves every time.
void tst_Hostile::otherUserRacesTheElection()
{
    if (::geteuid() != 0)
        QSKIP("needs root to run a helper as another uid (setpriv --reuid=65534)");
    OtherUser nobody;
    QVERIFY2(nobody.isValid(), "setpriv (util-linux) is missing, or no temporary directory");
    constexpr int Trials = 20;
    for (int trial = 0; trial < Trials; ++trial) {
        const QString bus = uniqueBusName();
        Peer a, b, c, squatter;
        QVERIFY(a.join(bus, QStringLiteral("a")));
        QVERIFY(a.isController());
        QVERIFY(b.join(bus, QStringLiteral("b")));
        QVERIFY(c.join(bus, QStringLiteral("c")));
        nobody.start(squatter, {QStringLiteral("--squat-loop"), QString::fromUtf8(squatAddress(bus))});
        QVERIFY(!squatter.waitFor("squatting").isEmpty());
        a.kill();
        const QByteArray rejoinedB = b.waitFor("joined", 10000);
        const QByteArray rejoinedC = c.waitFor("joined", 10000);
        QVERIFY2(!squatter.hasPrinted("won"), qPrintable(QStringLiteral("trial %1: uid 65534 won the address").arg(trial)));
        QVERIFY2(!rejoinedB.isEmpty() && !rejoinedC.isEmpty(),
                 qPrintable(QStringLiteral("trial %1: a survivor did not rejoin").arg(trial)));
        QCOMPARE(int(field(rejoinedB, "controller") == "1") + int(field(rejoinedC, "controller") == "1"), 1);
        b.command("send unicast c 0 str trial-" + QByteArray::number(trial));
        QCOMPARE(field(c.waitFor("received"), "value"), "trial-" + QByteArray::number(trial));
    }
}

// The bus directory is where hole 1 was closed: anything but a directory of ours, closed to others,
// is refused with a PermissionError that says what is wrong, and nothing is created through it.
void tst_Hostile::unsafeBusDirectory_data()
{
    QTest::addColumn<QString>("kind");
    QTest::addColumn<QByteArray>("reason");
    QTest::addRow("open to others") << QStringLiteral("mode0755") << QByteArray("is open to other users (mode 0755");
    QTest::addRow("a symbolic link") << QStringLiteral("symlink") << QByteArray("is a symbolic link");
    QTest::addRow("a file") << QStringLiteral("file") << QByteArray("is not a directory");
    if (::geteuid() == 0) // only root can give a directory away
        QTest::addRow("another user's") << QStringLiteral("foreign") << QByteArray("belongs to uid 65534");
}

void tst_Hostile::unsafeBusDirectory()
{
    QFETCH(QString, kind);
    QFETCH(QByteArray, reason);
    QTemporaryDir runtime;
    QVERIFY(runtime.isValid());
    const QString directory = runtime.filePath(QStringLiteral("ipmbqt"));
    const QByteArray path = QFile::encodeName(directory);
    if (kind == QLatin1String("mode0755")) {
        QVERIFY(::mkdir(path.constData(), 0755) == 0 && ::chmod(path.constData(), 0755) == 0);
    } else if (kind == QLatin1String("symlink")) {
        QVERIFY(::mkdir(QFile::encodeName(runtime.filePath(QStringLiteral("elsewhere"))).constData(), 0700) == 0);
        QVERIFY(QFile::link(runtime.filePath(QStringLiteral("elsewhere")), directory));
    } else if (kind == QLatin1String("file")) {
        QFile file(directory);
        QVERIFY(file.open(QIODevice::WriteOnly));
    } else {
        QVERIFY(::mkdir(path.constData(), 0700) == 0 && ::chown(path.constData(), 65534, 65534) == 0);
    }
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("XDG_RUNTIME_DIR"), runtime.path());
    Peer peer;
    peer.start({QStringLiteral("--bus"), uniqueBusName(), QStringLiteral("--label"), QStringLiteral("p")},
               QStringLiteral(IPMBQT_PEER), env);
    const QByteArray line = peer.waitFor("error");
    QVERIFY2(line.startsWith("error PermissionError The bus directory " + path + ' ' + reason), line.constData());
    QVERIFY(!peer.waitFor("state UnjoinedState").isEmpty());
    QCOMPARE(QDir(runtime.filePath(QStringLiteral("elsewhere"))).entryList(QDir::NoDotAndDotDot | QDir::AllEntries),
             QStringList());
}

QTEST_MAIN(tst_Hostile)
#include "tst_hostile.moc"
