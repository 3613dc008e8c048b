// SPDX-License-Identifier: BSD-3-Clause
// The controller's part of presence (doc/protocol.md, "Presence"): endpoint ids that survive
// failover, the Welcome, and the Peer frames for the endpoints that watch.
#include "ipmbcontroller_p.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qdatetime.h>
#include <QtCore/qrandom.h>

using IpmbProtocol::PeerEvent;

// The claimed id if no live endpoint holds it (an endpoint back after a failover), else one drawn
// at random: ids from different controllers then rarely meet (doc/protocol.md).
quint32 IpmbController::allocateEndpointId(quint32 claimed)
{
    if (claimed != 0 && !m_endpoints.contains(claimed))
        return claimed;
    for (;;) {
        const quint32 id = QRandomGenerator::global()->generate();
        if (id != 0 && !m_endpoints.contains(id))
            return id;
    }
}

void IpmbController::welcome(Peer &peer, const IpmbProtocol::Hello &hello)
{
    const bool reclaimed = hello.claimedId != 0 && !m_endpoints.contains(hello.claimedId);
    peer.endpointId = allocateEndpointId(hello.claimedId);
    peer.joinedAt = reclaimed && hello.joinedAt > 0 ? hello.joinedAt : QDateTime::currentMSecsSinceEpoch();
    peer.hostsController = hello.features & IpmbProtocol::HostsController;
    peer.monitor = hello.features & IpmbProtocol::IsMonitor;
    peer.watchFeatures = hello.features & (IpmbProtocol::WatchPeers | IpmbProtocol::RoutesItself);
    peer.label = hello.label;
    peer.senderBlock = IpmbProtocol::senderBlock(peer.endpointId, peer.credentials.pid,
                                                 peer.credentials.uid, peer.label);
    ++m_generation;
    IpmbProtocol::appendWelcome(peer.connection.tail(), peer.endpointId, quint32(IpmbPlatform::currentProcessId()),
                                m_monitors.empty() || peer.monitor ? 0 : IpmbProtocol::BusMonitored);
    qCDebug(lcIpmbController) << "endpoint" << peer.endpointId << "joined: pid" << peer.credentials.pid
                              << peer.label << (reclaimed ? "(its id from before a failover)" : "");
    if (peer.watching())
        sendPeerList(peer);
    if (peer.monitor) {  // in nobody's list
        m_endpoints.insert(peer.endpointId, &peer);
        monitorJoined(peer);
        return;
    }
    const quint8 flags = peer.hostsController ? IpmbProtocol::PeerHostsController : 0;
    for (Peer *to : std::as_const(m_endpoints)) {
        if (mayTellPeers(*to))
            IpmbProtocol::appendPeer(to->connection.tail(), PeerEvent::Joined, flags, peer.joinedAt, peer.senderBlock);
    }
    m_endpoints.insert(peer.endpointId, &peer);
}

void IpmbController::sendPeerList(Peer &to)
{
    for (const Peer *peer : std::as_const(m_endpoints)) {
        if (peer != &to && !peer->monitor) {
            const quint8 flags = peer->hostsController ? IpmbProtocol::PeerHostsController : 0;
            IpmbProtocol::appendPeer(to.connection.tail(), PeerEvent::Present, flags, peer->joinedAt, peer->senderBlock);
        }
    }
    IpmbProtocol::appendPeerListEnd(to.connection.tail());
}

IpmbConnection::Action IpmbController::handleWatch(Peer &peer, const IpmbConnection::Frame &frame)
{
    QString why;
    const std::optional<quint32> features = IpmbProtocol::parseWatch(frame.body, &why);
    if (!features) {
        dropPeer(peer, why, true);
        return IpmbConnection::Action::Stop;
    }
    // The whole list again when its user starts watching (the endpoint's routing may have had it
    // all along, but its user's list starts empty), or when it starts wanting Peer frames at all.
    const quint32 watching = *features & (IpmbProtocol::WatchPeers | IpmbProtocol::RoutesItself);
    const quint32 turnedOn = watching & ~peer.watchFeatures;
    if ((turnedOn & IpmbProtocol::WatchPeers) || (turnedOn && !peer.watching()))
        sendPeerList(peer);
    peer.watchFeatures = watching;
    return IpmbConnection::Action::Consumed;
}

// Whether a Peer frame may be queued for `to`: it watches, and its queue moves. A stuck watcher
// (IpmbLimits::StallTimeoutMsecs without reading) could be made to hold any number of them by
// endpoints joining and leaving in a loop; it gets the whole list again once it has drained.
bool IpmbController::mayTellPeers(Peer &to)
{
    if (!to.watching() || to.dead)
        return false;
    if (roomIn(to) == Room::Stuck) {
        to.missedPeers = true;
        return false;
    }
    return !to.missedPeers;
}

// Called once per welcomed peer, when it is dropped for whatever reason.
void IpmbController::announceLeft(const Peer &left)
{
    if (m_endpoints.value(left.endpointId) != &left)
        return;
    m_endpoints.remove(left.endpointId);
    if (left.monitor) {
        monitorLeft(left);
        return;
    }
    for (Peer *to : std::as_const(m_endpoints)) {
        if (mayTellPeers(*to))
            IpmbProtocol::appendPeerLeft(to->connection.tail(), left.endpointId);
    }
}
