// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbqmlpeermodel.h"
#include "ipmbqmlendpoint.h"

/*!
    \qmltype PeerModel
    \inqmlmodule IpmbQt
    \brief The other endpoints on the bus, as a list model for views.

    A PeerModel lists the endpoints on the bus of its \l endpoint (every one but that endpoint),
    in the order they joined, live: a row comes when an endpoint joins and goes when it leaves
    or its process dies. It turns the endpoint's
    \l {Endpoint::watchingPeers}{watchingPeers} on. \l filter keeps only the endpoints whose
    label a label op matches.

    \qml
    Endpoint { id: chat; identifier: "com.example.chat"; label: ["chat", name] }
    ListView {
        model: PeerModel { endpoint: chat; filter: "chat" }
        delegate: Text { text: label + " (pid " + pid + ")" }
    }
    \endqml

    Roles: \c endpointId, \c label (the names joined by ", "), \c pid, \c uid, \c joinedAt (a
    date), \c controller (whether the bus controller runs in its process) and \c peer (the whole
    \l peer value).

    \sa Endpoint::peers(), IpmbPeer
*/

/*!
    \qmlproperty Endpoint PeerModel::endpoint
    The endpoint whose bus is listed.
*/

/*!
    \qmlproperty string PeerModel::filter
    A label op in text form, such as \c {"worker && !busy"}; only the endpoints whose label it
    matches are listed. Empty (the default) lists all. One that does not parse lists none, and
    \l errorString says why.
*/

/*!
    \qmlproperty string PeerModel::errorString
    \readonly
    Why \l filter does not parse; empty when it does.
*/

/*!
    \qmlproperty int PeerModel::count
    \readonly
    The number of rows.
*/

IpmbQmlPeerModel::IpmbQmlPeerModel(QObject *parent)
    : QAbstractListModel(parent)
{
}

void IpmbQmlPeerModel::setEndpoint(IpmbQmlEndpoint *endpoint)
{
    if (m_endpoint == endpoint)
        return;
    if (m_endpoint)
        disconnect(m_endpoint->endpoint(), nullptr, this, nullptr);
    m_endpoint = endpoint;
    if (endpoint) {
        IpmbEndpoint *e = endpoint->endpoint();
        e->setWatchingPeers(true);
        connect(e, &IpmbEndpoint::peerJoined, this, &IpmbQmlPeerModel::add);
        connect(e, &IpmbEndpoint::peerLeft, this, &IpmbQmlPeerModel::remove);
        // Leaving the bus, or turning watching off, empties the list without signals.
        connect(e, &IpmbEndpoint::stateChanged, this, [this](IpmbEndpoint::State state) {
            if (state == IpmbEndpoint::UnjoinedState)
                reset();
        });
        connect(e, &IpmbEndpoint::watchingPeersChanged, this, &IpmbQmlPeerModel::reset);
    }
    reset();
    Q_EMIT endpointChanged();
}

void IpmbQmlPeerModel::setFilter(const QString &filter)
{
    if (m_filter == filter)
        return;
    m_filter = filter;
    m_errorString.clear();
    if (filter.trimmed().isEmpty()) {
        m_op = IpmbLabelOp::matchAll();
    } else {
        const std::optional<IpmbLabelOp> op = IpmbLabelOp::fromString(filter, &m_errorString);
        m_op = op.value_or(IpmbLabelOp::matchNone());
    }
    reset();
    Q_EMIT filterChanged();
}

bool IpmbQmlPeerModel::accepts(const IpmbPeer &peer) const
{
    return m_op.matches(peer.label());
}

void IpmbQmlPeerModel::reset()
{
    const qsizetype before = m_peers.size();
    beginResetModel();
    m_peers.clear();
    if (m_endpoint) {
        for (const IpmbPeer &peer : m_endpoint->endpoint()->peers()) {
            if (accepts(peer))
                m_peers.append(peer);
        }
    }
    endResetModel();
    if (before != m_peers.size())
        Q_EMIT countChanged();
}

void IpmbQmlPeerModel::add(const IpmbPeer &peer)
{
    if (!accepts(peer))
        return;
    const int row = int(m_peers.size());
    beginInsertRows(QModelIndex(), row, row);
    m_peers.append(peer);
    endInsertRows();
    Q_EMIT countChanged();
}

void IpmbQmlPeerModel::remove(const IpmbPeer &peer)
{
    for (int row = 0; row < m_peers.size(); ++row) {
        if (m_peers.at(row).endpointId() == peer.endpointId()) {
            beginRemoveRows(QModelIndex(), row, row);
            m_peers.removeAt(row);
            endRemoveRows();
            Q_EMIT countChanged();
            return;
        }
    }
}

int IpmbQmlPeerModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_peers.size());
}

QVariant IpmbQmlPeerModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const IpmbPeer &peer = m_peers.at(index.row());
    switch (role) {
    case Qt::DisplayRole:
    case LabelRole: return peer.label().toString();
    case EndpointIdRole: return peer.endpointId();
    case PidRole: return peer.pid();
    case UidRole: return peer.uid();
    case JoinedAtRole: return peer.joinedAt();
    case ControllerRole: return peer.isController();
    case PeerRole: return QVariant::fromValue(peer);
    default: return {};
    }
}

QHash<int, QByteArray> IpmbQmlPeerModel::roleNames() const
{
    return {{EndpointIdRole, "endpointId"}, {LabelRole, "label"}, {PidRole, "pid"}, {UidRole, "uid"},
            {JoinedAtRole, "joinedAt"}, {ControllerRole, "controller"}, {PeerRole, "peer"}};
}
