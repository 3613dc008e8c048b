// SPDX-License-Identifier: BSD-3-Clause
// The controller's part of direct channels (doc/protocol.md, "Direct channels"): it introduces
// two endpoints and hands the acceptor's socket to the introducer; it never holds a channel.
#include "ipmbcontroller_p.h"
#include "ipmbprotocol_p.h"

using Action = IpmbConnection::Action;

const std::vector<IpmbController::Peer *> &IpmbController::addressedMatch(Peer &from, QByteArrayView selectorBytes,
                                                                          quint32 target, bool *ok)
{
    m_addressed.clear();
    *ok = decodeSelector(from, selectorBytes);
    if (!*ok)
        return m_addressed;
    // Only to that endpoint, and only if its label matches: the sender's view may be old.
    Peer *to = m_endpoints.value(target);
    if (to && !to->dead && !to->monitor && from.lastSelector.labelOp().matches(to->label))
        m_addressed.push_back(to);
    return m_addressed;
}

// A: "introduce me to B". B hears it behind every message of A forwarded to it before (the fence).
Action IpmbController::handleIntroduce(Peer &from, const IpmbConnection::Frame &frame)
{
    QString why;
    const std::optional<quint32> target = IpmbProtocol::parseIntroduce(frame.body, &why);
    if (!target) {
        dropPeer(from, why, true);
        return Action::Stop;
    }
    Peer *to = m_endpoints.value(*target);
    IpmbErrorCode refused = IpmbErrorCode::None;
    if (!to || to->dead || to == &from || to->monitor)
        refused = IpmbErrorCode::NoRoute;
    else if (from.introductions.size() >= IpmbLimits::MaxChannels && !from.introductions.contains(*target))
        refused = IpmbErrorCode::QueueFull;
    if (refused != IpmbErrorCode::None) {
        IpmbProtocol::appendChannel(from.connection.tail(), *target, refused);
        return Action::Consumed;
    }
    from.introductions.insert(*target);
    IpmbProtocol::appendIntroduced(to->connection.tail(), from.endpointId, from.senderBlock);
    return Action::Consumed;
}

// B's answer for A: forwarded only if A asked for B, with B's socket only if it is one.
Action IpmbController::handleChannel(Peer &from, const IpmbConnection::Frame &frame)
{
    QString why;
    const std::optional<IpmbProtocol::Channel> channel = IpmbProtocol::parseChannel(frame.header, frame.body, &why);
    if (!channel) {
        dropPeer(from, why, true);
        return Action::Stop;
    }
    if (channel->status == IpmbErrorCode::None && !IpmbPlatform::isLocalStreamSocket(frame.handles.at(0).handle())) {
        dropPeer(from, QStringLiteral("a Channel whose handle is not a local stream socket"), true);
        return Action::Stop;
    }
    Peer *to = m_endpoints.value(channel->peer);
    if (!to || to->dead || !to->introductions.remove(from.endpointId)) {
        // Its handle closes with the frame; B sees its channel end.
        qCDebug(lcIpmbController, "endpoint %u: dropping a Channel for endpoint %u, which did not ask for one or left",
                from.endpointId, channel->peer);
        return Action::Consumed;
    }
    to->connection.appendHandles(frame.handles);
    IpmbProtocol::appendChannel(to->connection.tail(), from.endpointId, channel->status);
    return Action::Consumed;
}

// An endpoint that was asked to accept channels has gone: those who asked hear it at once.
void IpmbController::failIntroductionsOf(const Peer &left)
{
    for (Peer *peer : std::as_const(m_endpoints)) {
        if (peer != &left && peer->introductions.remove(left.endpointId))
            IpmbProtocol::appendChannel(peer->connection.tail(), left.endpointId, IpmbErrorCode::PeerLeft);
    }
}
