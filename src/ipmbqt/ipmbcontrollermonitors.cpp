// SPDX-License-Identifier: BSD-3-Clause
// The controller's part of monitors (doc/protocol.md, "Monitors"): a copy of each message for
// each monitor, from what the controller routes and from what endpoints report of their channels.
// With no monitor none of this runs.
#include "ipmbcontroller_p.h"
#include "ipmbprotocol_p.h"
#include "ipmbselectorcodec_p.h"

using Action = IpmbConnection::Action;

// Endpoints report their channel traffic only while the bus has monitors: tell them when that
// changes (a newcomer learns it from its Welcome).
void IpmbController::tellMonitoring(quint32 monitors)
{
    for (Peer *to : std::as_const(m_endpoints)) {
        if (!to->monitor && !to->dead)
            IpmbProtocol::appendMonitoring(to->connection.tail(), monitors);
    }
}

void IpmbController::monitorJoined(Peer &monitor)
{
    m_monitors.push_back(&monitor);
    qCDebug(lcIpmbController, "endpoint %u monitors the bus", monitor.endpointId);
    if (m_monitors.size() == 1)
        tellMonitoring(1);
}

void IpmbController::monitorLeft(const Peer &monitor)
{
    m_monitors.erase(std::remove(m_monitors.begin(), m_monitors.end(), &monitor), m_monitors.end());
    if (m_monitors.empty())
        tellMonitoring(0);
}

template <typename Write>
void IpmbController::toMonitors(Write &&write)
{
    for (Peer *monitor : m_monitors) {
        if (monitor->dead)
            continue;
        // A slow monitor loses copies; it never holds up a sender (flushAll() reports the count).
        if (monitor->connection.bytesToWrite() >= IpmbLimits::MonitorQueueBytes) {
            ++monitor->dropped;
            continue;
        }
        if (monitor->connection.bytesToWrite() == 0)
            monitor->lastProgress = m_clock.elapsed();
        write(monitor->connection.tail());
    }
}

void IpmbController::observeRouted(const Peer &from, const IpmbConnection::Frame &frame, const IpmbProtocol::Call &call,
                                   const Routed &routed)
{
    const IpmbProtocol::MessageSections sections = IpmbProtocol::messageSections(frame.header, frame.body);
    IpmbProtocol::Observation observation = IpmbProtocol::observationOf(frame.header, sections);
    observation.path = IpmbProtocol::Observation::ThroughController;
    observation.deliveries = routed.deliveries < 0 ? IpmbProtocol::Observation::KeptForTtl : quint32(routed.deliveries);
    observation.target = routed.receiver ? routed.receiver->endpointId
            : (call.flags & IpmbProtocol::Addressed) ? call.target : 0;
    const QByteArrayView prefix = observation.payloadInRegion ? QByteArrayView() : sections.payload;
    toMonitors([&](QByteArray &out) {
        IpmbProtocol::appendObserved(out, observation, from.senderBlock, sections.selector, prefix);
    });
}

// An endpoint's report of a message it wrote on a channel: checked like any frame, then passed on
// with its sender block.
Action IpmbController::handleObserved(Peer &from, const IpmbConnection::Frame &frame)
{
    QString why;
    const std::optional<IpmbProtocol::ObservedSections> observed =
            IpmbProtocol::parseObserved(frame.header, frame.body, &why);
    if (observed && (frame.header.senderLength != 0 || observed->observation.path != IpmbProtocol::Observation::OnChannel))
        why = QStringLiteral("an Observed frame with a sender block or not about a channel");
    else if (observed && !observed->selector.isEmpty() && !IpmbSelectorCodec::decodeSelector(observed->selector, &why))
        why = QStringLiteral("an Observed frame with a malformed selector: ") + why;
    if (!why.isEmpty()) {
        dropPeer(from, why, true);
        return Action::Stop;
    }
    if (m_monitors.empty() || from.monitor)
        return Action::Consumed;  // it crossed the Monitoring frame that said 0
    toMonitors([&](QByteArray &out) {
        IpmbProtocol::appendForwardedHeader(out, frame.header, from.senderBlock);
        out.append(frame.body.data(), frame.body.size());
    });
    return Action::Consumed;
}
