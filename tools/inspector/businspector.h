// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQT_INSPECTOR_BUSINSPECTOR_H
#define IPMBQT_INSPECTOR_BUSINSPECTOR_H

#include "messagelistmodel.h"
#include "peerlistmodel.h"

#include <IpmbQt/IpmbEndpoint>

#include <QtCore/qhash.h>
#include <QtCore/qobject.h>
#include <QtCore/qtimer.h>
#include <QtQml/qqmlregistration.h>

#include <array>
#include <deque>
#include <memory>

// The inspector's view of a bus, for Main.qml: a monitor endpoint (doc/protocol.md, "Monitors"),
// the peers, the last copies of messages, and how many each sender sent in each of the last 60
// seconds. Per copy it only counts and queues; the models and the chart are updated from timers
// (rows and the peers' counts ten times a second, rates and the chart once a second), so a busy
// bus cannot flood the UI.
class BusInspector : public QObject
{
    Q_OBJECT
    QML_ELEMENT
    QML_UNCREATABLE("main.cpp makes it")
    Q_PROPERTY(QString bus READ bus CONSTANT)
    Q_PROPERTY(PeerListModel *peers READ peers CONSTANT)
    Q_PROPERTY(MessageListModel *messages READ messages CONSTANT)
    Q_PROPERTY(QString stateText READ stateText NOTIFY stateChanged)
    Q_PROPERTY(bool joined READ isJoined NOTIFY stateChanged)
    Q_PROPERTY(bool paused READ isPaused WRITE setPaused NOTIFY pausedChanged)
    Q_PROPERTY(QString filterText READ filterText WRITE setFilterText NOTIFY filterChanged)
    Q_PROPERTY(QString filterError READ filterError NOTIFY filterChanged)
    Q_PROPERTY(double copiesSeen READ copiesSeenValue NOTIFY countersChanged)
    Q_PROPERTY(double copiesWhilePaused READ copiesWhilePausedValue NOTIFY countersChanged)
    Q_PROPERTY(double copiesDropped READ copiesDroppedValue NOTIFY countersChanged)
    Q_PROPERTY(int chartSeconds READ chartSeconds CONSTANT)

public:
    static constexpr int ChartSeconds = 60;
    static constexpr int RateSeconds = 5;     // the peer list's rate: the mean of the last 5 s
    static constexpr int ChartSeries = 8;     // the busiest senders get a line each
    static constexpr int RowsPerSecond = 10;  // how often new rows are added to the table

    struct Options
    {
        QString bus;
        QByteArray token;
        QString filter;
        int rows = 500;
    };

    explicit BusInspector(const Options &options, QObject *parent = nullptr);
    ~BusInspector() override;

    // Joins the bus as a monitor; joined() or joinFailed() says how it went.
    void start();

    QString bus() const { return m_bus; }
    PeerListModel *peers() const { return m_peers; }
    MessageListModel *messages() const { return m_messages; }
    QString stateText() const;
    bool isJoined() const;
    bool isPaused() const { return m_paused; }
    void setPaused(bool paused);
    QString filterText() const { return m_filterText; }
    void setFilterText(const QString &text);
    QString filterError() const { return m_filterError; }
    quint64 copiesSeen() const { return m_seen; }
    quint64 copiesWhilePaused() const { return m_whilePaused; }
    quint64 copiesDropped() const;
    int chartSeconds() const { return ChartSeconds; }
    quint64 chartRevision() const { return m_chartRevision; }
    quint64 ticks() const { return m_ticks; }

    // One line per sender with traffic in the last 60 s (the busiest ChartSeries of them):
    // {label, colour, values: messages in each second, oldest first, rate (as the peer list's),
    // peer (still on the bus)}.
    Q_INVOKABLE QVariantList chartSeries() const;
    QColor colourOf(quint32 endpointId) const;

Q_SIGNALS:
    void stateChanged();
    void joined();
    void joinFailed(const QString &why);
    void pausedChanged(bool paused);
    void filterChanged();
    void countersChanged();
    void chartChanged();

private:
    struct Sender
    {
        IpmbLabel label;
        quint64 sent = 0;
        quint32 thisSecond = 0;
        std::array<quint32, ChartSeconds> seconds {};   // second t is at t % ChartSeconds
    };

    void received(const IpmbMessage &message);
    void flushRows();
    void updatePeers();
    void tick();
    quint32 sentIn(const Sender &sender, quint64 second) const;
    double rateOf(const Sender &sender) const;  // the mean of the last RateSeconds

    double copiesSeenValue() const { return double(m_seen); }
    double copiesWhilePausedValue() const { return double(m_whilePaused); }
    double copiesDroppedValue() const { return double(copiesDropped()); }

    QString m_bus;
    QByteArray m_token;
    int m_rowLimit;
    std::unique_ptr<IpmbEndpoint> m_endpoint;
    PeerListModel *m_peers;
    MessageListModel *m_messages;
    QHash<quint32, IpmbLabel> m_labels;       // the peers' labels: a copy's receiver
    QHash<quint32, Sender> m_senders;
    mutable QHash<quint32, QColor> m_colours;   // given on first sight, kept
    mutable int m_coloursGiven = 0;
    std::deque<ObservedMessage> m_pending;    // arrived since the last flush (at most m_rowLimit)
    quint64 m_seen = 0;
    quint64 m_whilePaused = 0;
    quint64 m_ticks = 0;                      // seconds completed since start()
    quint64 m_chartRevision = 0;
    bool m_paused = false;
    QString m_filterText;
    QString m_filterError;
    QTimer m_rowTimer;
    QTimer m_secondTimer;
};

#endif // IPMBQT_INSPECTOR_BUSINSPECTOR_H
