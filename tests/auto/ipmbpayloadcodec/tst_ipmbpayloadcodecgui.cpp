// SPDX-License-Identifier: BSD-3-Clause
// The codec in a process that links QtGui: QtGui's type ids become readable, and the types whose
// Qt 6.4 stream operators are unsafe on hostile bytes must be refused (see doc/payloads.md).
#include "ipmbpayloadcodec_p.h"
#include "payloadcodectest.h"

#include <QtCore/qdatastream.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qendian.h>
#include <QtGui/qbrush.h>
#include <QtGui/qcolor.h>
#include <QtGui/qcolorspace.h>
#include <QtGui/qfont.h>
#include <QtGui/qguiapplication.h>
#include <QtGui/qicon.h>
#include <QtGui/qimage.h>
#include <QtGui/qkeysequence.h>
#include <QtGui/qmatrix4x4.h>
#include <QtGui/qpalette.h>
#include <QtGui/qpen.h>
#include <QtGui/qpixmap.h>
#include <QtGui/qpolygon.h>
#include <QtGui/qquaternion.h>
#include <QtGui/qregion.h>
#include <QtGui/qtextformat.h>
#include <QtGui/qtransform.h>
#include <QtGui/qvector2d.h>
#include <QtGui/qvector3d.h>
#include <QtGui/qvector4d.h>
#include <QtTest/qtest.h>

using IpmbPayloadCodec::Decoded;
using IpmbPayloadCodec::Status;


// A user type that holds a QVariant: Qt's QVariant::load() reads it, under the codec's device.
struct Holder
{
    QVariant value;
    friend bool operator==(const Holder &a, const Holder &b) { return a.value == b.value; }
};
QDataStream &operator<<(QDataStream &stream, const Holder &h) { return stream << h.value; }
QDataStream &operator>>(QDataStream &stream, Holder &h) { return stream >> h.value; }
Q_DECLARE_METATYPE(Holder)

namespace {

// What Qt itself writes for a value, in the codec's stream settings (encode() refuses these).
QByteArray qtStreamed(const QVariant &value)
{
    QByteArray bytes;
    QDataStream stream(&bytes, QIODevice::WriteOnly);
    stream.setVersion(QDataStream::Qt_6_4);
    stream.setByteOrder(QDataStream::LittleEndian);
    value.metaType().save(stream, value.constData());
    return bytes;
}

QByteArray withName(QByteArrayView name, const QByteArray &valueBytes)
{
    return char(name.size()) + name.toByteArray() + valueBytes;
}

QByteArray variantHeader(int typeId)
{
    return le32(quint32(typeId)) + '\0';
}

} // namespace

class tst_IpmbPayloadCodecGui : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void refused_data();
    void refused();
    void accepted_data();
    void accepted();
    void polygonCount();
};

void tst_IpmbPayloadCodecGui::initTestCase()
{
    qRegisterMetaType<Holder>();
}

void tst_IpmbPayloadCodecGui::refused_data()
{
    QTest::addColumn<QVariant>("value");

    QImage image(4, 4, QImage::Format_ARGB32);
    image.fill(Qt::red);
    QTest::newRow("QFont") << QVariant(QFont(QStringLiteral("Sans"), 12));
    QTest::newRow("QImage") << QVariant(image);
    QTest::newRow("QPixmap") << QVariant(QPixmap::fromImage(image));
    QTest::newRow("QBitmap") << QVariant::fromValue(QBitmap(4, 4));
    QTest::newRow("QIcon") << QVariant(QIcon(QPixmap::fromImage(image)));
    QTest::newRow("QBrush") << QVariant(QBrush(Qt::blue));
    QTest::newRow("QPen") << QVariant(QPen(Qt::blue));
    QTest::newRow("QPalette") << QVariant(QPalette(Qt::gray));
    QTest::newRow("QCursor-id") << QVariant(QMetaType(QMetaType::QCursor));
    QTest::newRow("QRegion") << QVariant(QRegion(0, 0, 4, 4));
    QTest::newRow("QTextFormat") << QVariant(QTextFormat(QTextFormat::CharFormat));
    QTest::newRow("QColorSpace") << QVariant(QColorSpace(QColorSpace::SRgb));
}

void tst_IpmbPayloadCodecGui::refused()
{
    QFETCH(QVariant, value);

    const QByteArray name = value.metaType().name();
    const QByteArray valueBytes = qtStreamed(value);
    const QString mentions = QString::fromLatin1(name);

    // A sender is told before anything travels.
    QByteArray out;
    QString why;
    QVERIFY(!IpmbPayloadCodec::encode(value, out, &why));
    QVERIFY2(why.contains(mentions) && why.contains(QStringLiteral("refuse")), qPrintable(why));

    // A receiver refuses the value at the top level, in a QVariantList, and inside a user type
    // (where Qt's QVariant::load() reads it).
    const QList<std::pair<const char *, QByteArray>> payloads{
        {"top-level", withName(name, valueBytes)},
        {"in-QVariantList", withName("QVariantList", le32(1) + variantHeader(value.metaType().id()) + valueBytes)},
        {"in-user-type", withName("Holder", variantHeader(value.metaType().id()) + valueBytes)},
    };
    for (const auto &[where, bytes] : payloads) {
        const Decoded decoded = IpmbPayloadCodec::decode(bytes);
        QVERIFY2(decoded.status == Status::UnknownType,
                 qPrintable(QStringLiteral("%1: %2").arg(QLatin1String(where), decoded.errorString)));
        QVERIFY(!decoded.value.isValid());
        QVERIFY2(decoded.errorString.contains(mentions) && decoded.errorString.contains(QStringLiteral("refuse")),
                 qPrintable(decoded.errorString));
    }
}

void tst_IpmbPayloadCodecGui::accepted_data()
{
    QTest::addColumn<QVariant>("value");

    QTest::newRow("QColor") << QVariant(QColor(10, 20, 30, 40));
    QTest::newRow("QColor-extended") << QVariant(QColor::fromRgbF(1.5f, -0.5f, 0.25f));
    QTest::newRow("QPolygon") << QVariant(QPolygon(QList<QPoint>{{1, 2}, {3, 4}}));
    QTest::newRow("QPolygonF") << QVariant(QPolygonF(QList<QPointF>{{1.5, 2}, {3, 4.5}}));
    QTest::newRow("QKeySequence") << QVariant(QKeySequence(QStringLiteral("Ctrl+K, Ctrl+D")));
    QTest::newRow("QTextLength") << QVariant(QTextLength(QTextLength::PercentageLength, 50));
    QTest::newRow("QTransform") << QVariant(QTransform().rotate(30).scale(2, 3));
    QTest::newRow("QMatrix4x4") << QVariant(QMatrix4x4(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16));
    QTest::newRow("QVector2D") << QVariant(QVector2D(1, 2));
    QTest::newRow("QVector3D") << QVariant(QVector3D(1, 2, 3));
    QTest::newRow("QVector4D") << QVariant(QVector4D(1, 2, 3, 4));
    QTest::newRow("QQuaternion") << QVariant(QQuaternion(1, 2, 3, 4));
    QTest::newRow("in-QVariantList") << QVariant(QVariantList{QColor(Qt::red), QVector3D(1, 2, 3)});
    QTest::newRow("in-user-type") << QVariant::fromValue(Holder{QColor(Qt::green)});
}

void tst_IpmbPayloadCodecGui::accepted()
{
    QFETCH(QVariant, value);

    QByteArray bytes;
    QString why;
    QVERIFY2(IpmbPayloadCodec::encode(value, bytes, &why), qPrintable(why));
    const Decoded decoded = IpmbPayloadCodec::decode(bytes);
    QVERIFY2(decoded.status == Status::Ok, qPrintable(decoded.errorString));
    QCOMPARE(decoded.value, value);
}

void tst_IpmbPayloadCodecGui::polygonCount()
{
    // A QPolygon(F) is a QList of points: Qt's operator>> reserves from the count.
    QElapsedTimer timer;
    timer.start();
    for (const char *name : {"QPolygon", "QPolygonF"}) {
        const Decoded decoded = IpmbPayloadCodec::decode(withName(name, le32(0xffffffff) + QByteArray(16, '\1')));
        QCOMPARE(decoded.status, Status::Malformed);
        QVERIFY2(decoded.errorString.contains(QStringLiteral("more points")), qPrintable(decoded.errorString));
    }
    const Decoded nested = IpmbPayloadCodec::decode(
            withName("Holder", variantHeader(QMetaType::QPolygonF) + le32(0xffffffff) + QByteArray(16, '\1')));
    QCOMPARE(nested.status, Status::Malformed);
    QVERIFY(timer.elapsed() < 5000);
}

int main(int argc, char *argv[])
{
    // QPixmap and QIcon need a QGuiApplication; no display is needed.
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    QGuiApplication app(argc, argv);
    tst_IpmbPayloadCodecGui test;
    return QTest::qExec(&test, argc, argv);
}

#include "tst_ipmbpayloadcodecgui.moc"
