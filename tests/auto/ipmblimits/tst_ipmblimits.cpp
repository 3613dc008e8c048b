// SPDX-License-Identifier: BSD-3-Clause
// The docs quote the limits of src/ipmbqt/ipmblimits_p.h. Every number in doc/*.md followed by a
// hidden tag <!--limit:Name--> is read with its unit and compared with the constant of that name,
// so the docs cannot drift from the code; every constant listed here must be quoted somewhere.
#include "ipmblimits_p.h"

#include <QtCore/qdir.h>
#include <QtCore/qfile.h>
#include <QtCore/qhash.h>
#include <QtCore/qregularexpression.h>
#include <QtTest/qtest.h>

namespace {

enum class Unit { Count, Bytes, Msecs, Nsecs };

struct Limit
{
    qint64 value;
    Unit unit;
};

// The documented constants, by the names the tags use.
const QHash<QString, Limit> &documentedLimits()
{
    using namespace IpmbLimits;
    static const QHash<QString, Limit> limits = {
        {QStringLiteral("MaxPayload"), {MaxPayload, Unit::Bytes}},
        {QStringLiteral("MaxHandles"), {MaxHandles, Unit::Count}},
        {QStringLiteral("MaxTokenBytes"), {MaxTokenBytes, Unit::Bytes}},
        {QStringLiteral("MaxNameBytes"), {MaxNameBytes, Unit::Bytes}},
        {QStringLiteral("MaxLabelNames"), {MaxLabelNames, Unit::Count}},
        {QStringLiteral("MaxOpDepth"), {MaxOpDepth, Unit::Count}},
        {QStringLiteral("MaxOpNodes"), {MaxOpNodes, Unit::Count}},
        {QStringLiteral("MaxSelectorBytes"), {MaxSelectorBytes, Unit::Bytes}},
        {QStringLiteral("MaxSenderBlockBytes"), {MaxSenderBlockBytes, Unit::Bytes}},
        {QStringLiteral("MaxMessageBody"), {MaxMessageBody, Unit::Bytes}},
        {QStringLiteral("MaxControlBody"), {MaxControlBody, Unit::Bytes}},
        {QStringLiteral("MaxHandlesPerIo"), {MaxHandlesPerIo, Unit::Count}},
        {QStringLiteral("MaxHandlesAhead"), {MaxHandlesAhead, Unit::Count}},
        {QStringLiteral("SendQueueBytes"), {SendQueueBytes, Unit::Bytes}},
        {QStringLiteral("SendQueueHandles"), {SendQueueHandles, Unit::Count}},
        {QStringLiteral("ShareFrameBytes"), {ShareFrameBytes, Unit::Bytes}},
        {QStringLiteral("BatchChunkBytes"), {BatchChunkBytes, Unit::Bytes}},
        {QStringLiteral("SpareWriteBytes"), {SpareWriteBytes, Unit::Bytes}},
        {QStringLiteral("CoalesceWindowNsecs"), {CoalesceWindowNsecs, Unit::Nsecs}},
        {QStringLiteral("InboxHandles"), {InboxHandles, Unit::Count}},
        {QStringLiteral("InboxMessages"), {InboxMessages, Unit::Count}},
        {QStringLiteral("InboxBytes"), {InboxBytes, Unit::Bytes}},
        {QStringLiteral("EventLoopReadBytes"), {EventLoopReadBytes, Unit::Bytes}},
        {QStringLiteral("PayloadBufferMinBytes"), {PayloadBufferMinBytes, Unit::Bytes}},
        {QStringLiteral("PayloadBuffersMaxBytes"), {PayloadBuffersMaxBytes, Unit::Bytes}},
        {QStringLiteral("InboxHandlesAt1024"), {inboxHandleLimit(1024), Unit::Count}},
        {QStringLiteral("ReceiverQueueBytes"), {ReceiverQueueBytes, Unit::Bytes}},
        {QStringLiteral("ReceiverQueueHandles"), {ReceiverQueueHandles, Unit::Count}},
        {QStringLiteral("StallTimeoutMsecs"), {StallTimeoutMsecs, Unit::Msecs}},
        {QStringLiteral("NobodyThereMsecs"), {NobodyThereMsecs, Unit::Msecs}},
        {QStringLiteral("TtlBufferMessages"), {TtlBufferMessages, Unit::Count}},
        {QStringLiteral("TtlBufferBytes"), {TtlBufferBytes, Unit::Bytes}},
        {QStringLiteral("TtlBufferHandles"), {TtlBufferHandles, Unit::Count}},
        {QStringLiteral("HelloTimeoutMsecs"), {HelloTimeoutMsecs, Unit::Msecs}},
        {QStringLiteral("MaxPendingHellos"), {MaxPendingHellos, Unit::Count}},
        {QStringLiteral("FrameTimeoutMsecs"), {FrameTimeoutMsecs, Unit::Msecs}},
        {QStringLiteral("MinFrameBytesPerSecond"), {MinFrameBytesPerSecond, Unit::Bytes}},
        {QStringLiteral("MaxHeldFrameBytes"), {MaxHeldFrameBytes, Unit::Bytes}},
        {QStringLiteral("AcceptPauseMsecs"), {AcceptPauseMsecs, Unit::Msecs}},
        {QStringLiteral("PayloadRegionThresholdBytes"), {PayloadRegionThresholdBytes, Unit::Bytes}},
        {QStringLiteral("PayloadRegionMinBytes"), {PayloadRegionMinBytes, Unit::Bytes}},
        {QStringLiteral("PayloadRegionsMax"), {PayloadRegionsMax, Unit::Count}},
        {QStringLiteral("PayloadRegionsMaxBytes"), {PayloadRegionsMaxBytes, Unit::Bytes}},
        {QStringLiteral("PayloadRegionExpiryNsecs"), {PayloadRegionExpiryNsecs, Unit::Nsecs}},
        {QStringLiteral("PayloadRegionWaitMsecs"), {PayloadRegionWaitMsecs, Unit::Msecs}},
        {QStringLiteral("PeerCheckMsecs"), {PeerCheckMsecs, Unit::Msecs}},
        {QStringLiteral("MaxChannels"), {MaxChannels, Unit::Count}},
        {QStringLiteral("ChannelQueueBytes"), {ChannelQueueBytes, Unit::Bytes}},
        {QStringLiteral("MonitorPayloadBytes"), {MonitorPayloadBytes, Unit::Bytes}},
        {QStringLiteral("MonitorQueueBytes"), {MonitorQueueBytes, Unit::Bytes}},
        {QStringLiteral("ChannelQueueHandles"), {ChannelQueueHandles, Unit::Count}},
        {QStringLiteral("ChannelIdleMsecs"), {ChannelIdleMsecs, Unit::Msecs}},
        {QStringLiteral("ChannelRetryMsecs"), {ChannelRetryMsecs, Unit::Msecs}},
        {QStringLiteral("MaxPeerNotes"), {MaxPeerNotes, Unit::Count}},
        {QStringLiteral("MaxPeerNoteBytes"), {MaxPeerNoteBytes, Unit::Bytes}},
        {QStringLiteral("MaxPeers"), {MaxPeers, Unit::Count}},
        {QStringLiteral("MaxPeerBytes"), {MaxPeerBytes, Unit::Bytes}},
        {QStringLiteral("MaxPendingRequests"), {MaxPendingRequests, Unit::Count}},
        {QStringLiteral("MaxRequestsInFlight"), {MaxRequestsInFlight, Unit::Count}},
        {QStringLiteral("RequestSweepMsecs"), {RequestSweepMsecs, Unit::Msecs}},
        {QStringLiteral("WarningsPerSecond"), {WarningsPerSecond, Unit::Count}},
    };
    return limits;
}

struct Quote
{
    QString document;
    int line;
    QString written; // the number and its unit as the document writes them
    QString name;
};

// The number just before a tag, with its unit: "1,024", "256 MiB", "5 s", "100 ms", "65,535-byte".
const QRegularExpression &quotePattern()
{
    static const QRegularExpression pattern(
            QStringLiteral(R"(([0-9][0-9,]*(?:\.[0-9]+)?)(?:[ -](bytes?|KiB|MiB|GiB|ms|µs|s))?<!--limit:(\w+)-->)"));
    return pattern;
}

// The value a quote states, in the constant's unit; -1 if the unit does not fit the constant's.
qint64 valueOf(const QString &number, const QString &unit, Unit kind)
{
    const double n = QString(number).remove(u',').toDouble();
    switch (kind) {
    case Unit::Count:
        return unit.isEmpty() ? qint64(n) : -1;
    case Unit::Bytes:
        if (unit.isEmpty() || unit.startsWith(u"byte"))
            return qint64(n);
        if (unit == u"KiB")
            return qint64(n * 1024);
        if (unit == u"MiB")
            return qint64(n * 1024 * 1024);
        if (unit == u"GiB")
            return qint64(n * 1024 * 1024 * 1024);
        return -1;
    case Unit::Msecs:
    case Unit::Nsecs: {
        const double msecs = unit == u"ms" ? n : unit == u"s" ? n * 1000 : unit == u"µs" ? n / 1000 : -1;
        if (msecs < 0)
            return -1;
        return kind == Unit::Msecs ? qint64(msecs) : qint64(msecs * 1000 * 1000);
    }
    }
    return -1;
}

QList<Quote> quotesIn(const QString &document)
{
    QList<Quote> quotes;
    QFile file(QStringLiteral(IPMBQT_DOC_DIR "/") + document);
    if (!file.open(QIODevice::ReadOnly))
        return quotes;
    const QStringList lines = QString::fromUtf8(file.readAll()).split(u'\n');
    for (int i = 0; i < lines.size(); ++i) {
        auto it = quotePattern().globalMatch(lines.at(i));
        while (it.hasNext()) {
            const QRegularExpressionMatch m = it.next();
            quotes.append({document, i + 1, m.captured(0).section(u'<', 0, 0), m.captured(3)});
        }
        // A tag that the pattern did not take has no number in front of it.
        const int tags = int(lines.at(i).count(QStringLiteral("<!--limit:")));
        if (tags != int(std::count_if(quotes.cbegin(), quotes.cend(), [&](const Quote &q) {
                return q.document == document && q.line == i + 1;
            }))) {
            quotes.append({document, i + 1, QString(), QStringLiteral("<no number before a tag>")});
        }
    }
    return quotes;
}

QList<Quote> allQuotes()
{
    QList<Quote> quotes;
    const QStringList documents = QDir(QStringLiteral(IPMBQT_DOC_DIR)).entryList({QStringLiteral("*.md")});
    for (const QString &document : documents)
        quotes += quotesIn(document);
    return quotes;
}

} // namespace

class tst_IpmbLimits : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void quotesMatchTheHeader_data();
    void quotesMatchTheHeader();
    void everyLimitIsQuoted();
    void derivedLimits();
};

void tst_IpmbLimits::quotesMatchTheHeader_data()
{
    QTest::addColumn<QString>("written");
    QTest::addColumn<QString>("name");
    const QList<Quote> quotes = allQuotes();
    QVERIFY(quotes.size() >= 30);
    for (const Quote &q : quotes)
        QTest::addRow("%s:%d %s", qPrintable(q.document), q.line, qPrintable(q.name)) << q.written << q.name;
}

void tst_IpmbLimits::quotesMatchTheHeader()
{
    QFETCH(QString, written);
    QFETCH(QString, name);
    const auto limit = documentedLimits().constFind(name);
    QVERIFY2(limit != documentedLimits().cend(), qPrintable(QStringLiteral("no limit called %1").arg(name)));
    const QRegularExpressionMatch m = quotePattern().match(written + QStringLiteral("<!--limit:") + name + QStringLiteral("-->"));
    QVERIFY(m.hasMatch());
    const qint64 stated = valueOf(m.captured(1), m.captured(2), limit->unit);
    QVERIFY2(stated == limit->value,
             qPrintable(QStringLiteral("the docs say \"%1\", ipmblimits_p.h says %2").arg(written).arg(limit->value)));
}

void tst_IpmbLimits::everyLimitIsQuoted()
{
    QSet<QString> quoted;
    for (const Quote &q : allQuotes())
        quoted.insert(q.name);
    for (auto it = documentedLimits().cbegin(); it != documentedLimits().cend(); ++it)
        QVERIFY2(quoted.contains(it.key()), qPrintable(QStringLiteral("%1 is not quoted in doc/").arg(it.key())));
}

// The derived limits are what their formulas and the docs' explanations say.
void tst_IpmbLimits::derivedLimits()
{
    using namespace IpmbLimits;
    QCOMPARE(MaxMessageBody, MaxSenderBlockBytes + MaxSelectorBytes + MaxHandles + MaxPayload);
    QCOMPARE(MaxHeldFrameBytes, 2 * MaxMessageBody);
    QCOMPARE(inboxHandleLimit(1024), qsizetype(259));
    QCOMPARE(inboxHandleLimit(100), qsizetype(16));
    QCOMPARE(inboxHandleLimit(1 << 20), InboxHandles);
}

QTEST_MAIN(tst_IpmbLimits)
#include "tst_ipmblimits.moc"
