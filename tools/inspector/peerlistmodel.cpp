// SPDX-License-Identifier: BSD-3-Clause
#include "peerlistmodel.h"

#include <QtCore/qhash.h>

using namespace Qt::StringLiterals;

PeerListModel::PeerListModel(QObject *parent) : QAbstractListModel(parent) { }

int PeerListModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_peers.size());
}

QVariant PeerListModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid() || index.row() >= m_peers.size())
        return {};
    const IpmbPeer &peer = m_peers.at(index.row());
    switch (role) {
    case EndpointIdRole:
        return qint64(peer.endpointId());
    case PidRole:
        return peer.pid();
    case Qt::DisplayRole:
    case LabelRole:
        return peer.label().toStringList().join(u',');
    case ControllerRole:
        return peer.isController();
    case ColourRole:
        return m_colourOf ? m_colourOf(peer.endpointId()) : QColor(Qt::gray);
    case RateRole:
        return m_traffic.at(index.row()).rate;
    case SentRole:
        return double(m_traffic.at(index.row()).sent);
    default:
        return {};
    }
}

QHash<int, QByteArray> PeerListModel::roleNames() const
{
    return {
        {EndpointIdRole, "endpointId"},
        {PidRole, "pid"},
        {LabelRole, "label"},
        {ControllerRole, "controller"},
        {ColourRole, "colour"},
        {RateRole, "rate"},
        {SentRole, "sent"},
    };
}

void PeerListModel::add(const IpmbPeer &peer)
{
    for (qsizetype row = 0; row < m_peers.size(); ++row) {
        if (m_peers.at(row).endpointId() == peer.endpointId()) {
            m_peers[row] = peer;
            Q_EMIT dataChanged(index(int(row)), index(int(row)));
            return;
        }
    }
    // In the order they joined (the controller's list comes in no particular order).
    int row = int(m_peers.size());
    while (row > 0 && peer.joinedAt() < m_peers.at(row - 1).joinedAt())
        --row;
    beginInsertRows(QModelIndex(), row, row);
    m_peers.insert(row, peer);
    m_traffic.insert(row, Traffic());
    endInsertRows();
    Q_EMIT countChanged();
}

void PeerListModel::remove(quint32 endpointId)
{
    for (qsizetype row = 0; row < m_peers.size(); ++row) {
        if (m_peers.at(row).endpointId() == endpointId) {
            beginRemoveRows(QModelIndex(), int(row), int(row));
            m_peers.removeAt(row);
            m_traffic.removeAt(row);
            endRemoveRows();
            Q_EMIT countChanged();
            return;
        }
    }
}

void PeerListModel::update(const QList<IpmbPeer> &peers, const std::function<Traffic(quint32)> &trafficOf)
{
    QHash<quint32, qsizetype> rows;
    rows.reserve(m_peers.size());
    for (qsizetype row = 0; row < m_peers.size(); ++row)
        rows.insert(m_peers.at(row).endpointId(), row);
    for (const IpmbPeer &peer : peers) {
        if (const auto it = rows.constFind(peer.endpointId()); it != rows.cend())
            m_peers[*it] = peer;
    }
    for (qsizetype row = 0; row < m_peers.size(); ++row)
        m_traffic[row] = trafficOf(m_peers.at(row).endpointId());
    if (!m_peers.isEmpty())
        Q_EMIT dataChanged(index(0), index(int(m_peers.size()) - 1), {ControllerRole, RateRole, SentRole});
}
