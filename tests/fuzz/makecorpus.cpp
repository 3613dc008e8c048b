// SPDX-License-Identifier: BSD-3-Clause
// Writes the seed corpus of the fuzz targets with the library's own encoders:
//   makecorpus <dir>   ->   <dir>/frame, <dir>/selector, <dir>/labelop, <dir>/payload
// ./dev.sh fuzz does not run it; the corpus in tests/fuzz/corpus is its output, committed. Run it
// again (and commit) when a format changes: build/tests/fuzz/makecorpus tests/fuzz/corpus

#include "fuzzcommon.h"
#include "ipmbpayloadcodec_p.h"
#include "ipmbprotocol_p.h"
#include "ipmbselectorcodec_p.h"

#include <QtCore/qbitarray.h>
#include <QtCore/qcborarray.h>
#include <QtCore/qcbormap.h>
#include <QtCore/qdatetime.h>
#include <QtCore/qdir.h>
#include <QtCore/qeasingcurve.h>
#include <QtCore/qfile.h>
#include <QtCore/qjsonarray.h>
#include <QtCore/qjsondocument.h>
#include <QtCore/qjsonobject.h>
#include <QtCore/qline.h>
#include <QtCore/qlocale.h>
#include <QtCore/qrect.h>
#include <QtCore/qregularexpression.h>
#include <QtCore/qtimezone.h>
#include <QtCore/qurl.h>
#include <QtCore/quuid.h>

#include <chrono>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

QDir outDir;

void write(const QString &target, const QString &name, const QByteArray &bytes)
{
    outDir.mkpath(target);
    QFile file(outDir.filePath(target + QLatin1Char('/') + name));
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate) || file.write(bytes) != bytes.size())
        qFatal("cannot write %s", qPrintable(file.fileName()));
}

std::vector<std::pair<QString, IpmbLabelOp>> ops()
{
    const IpmbLabelOp a("renderer"), b("gpu0"), c(QStringLiteral("gr\u00fc\u00dfe")), d("with \"quotes\" \\");
    return {
        {QStringLiteral("true"), IpmbLabelOp::matchAll()},
        {QStringLiteral("false"), IpmbLabelOp::matchNone()},
        {QStringLiteral("leaf"), a},
        {QStringLiteral("leaf-unicode"), c},
        {QStringLiteral("leaf-quoted"), d},
        {QStringLiteral("leaf-empty"), IpmbLabelOp(QString())},
        {QStringLiteral("not"), !a},
        {QStringLiteral("and"), a && !b},
        {QStringLiteral("or"), a || b},
        {QStringLiteral("mixed"), (a || b) && !(c || d) && IpmbLabelOp::matchAll()},
        {QStringLiteral("right-nested"), a || (b || (c && (d || !a)))},
        {QStringLiteral("deep-not"), !!!!!!!!a},
    };
}

std::vector<std::pair<QString, IpmbLabel>> labels()
{
    return {
        {QStringLiteral("empty"), IpmbLabel()},
        {QStringLiteral("one"), IpmbLabel{QStringLiteral("renderer")}},
        {QStringLiteral("three"), IpmbLabel{QStringLiteral("a"), QStringLiteral("gpu0"), QStringLiteral("\u00fc")}},
    };
}

std::vector<std::pair<QString, QVariant>> payloads()
{
    const QDate date(2026, 12, 24);
    const QTime time(18, 30, 15, 250);
    const QJsonObject json{{QStringLiteral("name"), QStringLiteral("bus")},
                           {QStringLiteral("list"), QJsonArray{1, 2.5, true, QJsonValue()}}};
    FuzzBag bag{QStringLiteral("bag"), {{QStringLiteral("n"), 1}, {QStringLiteral("l"), QVariantList{2.5, QByteArray("x")}}}};
    return {
        {QStringLiteral("null"), QVariant()},
        {QStringLiteral("bool"), QVariant(true)},
        {QStringLiteral("int"), QVariant(-42)},
        {QStringLiteral("qint64"), QVariant(std::numeric_limits<qint64>::min())},
        {QStringLiteral("double"), QVariant(3.25)},
        {QStringLiteral("float"), QVariant(1.5f)},
        {QStringLiteral("QString"), QVariant(QStringLiteral("hello, bus \u00fc"))},
        {QStringLiteral("QByteArray"), QVariant(QByteArray("\0\1\2bytes", 8))},
        {QStringLiteral("QChar"), QVariant(QChar(0x20ac))},
        {QStringLiteral("QStringList"), QVariant(QStringList{QStringLiteral("a"), QString(), QStringLiteral("c")})},
        {QStringLiteral("QByteArrayList"), QVariant::fromValue(QByteArrayList{"a", QByteArray(), ""})},
        {QStringLiteral("QVariantList"), QVariant(QVariantList{1, QStringLiteral("two"), QVariant(), QVariantList{3}})},
        {QStringLiteral("QVariantMap"), QVariant(QVariantMap{{QStringLiteral("k"), 1}, {QStringLiteral("m"), QVariantMap{{QStringLiteral("x"), 2.0}}}})},
        {QStringLiteral("QVariantHash"), QVariant(QVariantHash{{QStringLiteral("a"), 1.5}})},
        {QStringLiteral("QVariantPair"), QVariant::fromValue(QVariantPair(1, QStringLiteral("one")))},
        {QStringLiteral("QBitArray"), QVariant(QBitArray(13, true))},
        {QStringLiteral("QDateTime-utc"), QVariant(QDateTime(date, time, Qt::UTC))},
        {QStringLiteral("QDateTime-offset"), QVariant(QDateTime(date, time, Qt::OffsetFromUTC, 5 * 3600 + 1800))},
        {QStringLiteral("QDateTime-local"), QVariant(QDateTime(date, time, Qt::LocalTime))},
        {QStringLiteral("QDateTime-zone"), QVariant(QDateTime(date, time, QTimeZone("UTC+01:00")))},
        {QStringLiteral("QDate"), QVariant(date)},
        {QStringLiteral("QTime"), QVariant(time)},
        {QStringLiteral("QUuid"), QVariant(QUuid(QStringLiteral("{67c8770b-44f1-410a-ab9a-f9b5446f13ee}")))},
        {QStringLiteral("QUrl"), QVariant(QUrl(QStringLiteral("https://user@example.com:8443/a%20b?q=1#frag")))},
        {QStringLiteral("QRectF"), QVariant(QRectF(1.5, 2.5, 300.75, 200.125))},
        {QStringLiteral("QLine"), QVariant(QLine(1, 2, 3, 4))},
        {QStringLiteral("QLocale"), QVariant(QLocale(QLocale::German, QLocale::Switzerland))},
        {QStringLiteral("QRegularExpression"), QVariant(QRegularExpression(QStringLiteral("^a(b+)c$")))},
        {QStringLiteral("QEasingCurve"), QVariant(QEasingCurve(QEasingCurve::InOutQuad))},
        {QStringLiteral("QJsonDocument"), QVariant(QJsonDocument(json))},
        {QStringLiteral("QJsonValue"), QVariant(QJsonValue(QStringLiteral("s")))},
        {QStringLiteral("QCborMap"), QVariant::fromValue(QCborMap{{1, QStringLiteral("one")}, {QStringLiteral("two"), 2.0}})},
        {QStringLiteral("TestPoint"), QVariant::fromValue(TestPoint{3, -4, QStringLiteral("p")})},
        {QStringLiteral("FuzzBag"), QVariant::fromValue(bag)},
        {QStringLiteral("list-of-user-types"), QVariant(QVariantList{QVariant::fromValue(TestPoint{1, 2, {}}), QVariant::fromValue(bag)})},
    };
}

QByteArray encodePayload(const QVariant &value)
{
    QByteArray bytes;
    QString why;
    if (!IpmbPayloadCodec::encode(value, bytes, &why))
        qFatal("cannot encode %s: %s", value.typeName(), qPrintable(why));
    return bytes;
}

// What the controller forwards: appendMessage()'s frame with a sender block in front of the body.
QByteArray forwarded(const QByteArray &message, const QByteArray &senderBlock)
{
    std::optional<IpmbProtocol::Header> header = IpmbProtocol::parseHeader(message.constData(), nullptr);
    header->senderLength = quint32(senderBlock.size());
    header->bodyLength += header->senderLength;
    QByteArray out(IpmbProtocol::HeaderSize, Qt::Uninitialized);
    IpmbProtocol::writeHeader(out.data(), *header);
    return out + senderBlock + message.mid(IpmbProtocol::HeaderSize);
}

void writeFrames()
{
    const QString t = QStringLiteral("frame");
    const IpmbLabel label{QStringLiteral("renderer"), QStringLiteral("gpu0")};
    QByteArray hello, welcome, refuse, dropped;
    IpmbProtocol::appendHello(hello, IpmbProtocol::Hello::first(QByteArray(32, 'k'), label));
    IpmbProtocol::appendWelcome(welcome, 7, 4242);
    IpmbProtocol::appendRefuse(refuse, IpmbErrorCode::TokenMismatch, QStringLiteral("bad token"));
    IpmbProtocol::appendDropped(dropped, 3);
    write(t, QStringLiteral("hello"), hello);
    write(t, QStringLiteral("welcome"), welcome);
    write(t, QStringLiteral("refuse"), refuse);
    write(t, QStringLiteral("dropped"), dropped);
    // Presence: a list of two, a join, a leave, and a Watch.
    QByteArray peers, watch;
    IpmbProtocol::appendPeer(peers, IpmbProtocol::PeerEvent::Present, IpmbProtocol::PeerHostsController, 1764650000000,
                             IpmbProtocol::senderBlock(5, 4241, 1000, label));
    IpmbProtocol::appendPeer(peers, IpmbProtocol::PeerEvent::Present, 0, 1764650000100,
                             IpmbProtocol::senderBlock(6, 4243, 1000, IpmbLabel{QStringLiteral("viewer")}));
    IpmbProtocol::appendPeerListEnd(peers);
    IpmbProtocol::appendPeer(peers, IpmbProtocol::PeerEvent::Joined, 0, 1764650000200,
                             IpmbProtocol::senderBlock(8, 4244, 1000, label));
    IpmbProtocol::appendPeerLeft(peers, 6);
    IpmbProtocol::appendWatch(watch, IpmbProtocol::WatchPeers);
    write(t, QStringLiteral("peers"), peers);
    write(t, QStringLiteral("watch"), watch);
    // Monitors: the Monitoring notice, and an Observed as an endpoint and as the controller write it.
    QByteArray monitoring, observed, observedForwarded, observedSelector;
    IpmbProtocol::appendMonitoring(monitoring, 1);
    write(t, QStringLiteral("monitoring"), monitoring);
    IpmbSelectorCodec::appendSelector(observedSelector, IpmbSelector::unicast(IpmbLabelOp("viewer")));
    IpmbProtocol::Observation observation;
    observation.path = IpmbProtocol::Observation::OnChannel;
    observation.target = 6;
    observation.deliveries = 1;
    observation.payloadLength = 1 + 7 + 10;
    const QByteArray text("\x07QStringh\0e\0l\0l\0o\0", 18);
    IpmbProtocol::appendObserved(observed, observation, {}, observedSelector, text);
    write(t, QStringLiteral("observed"), observed);
    observation.payloadLength = 1 + 7 + 1000;  // only the start came along
    IpmbProtocol::appendObserved(observedForwarded, observation, IpmbProtocol::senderBlock(5, 4241, 1000, label),
                                 observedSelector, text);
    write(t, QStringLiteral("observed-forwarded"), observedForwarded);

    const QByteArray sender = IpmbProtocol::senderBlock(7, 4242, 1000, label);
    const IpmbSelector selector = IpmbSelector::multicast(IpmbLabelOp("renderer") && !IpmbLabelOp("gpu1"), 250ms);
    QByteArray session = hello + welcome;
    for (const QString &name : {QStringLiteral("null"), QStringLiteral("QString"), QStringLiteral("QByteArray"),
                               QStringLiteral("QVariantMap"), QStringLiteral("TestPoint"), QStringLiteral("QDateTime-zone")}) {
        for (const auto &[n, value] : payloads()) {
            if (n != name)
                continue;
            QByteArray message;
            IpmbErrorInfo error;
            if (!IpmbProtocol::appendMessage(message, selector, value, &error))
                qFatal("cannot write a message of %s", qPrintable(name));
            write(t, QStringLiteral("message-") + name, message);
            write(t, QStringLiteral("forwarded-") + name, forwarded(message, sender));
            session += forwarded(message, sender);
        }
    }
    // A message with two handles (what the fuzz target sends with its input) and one whose
    // payload travels in a region.
    QByteArray withHandles, inRegion;
    IpmbErrorInfo error;
    IpmbProtocol::appendMessage(withHandles, IpmbSelector::unicast(IpmbLabelOp("a")), QVariant(1), &error, 1, 1);
    write(t, QStringLiteral("message-handles"), withHandles);
    QByteArray region;
    IpmbProtocol::PayloadPlacement placement;
    placement.threshold = 1;
    placement.allocate = [&](qsizetype size) {
        region.resize(size);
        return region.data();
    };
    IpmbProtocol::appendMessage(inRegion, IpmbSelector::unicast(IpmbLabelOp("a")),
                                QVariant(QByteArray(100, 'x')), &error, 0, 0, placement);
    write(t, QStringLiteral("message-payload-region"), inRegion);
    write(t, QStringLiteral("session"), session + dropped + refuse);
}

void writeSelectors()
{
    const QString t = QStringLiteral("selector");
    for (const auto &[name, op] : ops()) {
        QByteArray bytes;
        IpmbSelectorCodec::appendSelector(bytes, IpmbSelector::multicast(op, 1500ms));
        write(t, QStringLiteral("selector-") + name, bytes);
    }
    QByteArray unicast;
    IpmbSelectorCodec::appendSelector(unicast, IpmbSelector::unicast(IpmbLabelOp("x")));
    write(t, QStringLiteral("selector-unicast"), unicast);
    for (const auto &[name, label] : labels()) {
        QByteArray bytes;
        IpmbSelectorCodec::appendLabel(bytes, label);
        write(t, QStringLiteral("label-") + name, bytes);
    }
}

void writeLabelOps()
{
    const QString t = QStringLiteral("labelop");
    for (const auto &[name, op] : ops())
        write(t, name, op.toString().toUtf8());
    // Texts toString() does not write: spacing, redundant parentheses, keywords, errors.
    write(t, QStringLiteral("text-spaces"), " ( a&&b )||\t!c ");
    write(t, QStringLiteral("text-parens"), "((((x))))");
    write(t, QStringLiteral("text-chars"), "a.b:c/d@e+f-g_h && \"\" || \"true\"");
    write(t, QStringLiteral("text-escapes"), "\"a\\\"b\\\\c\" && !\"\\\"\"");
    write(t, QStringLiteral("text-unclosed"), "(a && \"b");
    write(t, QStringLiteral("text-operators"), "a & b | c");
}

void writePayloads()
{
    for (const auto &[name, value] : payloads())
        write(QStringLiteral("payload"), name, encodePayload(value));
}

} // namespace

int main(int argc, char **argv)
{
    fuzzInitialize();
    qRegisterMetaType<FuzzBag>();
    if (argc != 2)
        qFatal("usage: makecorpus <corpus dir>");
    outDir = QDir(QString::fromLocal8Bit(argv[1]));
    writeFrames();
    writeSelectors();
    writeLabelOps();
    writePayloads();
    return 0;
}
