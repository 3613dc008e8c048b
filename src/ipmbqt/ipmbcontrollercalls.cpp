// SPDX-License-Identifier: BSD-3-Clause
// The controller's part of requests, replies and tracked messages (doc/protocol.md, "Requests,
// replies and undeliverable messages"): which requests each replier owes a reply, where a reply
// may go, and the Undeliverable notices.
#include "ipmbcontroller_p.h"
#include "ipmbprotocol_p.h"

using Action = IpmbConnection::Action;

// A reply goes to its requester only if its sender owes that requester that reply.
Action IpmbController::routeReply(Peer &from, const IpmbConnection::Frame &frame, const IpmbProtocol::Call &call,
                                  Routed *routed)
{
    const std::pair<quint32, quint64> key {call.requester, call.id};
    Peer *to = from.pendingRequests.contains(key) ? m_endpoints.value(call.requester) : nullptr;
    if (!to) {
        from.pendingRequests.remove(key);
        qCDebug(lcIpmbController, "endpoint %u: dropping a reply to request %llu of endpoint %u: not owed, or the requester left",
                from.endpointId, call.id, call.requester);
        addRegionReferences(frame, -1);
        return Action::Consumed;
    }
    switch (roomIn(*to)) {
    case Room::Full:
        from.parked = true;
        from.waitingFor = to;
        return Action::Keep;
    case Room::Stuck:
        ++to->dropped;
        addRegionReferences(frame, -1);
        break;
    case Room::Yes:
        deliver(*to, from, frame);
        routed->deliveries = 1;
        routed->receiver = to;
        break;
    }
    from.pendingRequests.remove(key);
    return Action::Consumed;
}

void IpmbController::routedCall(Peer &from, const IpmbProtocol::Call &call, const Routed &routed)
{
    if (routed.deliveries == 0) {
        tellUndeliverable(from.endpointId, call, routed.noMatch ? IpmbErrorCode::NoRoute : IpmbErrorCode::QueueFull);
        return;
    }
    if ((call.flags & IpmbProtocol::Request) && routed.receiver)
        recordRequest(*routed.receiver, from.endpointId, call);
}

void IpmbController::recordRequest(Peer &replier, quint32 requester, const IpmbProtocol::Call &call)
{
    // A replier that never replies must not make the controller remember without end: beyond
    // the limit the requester hears at once, and a reply that comes anyway is dropped.
    if (replier.pendingRequests.size() >= IpmbLimits::MaxPendingRequests) {
        tellUndeliverable(requester, call, IpmbErrorCode::QueueFull);
        return;
    }
    replier.pendingRequests.insert({requester, call.id});
}

void IpmbController::tellUndeliverable(quint32 senderId, const IpmbProtocol::Call &call, IpmbErrorCode why)
{
    if (!(call.flags & IpmbProtocol::Tracked))
        return;  // not tracked: nobody is told, as before
    Peer *sender = m_endpoints.value(senderId);
    // A sender that reads nothing is not sent notices without end (it sends no more either,
    // once its own queue is full).
    if (!sender || sender->dead || roomIn(*sender) == Room::Stuck)
        return;
    IpmbProtocol::appendUndeliverable(sender->connection.tail(), call.id, why);
}

// A replier is gone: every requester still on the bus hears it at once.
void IpmbController::failRequestsTo(const Peer &replier)
{
    for (const auto &[requester, id] : replier.pendingRequests)
        tellUndeliverable(requester, {IpmbProtocol::Tracked | IpmbProtocol::Request, id, 0}, IpmbErrorCode::PeerLeft);
}
