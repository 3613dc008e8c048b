// SPDX-License-Identifier: BSD-3-Clause
#include "businspector.h"

#include <QtCore/qdatetime.h>

#include <algorithm>
#include <cmath>

using namespace Qt::StringLiterals;

BusInspector::BusInspector(const Options &options, QObject *parent)
    : QObject(parent),
      m_bus(options.bus),
      m_token(options.token),
      m_rowLimit(qMax(1, options.rows)),
      m_endpoint(std::make_unique<IpmbEndpoint>()),
      m_peers(new PeerListModel(this)),
      m_messages(new MessageListModel(m_rowLimit, this))
{
    m_peers->setColourOf([this](quint32 id) { return colourOf(id); });
    m_messages->setColourOf([this](quint32 id) { return colourOf(id); });
    setFilterText(options.filter);

    IpmbToolSupport::setMonitor(m_endpoint.get(), true);
    m_endpoint->setWatchingPeers(true);
    m_endpoint->setIdentifier(m_bus);
    m_endpoint->setToken(m_token);
    m_endpoint->setLabel(IpmbLabel {u"ipmbqt-inspector"_s});
    connect(m_endpoint.get(), &IpmbEndpoint::messageReceived, this, &BusInspector::received);
    connect(m_endpoint.get(), &IpmbEndpoint::peerJoined, this, [this](const IpmbPeer &peer) {
        m_labels.insert(peer.endpointId(), peer.label());
        m_peers->add(peer);
    });
    connect(m_endpoint.get(), &IpmbEndpoint::peerLeft, this, [this](const IpmbPeer &peer) {
        m_labels.remove(peer.endpointId());
        m_peers->remove(peer.endpointId());
    });
    connect(m_endpoint.get(), &IpmbEndpoint::stateChanged, this, &BusInspector::stateChanged);
    connect(m_endpoint.get(), &IpmbEndpoint::joined, this, [this] {
        m_endpoint->clearError();
        Q_EMIT joined();
    });
    connect(m_endpoint.get(), &IpmbEndpoint::errorOccurred, this, [this](IpmbEndpoint::Error error) {
        if (error == IpmbEndpoint::NoError)
            return;
        Q_EMIT stateChanged();
        if (!m_endpoint->isJoined())
            Q_EMIT joinFailed(m_endpoint->errorString());
    });
    connect(m_endpoint.get(), &IpmbEndpoint::messagesDropped, this, &BusInspector::countersChanged);

    m_rowTimer.setInterval(1000 / RowsPerSecond);
    connect(&m_rowTimer, &QTimer::timeout, this, &BusInspector::flushRows);
    m_secondTimer.setInterval(1000);
    m_secondTimer.setTimerType(Qt::PreciseTimer);
    connect(&m_secondTimer, &QTimer::timeout, this, &BusInspector::tick);
}

BusInspector::~BusInspector()
{
    // The endpoint goes first, and says nothing on its way to the members declared after it.
    m_endpoint->disconnect(this);
    m_endpoint.reset();
}

void BusInspector::start()
{
    m_rowTimer.start();
    m_secondTimer.start();
    m_endpoint->join();
}

bool BusInspector::isJoined() const
{
    return m_endpoint->isJoined();
}

QString BusInspector::stateText() const
{
    switch (m_endpoint->state()) {
    case IpmbEndpoint::JoinedState:
        return tr("watching");
    case IpmbEndpoint::JoiningState:
        return tr("joining…");
    case IpmbEndpoint::ReconnectingState:
        return tr("reconnecting: the controller's process has gone");
    case IpmbEndpoint::UnjoinedState:
        break;
    }
    return m_endpoint->error() != IpmbEndpoint::NoError ? tr("not joined: %1").arg(m_endpoint->errorString())
                                                         : tr("not joined");
}

quint64 BusInspector::copiesDropped() const
{
    return m_endpoint->droppedMessageCount();
}

void BusInspector::setPaused(bool paused)
{
    if (m_paused == paused)
        return;
    m_paused = paused;
    m_whilePaused = 0;
    Q_EMIT pausedChanged(paused);
    Q_EMIT countersChanged();
    if (!paused) {
        flushRows();
        ++m_chartRevision;
        Q_EMIT chartChanged();
    }
}

void BusInspector::setFilterText(const QString &text)
{
    m_filterText = text;
    if (text.trimmed().isEmpty()) {
        m_filterError.clear();
        m_messages->setFilter(std::nullopt);
    } else {
        QString why;
        const std::optional<IpmbLabelOp> op = IpmbLabelOp::fromString(text, &why);
        // A filter that does not parse is not applied: the table keeps the last one that did.
        m_filterError = op ? QString() : why;
        if (op)
            m_messages->setFilter(op);
    }
    Q_EMIT filterChanged();
}

QColor BusInspector::colourOf(quint32 endpointId) const
{
    auto it = m_colours.find(endpointId);
    if (it == m_colours.end()) {
        // Hues spread by the golden ratio, in the order senders are first seen; dark enough to
        // read on white (yellow to cyan look lighter than the rest at the same lightness).
        const double hue = std::fmod(0.58 + m_coloursGiven++ * 0.618033988749895, 1.0);
        it = m_colours.insert(endpointId, QColor::fromHslF(float(hue), 0.7f,
                                                           hue > 0.1 && hue < 0.55 ? 0.35f : 0.45f));
    }
    return *it;
}

void BusInspector::received(const IpmbMessage &message)
{
    std::optional<IpmbObservation> observation = IpmbToolSupport::observation(message);
    if (!observation)
        return;  // not a copy: nothing is routed to a monitor
    ++m_seen;
    Sender &sender = m_senders[message.senderId()];
    if (sender.sent++ == 0)
        sender.label = message.senderLabel();
    ++sender.thisSecond;
    if (m_paused)
        ++m_whilePaused;
    const quint32 target = observation->target;
    m_pending.push_back({m_seen, QDateTime::currentMSecsSinceEpoch(), message, std::move(*observation),
                         target ? m_labels.value(target) : IpmbLabel()});
    if (qsizetype(m_pending.size()) > m_rowLimit)
        m_pending.pop_front();
}

void BusInspector::updatePeers()
{
    m_peers->update(m_endpoint->peers(), [this](quint32 id) {
        PeerListModel::Traffic traffic;
        const auto it = m_senders.constFind(id);
        if (it != m_senders.cend())
            traffic = {rateOf(*it), it->sent};
        return traffic;
    });
}

void BusInspector::flushRows()
{
    updatePeers();  // the counts sent, as the table grows (the peer list is live, also paused)
    if (!m_paused && !m_pending.empty()) {
        m_messages->append(std::move(m_pending));
        m_pending.clear();
    }
    Q_EMIT countersChanged();
}

quint32 BusInspector::sentIn(const Sender &sender, quint64 second) const
{
    return second < m_ticks && second + ChartSeconds >= m_ticks ? sender.seconds[second % ChartSeconds] : 0;
}

double BusInspector::rateOf(const Sender &sender) const
{
    const quint64 span = qMin<quint64>(RateSeconds, m_ticks);
    quint64 recent = 0;
    for (quint64 k = 1; k <= span; ++k)
        recent += sentIn(sender, m_ticks - k);
    return span ? double(recent) / double(span) : 0.0;
}

void BusInspector::tick()
{
    const quint64 second = m_ticks++;
    for (auto it = m_senders.begin(); it != m_senders.end();) {
        it->seconds[second % ChartSeconds] = it->thisSecond;
        it->thisSecond = 0;
        // A sender that left and has been quiet for the whole chart is forgotten.
        bool quiet = true;
        for (quint32 count : it->seconds)
            quiet = quiet && count == 0;
        if (quiet && !m_labels.contains(it.key()))
            it = m_senders.erase(it);
        else
            ++it;
    }
    updatePeers();
    if (!m_paused) {
        ++m_chartRevision;
        Q_EMIT chartChanged();
    }
}

QVariantList BusInspector::chartSeries() const
{
    struct Line
    {
        quint32 id;
        quint64 total;
    };
    QList<Line> lines;
    for (auto it = m_senders.cbegin(); it != m_senders.cend(); ++it) {
        quint64 total = 0;
        for (quint32 count : it->seconds)
            total += count;
        if (total > 0)
            lines.append({it.key(), total});
    }
    std::sort(lines.begin(), lines.end(), [](const Line &a, const Line &b) {
        return a.total != b.total ? a.total > b.total : a.id < b.id;
    });
    if (lines.size() > ChartSeries)
        lines.resize(ChartSeries);
    QVariantList series;
    for (const Line &line : std::as_const(lines)) {
        const Sender &sender = m_senders[line.id];
        QVariantList values;
        for (int k = ChartSeconds; k >= 1; --k)
            values.append(m_ticks >= quint64(k) ? sentIn(sender, m_ticks - k) : 0);
        const QString label = sender.label.toStringList().join(u',');
        series.append(QVariantMap {
                {u"label"_s, label.isEmpty() ? QString::number(line.id) : label},
                {u"colour"_s, colourOf(line.id)},
                {u"values"_s, values},
                {u"rate"_s, rateOf(sender)},
                {u"peer"_s, m_labels.contains(line.id)},
        });
    }
    return series;
}
