// SPDX-License-Identifier: BSD-3-Clause
// Qt Quick Test suite of `import IpmbQt` (data/tst_*.qml). Before the QML runs, a C++ helper
// process (echopeer) joins a bus of its own; the QML tests talk to it through the real bus.
#include <QtCore/qprocess.h>
#include <QtCore/quuid.h>
#include <QtQml/qqmlengine.h>
#include <QtQuickTest/quicktest.h>

#include <memory>

// What the QML tests read as TestBus.identifier and TestBus.echoPid.
class TestBus : public QObject
{
    Q_OBJECT
    Q_PROPERTY(QString identifier MEMBER m_identifier CONSTANT)
    Q_PROPERTY(qint64 echoPid MEMBER m_echoPid CONSTANT)

public:
    QString m_identifier = QStringLiteral("ipmbqt.qmltest.") + QUuid::createUuid().toString(QUuid::WithoutBraces);
    qint64 m_echoPid = -1;
};

class Setup : public QObject
{
    Q_OBJECT

public Q_SLOTS:
    void qmlEngineAvailable(QQmlEngine *engine)
    {
        engine->addImportPath(QStringLiteral(IPMBQT_QML_IMPORT_DIR));
        if (!m_echo) {
            m_echo = std::make_unique<QProcess>();
            m_echo->setProcessChannelMode(QProcess::ForwardedErrorChannel);
            m_echo->start(QStringLiteral(IPMBQT_ECHO_PEER), {m_bus.m_identifier});
            // Bounded: the peer prints its line once joined, or the tests fail on their own.
            QByteArray line;
            while (!line.endsWith('\n') && m_echo->waitForReadyRead(15000))
                line += m_echo->readAllStandardOutput();
            if (line.startsWith("joined pid="))
                m_bus.m_echoPid = line.mid(11).trimmed().toLongLong();
            else
                qWarning("echopeer did not join: %s", line.constData());
        }
        qmlRegisterSingletonInstance("IpmbQtTest", 1, 0, "TestBus", &m_bus);
    }

    void cleanupTestCase()
    {
        if (m_echo) {
            m_echo->closeWriteChannel(); // the peer quits when its stdin closes
            if (!m_echo->waitForFinished(5000))
                m_echo->kill();
        }
    }

private:
    TestBus m_bus;
    std::unique_ptr<QProcess> m_echo;
};

QUICK_TEST_MAIN_WITH_SETUP(tst_qml, Setup)

#include "tst_qml.moc"
