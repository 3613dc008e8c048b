// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbroutes_p.h"
#include "ipmblimits_p.h"

using IpmbProtocol::PeerEvent;

void IpmbRoutes::apply(const IpmbProtocol::Peer &peer)
{
    QMutexLocker locker(&m_mutex);
    const IpmbProtocol::Sender &sender = peer.record.sender;
    switch (peer.event) {
    case PeerEvent::Present:
    case PeerEvent::Joined:
        // As many as a watcher lists (IpmbLimits::MaxPeers); beyond, they are not routed to
        // directly: what matches only them goes through the controller.
        if (m_members.size() >= IpmbLimits::MaxPeers && !m_members.contains(sender.endpointId))
            return;
        m_members.insert(sender.endpointId, {sender.pid, sender.label, true});
        break;
    case PeerEvent::Left:
        m_members.remove(sender.endpointId);
        break;
    case PeerEvent::ListEnd:
        // After a failover the unconfirmed stay until the caller's forgetUnconfirmed().
        m_ready.store(true, std::memory_order_release);
        break;
    }
    changed();
}

// Generations are unique across tables: a thread's cache names the table by its address, which a
// later table may have.
void IpmbRoutes::changed()
{
    static std::atomic<quint64> generations {1};
    m_generation.store(generations.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_release);
}

void IpmbRoutes::controllerLost()
{
    QMutexLocker locker(&m_mutex);
    for (Member &member : m_members)
        member.confirmed = false;
}

void IpmbRoutes::setSelf(quint32 id, const IpmbLabel &label)
{
    QMutexLocker locker(&m_mutex);
    m_selfId = id;
    m_selfLabel = label;
    changed();
}

void IpmbRoutes::clear()
{
    QMutexLocker locker(&m_mutex);
    m_members.clear();
    m_selfId = 0;
    m_selfLabel = IpmbLabel();
    m_ready.store(false, std::memory_order_release);
    changed();
}

void IpmbRoutes::matches(const IpmbLabelOp &op, std::vector<quint32> *ids) const
{
    thread_local const IpmbRoutes *cachedTable = nullptr;
    thread_local quint64 cachedGeneration = 0;
    thread_local IpmbLabelOp cachedOp;
    thread_local std::vector<quint32> cachedIds;
    const quint64 generation = m_generation.load(std::memory_order_acquire);
    if (cachedTable != this || cachedGeneration != generation || !(cachedOp == op)) {
        QMutexLocker locker(&m_mutex);
        cachedIds.clear();
        for (auto it = m_members.cbegin(); it != m_members.cend(); ++it) {
            if (op.matches(it->label))
                cachedIds.push_back(it.key());
        }
        if (m_selfId != 0 && op.matches(m_selfLabel))
            cachedIds.push_back(m_selfId);
        cachedTable = this;
        cachedGeneration = m_generation.load(std::memory_order_relaxed);
        cachedOp = op;
    }
    *ids = cachedIds;
}

bool IpmbRoutes::member(quint32 id, Member *out) const
{
    QMutexLocker locker(&m_mutex);
    const auto it = m_members.constFind(id);
    if (it == m_members.cend())
        return false;
    *out = *it;
    return true;
}

