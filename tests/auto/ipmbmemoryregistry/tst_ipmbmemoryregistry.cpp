// SPDX-License-Identifier: BSD-3-Clause
// The pool's rules in one process: what counts as free, the size rule, tags, expiry, the signal.
// Reuse across processes (receivers letting go) is in tests/auto/multiprocess.

#include <IpmbQt/IpmbMemoryRegistry>

#include <QtTest/qsignalspy.h>
#include <QtTest/qtest.h>

class tst_IpmbMemoryRegistry : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void reusesOnlyFreeRegions();
    void sizeRule_data();
    void sizeRule();
    void tagsKeepPoolsApart();
    void busyWhileAnotherProcessHolds();
    void maintainReleasesIdleRegions();
    void regionFreedSignal();
    void errorModel();
};

void tst_IpmbMemoryRegistry::reusesOnlyFreeRegions()
{
    IpmbMemoryRegistry registry;
    IpmbMemoryRegion first = registry.alloc(4096);
    QVERIFY(!first.isNull());
    // Still held here: a second alloc must not hand out the same memory.
    IpmbMemoryRegion second = registry.alloc(4096);
    QVERIFY(first.id() != second.id());
    QCOMPARE(registry.count(), 2);
    QCOMPARE(registry.freeCount(), 0);
    const quint64 firstId = first.id();
    first = IpmbMemoryRegion();
    QCOMPARE(registry.freeCount(), 1);
    QCOMPARE(registry.alloc(4096).id(), firstId);
    QCOMPARE(registry.count(), 2);
}

void tst_IpmbMemoryRegistry::sizeRule_data()
{
    QTest::addColumn<qsizetype>("pooled");
    QTest::addColumn<qsizetype>("asked");
    QTest::addColumn<bool>("reused");
    QTest::addRow("same") << qsizetype(8192) << qsizetype(8192) << true;
    QTest::addRow("twice") << qsizetype(8192) << qsizetype(4096) << true;
    QTest::addRow("more than twice") << qsizetype(8192) << qsizetype(4095) << false;
    QTest::addRow("too small") << qsizetype(4096) << qsizetype(4097) << false;
}

void tst_IpmbMemoryRegistry::sizeRule()
{
    QFETCH(qsizetype, pooled);
    QFETCH(qsizetype, asked);
    QFETCH(bool, reused);
    IpmbMemoryRegistry registry;
    const quint64 id = registry.alloc(pooled).id();
    const IpmbMemoryRegion region = registry.alloc(asked);
    QCOMPARE(region.id() == id, reused);
    QVERIFY(region.size() >= asked);
}

void tst_IpmbMemoryRegistry::tagsKeepPoolsApart()
{
    IpmbMemoryRegistry registry;
    const quint64 video = registry.alloc(4096, QStringLiteral("video")).id();
    QVERIFY(registry.alloc(4096, QStringLiteral("audio")).id() != video);
    QCOMPARE(registry.alloc(4096, QStringLiteral("video")).id(), video);
}

void tst_IpmbMemoryRegistry::busyWhileAnotherProcessHolds()
{
    IpmbMemoryRegistry registry;
    quint64 id;
    IpmbMemoryRegion elsewhere;
    {
        const IpmbMemoryRegion region = registry.alloc(4096);
        id = region.id();
        // What a receiver's mapping does to the count, without a second process.
        elsewhere = IpmbMemoryRegion::fromHandle(IpmbNativeHandle::duplicate(region.nativeHandle().handle()));
        QCOMPARE(region.refCount(), 2);
    }
    const IpmbMemoryRegion other = registry.alloc(4096);
    QVERIFY(other.id() != id);
    elsewhere = IpmbMemoryRegion(); // the last holder lets go: the first region is free again
    QCOMPARE(registry.freeCount(), 1);
    QCOMPARE(registry.alloc(4096).id(), id);
}

void tst_IpmbMemoryRegistry::maintainReleasesIdleRegions()
{
    IpmbMemoryRegistry registry;
    registry.setExpiryInterval(0);
    IpmbMemoryRegion kept = registry.alloc(4096);
    registry.alloc(4096); // dropped at once
    QCOMPARE(registry.count(), 2);
    registry.maintain(); // notes the free one
    QTRY_VERIFY(([&] { registry.maintain(); return registry.count() == 1; }()));
    QCOMPARE(registry.alloc(4096).id() == kept.id(), false); // the busy one stays busy
}

void tst_IpmbMemoryRegistry::regionFreedSignal()
{
    IpmbMemoryRegistry registry;
    QSignalSpy freed(&registry, &IpmbMemoryRegistry::regionFreed);
    IpmbMemoryRegion region = registry.alloc(4096, QStringLiteral("frames"));
    const quint64 id = region.id();
    region = IpmbMemoryRegion();
    QVERIFY(freed.wait(5000));
    QCOMPARE(freed.at(0).at(0).value<IpmbMemoryRegion>().id(), id);
    QCOMPARE(freed.at(0).at(1).toString(), QStringLiteral("frames"));
}

// The same error model as IpmbEndpoint: error(), errorString(), errorOccurred(), and a reset that
// notifies.
void tst_IpmbMemoryRegistry::errorModel()
{
    IpmbMemoryRegistry registry;
    QSignalSpy errors(&registry, &IpmbMemoryRegistry::errorOccurred);
    QCOMPARE(registry.error(), IpmbMemoryRegistry::NoError);
    QVERIFY(registry.alloc(0).isNull());
    QCOMPARE(registry.error(), IpmbMemoryRegistry::OutOfRangeError);
    QVERIFY(!registry.errorString().isEmpty());
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors.at(0).at(0).value<IpmbMemoryRegistry::Error>(), IpmbMemoryRegistry::OutOfRangeError);
    QVERIFY(!registry.alloc(64).isNull()); // a success does not clear it: the error says what failed last
    QCOMPARE(registry.error(), IpmbMemoryRegistry::OutOfRangeError);
    registry.clearError();
    QCOMPARE(registry.error(), IpmbMemoryRegistry::NoError);
    QCOMPARE(errors.size(), 2);
    QVERIFY(registry.property("errorString").toString().isEmpty());

    QSignalSpy expiry(&registry, &IpmbMemoryRegistry::expiryIntervalChanged);
    registry.setExpiryInterval(500);
    registry.setExpiryInterval(500);
    QCOMPARE(expiry.size(), 1);
}

QTEST_MAIN(tst_IpmbMemoryRegistry)
#include "tst_ipmbmemoryregistry.moc"
