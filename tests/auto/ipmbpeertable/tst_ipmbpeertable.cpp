// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbpeertable_p.h"

#include <QtCore/qprocess.h>
#include <QtCore/qregularexpression.h>
#include <QtTest/qtest.h>

using Note = IpmbPeerTable::Note;
using Change = IpmbPeerTable::Change;

class tst_IpmbPeerTable : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void listThenEvents();
    void failoverConfirmsSurvivors();
    void failoverGraceRunsOut();
    void relistDropsTheMissing();
    void sameIdOtherProcess();
    void budgetHolds();

private:
    static IpmbPeer peer(quint32 id, qint64 pid, const char *label = "p")
    {
        return IpmbPeer(id, IpmbLabel{QString::fromUtf8(label)}, pid, 1000, QDateTime::fromMSecsSinceEpoch(id), false);
    }
    static QString text(const QList<Change> &changes)
    {
        QStringList out;
        for (const Change &c : changes)
            out.append((c.joined ? u"+"_qs : u"-"_qs) + QString::number(c.peer.endpointId()));
        return out.join(u' ');
    }
    QList<Change> apply(Note::Kind kind, const IpmbPeer &p = IpmbPeer(), qint64 now = 0)
    {
        QList<Change> changes;
        m_table.apply({kind, p}, now, Grace, &changes);
        return changes;
    }

    static constexpr qint64 Grace = 1000;
    qint64 m_live = 0;  // this process: alive
    qint64 m_dead = 0;  // a process that has exited
    IpmbPeerTable m_table;
};

void tst_IpmbPeerTable::initTestCase()
{
    m_live = QCoreApplication::applicationPid();
    QProcess exited;
    exited.start(QStringLiteral("true"));
    QVERIFY(exited.waitForFinished(5000));
    m_dead = exited.processId();
    if (m_dead <= 0) { // QProcess forgets the pid once it finished: start one and kill it
        QProcess killed;
        killed.start(QStringLiteral("sleep"), {QStringLiteral("60")});
        QVERIFY(killed.waitForStarted(5000));
        m_dead = killed.processId();
        killed.kill();
        QVERIFY(killed.waitForFinished(5000));
    }
    QVERIFY(m_dead > 0);
}

void tst_IpmbPeerTable::listThenEvents()
{
    m_table.clear();
    QCOMPARE(text(apply(Note::Present, peer(5, m_live))), u"+5"_qs);
    QCOMPARE(text(apply(Note::Present, peer(6, m_live))), u"+6"_qs);
    QCOMPARE(text(apply(Note::ListEnd)), QString());
    QCOMPARE(text(apply(Note::Joined, peer(7, m_live))), u"+7"_qs);
    QCOMPARE(text(apply(Note::Left, peer(6, 0))), u"-6"_qs);
    QCOMPARE(text(apply(Note::Left, peer(6, 0))), QString());  // once
    QCOMPARE(m_table.peers().size(), 2);
    QCOMPARE(m_table.peers().first().endpointId(), 5u);  // in the order they joined
    QVERIFY(!m_table.hasUnconfirmed());
}

// After the controller is lost, peers that reconnect are confirmed without a signal; the one
// whose process is gone leaves at the list end.
void tst_IpmbPeerTable::failoverConfirmsSurvivors()
{
    m_table.clear();
    apply(Note::Present, peer(1, m_live));     // will host the new controller
    apply(Note::Present, peer(2, m_live));     // reconnects after the list
    apply(Note::Present, peer(3, m_dead));     // died
    apply(Note::ListEnd);
    QCOMPARE(text(apply(Note::ControllerLost, {}, 100)), QString());
    QVERIFY(m_table.hasUnconfirmed());
    QCOMPARE(m_table.peers().size(), 3);       // still listed while unconfirmed
    IpmbPeer host(1, IpmbLabel{u"p"_qs}, m_live, 1000, QDateTime::fromMSecsSinceEpoch(1), true);
    QCOMPARE(text(apply(Note::Present, host, 110)), QString());
    QCOMPARE(text(apply(Note::ListEnd, {}, 110)), u"-3"_qs);
    QVERIFY(m_table.hasUnconfirmed());         // 2 has not reconnected yet
    QCOMPARE(text(apply(Note::Joined, peer(2, m_live), 120)), QString());
    QVERIFY(!m_table.hasUnconfirmed());
    QVERIFY(m_table.peers().first().isController());  // the record was updated
    QList<Change> changes;
    m_table.expire(100 + Grace + 1, &changes);
    QCOMPARE(text(changes), QString());
}

void tst_IpmbPeerTable::failoverGraceRunsOut()
{
    m_table.clear();
    apply(Note::Present, peer(4, m_live));     // alive, but never comes back
    apply(Note::ListEnd);
    apply(Note::ControllerLost, {}, 0);
    QCOMPARE(text(apply(Note::ListEnd, {}, 10)), QString());
    QList<Change> changes;
    m_table.expire(Grace - 1, &changes);
    QCOMPARE(text(changes), QString());
    m_table.expire(Grace, &changes);
    QCOMPARE(text(changes), u"-4"_qs);
    QVERIFY(!m_table.hasUnconfirmed());
}

// A list sent again (the watcher was too slow to be told everything) is the truth: who is not
// in it has left, who is new has joined, who stayed is not reported.
void tst_IpmbPeerTable::relistDropsTheMissing()
{
    m_table.clear();
    apply(Note::Present, peer(1, m_live));
    apply(Note::Present, peer(2, m_live));
    apply(Note::ListEnd);
    QCOMPARE(text(apply(Note::Present, peer(2, m_live))), QString());
    QCOMPARE(text(apply(Note::Present, peer(9, m_live))), u"+9"_qs);
    QCOMPARE(text(apply(Note::ListEnd)), u"-1"_qs);
}

void tst_IpmbPeerTable::sameIdOtherProcess()
{
    m_table.clear();
    apply(Note::Present, peer(1, m_live));
    apply(Note::ListEnd);
    apply(Note::ControllerLost);
    // A new endpoint drew the id of one that has not reconnected: not the same endpoint.
    QCOMPARE(text(apply(Note::Joined, peer(1, m_live + 1000000))), u"-1 +1"_qs);
    QVERIFY(!m_table.hasUnconfirmed());
}

// A controller cannot make the list hold more than IpmbLimits::MaxPeers endpoints or
// MaxPeerBytes of their records: beyond, joins are not listed (with one warning).
void tst_IpmbPeerTable::budgetHolds()
{
    m_table.clear();
    QList<Change> changes;
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(u"presence: .* not listing more"_qs));
    m_table.apply({Note::Joined, peer(1, m_live), IpmbLimits::MaxPeerBytes + 1}, 0, Grace, &changes);
    QVERIFY(changes.isEmpty());
    QCOMPARE(m_table.size(), 0);
    m_table.clear();
    for (quint32 id = 1; id <= quint32(IpmbLimits::MaxPeers); ++id)
        m_table.apply({Note::Joined, peer(id, m_live), 16}, 0, Grace, &changes);
    QCOMPARE(m_table.size(), IpmbLimits::MaxPeers);
    changes.clear();
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(u"presence: .* not listing more"_qs));
    m_table.apply({Note::Joined, peer(quint32(IpmbLimits::MaxPeers) + 1, m_live), 16}, 0, Grace, &changes);
    QVERIFY(changes.isEmpty());
    // One leaves: room for another.
    m_table.apply({Note::Left, peer(1, 0), 0}, 0, Grace, &changes);
    m_table.apply({Note::Joined, peer(quint32(IpmbLimits::MaxPeers) + 2, m_live), 16}, 0, Grace, &changes);
    QCOMPARE(text(changes), u"-1 +%1"_qs.arg(IpmbLimits::MaxPeers + 2));
}

QTEST_GUILESS_MAIN(tst_IpmbPeerTable)
#include "tst_ipmbpeertable.moc"
