// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbpeertable_p.h"
#include "ipmblogging_p.h"
#include "ipmbplatform_p.h"

#include <algorithm>

IpmbPeerTable::Note IpmbPeerTable::noteFrom(const IpmbProtocol::Peer &frame, qint64 bytes)
{
    using IpmbProtocol::PeerEvent;
    Note note;
    note.bytes = bytes;
    switch (frame.event) {
    case PeerEvent::Present: note.kind = Note::Present; break;
    case PeerEvent::Joined: note.kind = Note::Joined; break;
    case PeerEvent::Left: note.kind = Note::Left; break;
    case PeerEvent::ListEnd: note.kind = Note::ListEnd; break;
    }
    const IpmbProtocol::PeerRecord &r = frame.record;
    note.peer = IpmbPeer(r.sender.endpointId, r.sender.label, r.sender.pid, r.sender.uid,
                         QDateTime::fromMSecsSinceEpoch(r.joinedAt),
                         r.flags & IpmbProtocol::PeerHostsController);
    return note;
}

QHash<quint32, IpmbPeerTable::Entry>::iterator IpmbPeerTable::leave(QHash<quint32, Entry>::iterator it,
                                                                     QList<Change> *changes)
{
    if (it->deadline >= 0)
        --m_unconfirmed;
    m_bytes -= it->bytes;
    changes->append({false, it->peer});
    return m_peers.erase(it);
}

void IpmbPeerTable::apply(const Note &note, qint64 nowMsecs, qint64 graceMsecs, QList<Change> *changes)
{
    const quint32 id = note.peer.endpointId();
    switch (note.kind) {
    case Note::Present:
    case Note::Joined: {
        if (note.kind == Note::Present)
            m_listed.insert(id);
        auto it = m_peers.find(id);
        // The same endpoint (its id and its process) back after a failover, or listed again:
        // confirmed without a signal. Its record may say something new (who hosts the controller).
        if (it != m_peers.end() && it->peer.pid() == note.peer.pid()) {
            if (it->deadline >= 0)
                --m_unconfirmed;
            it->deadline = -1;
            it->peer = note.peer;
            return;
        }
        if (it != m_peers.end())
            leave(it, changes);  // another endpoint that drew the same id: the old one is gone
        // What a controller (which could be anybody of this user) can make this process hold.
        if (m_peers.size() >= IpmbLimits::MaxPeers || m_bytes + note.bytes > IpmbLimits::MaxPeerBytes) {
            if (!std::exchange(m_warnedFull, true))
                qCWarning(lcIpmbEndpoint, "presence: %lld peers (%lld bytes) listed already; not listing more",
                          qlonglong(m_peers.size()), qlonglong(m_bytes));
            return;
        }
        m_bytes += note.bytes;
        m_peers.insert(id, {note.peer, -1, note.bytes});
        changes->append({true, note.peer});
        return;
    }
    case Note::Left: {
        const auto it = m_peers.find(id);
        if (it != m_peers.end())
            leave(it, changes);
        return;
    }
    case Note::ListEnd:
        // A confirmed peer that a list leaves out has left while this endpoint was not told (the
        // controller lists a watcher again after it was too slow to be told everything).
        for (auto it = m_peers.begin(); it != m_peers.end();) {
            if (it->deadline < 0 && !m_listed.contains(it.key()))
                it = leave(it, changes);
            else
                ++it;
        }
        m_listed.clear();
        expire(nowMsecs, changes);
        return;
    case Note::ControllerLost:
        for (Entry &entry : m_peers) {
            if (entry.deadline < 0) {
                entry.deadline = nowMsecs + graceMsecs;
                ++m_unconfirmed;
            }
        }
        m_listed.clear();
        return;
    }
}

void IpmbPeerTable::expire(qint64 nowMsecs, QList<Change> *changes)
{
    if (m_unconfirmed == 0)
        return;
    for (auto it = m_peers.begin(); it != m_peers.end();) {
        if (it->deadline >= 0 && (nowMsecs >= it->deadline || !IpmbPlatform::processExists(it->peer.pid())))
            it = leave(it, changes);
        else
            ++it;
    }
}

void IpmbPeerTable::clear()
{
    m_peers.clear();
    m_bytes = 0;
    m_warnedFull = false;
    m_listed.clear();
    m_unconfirmed = 0;
}

QList<IpmbPeer> IpmbPeerTable::peers() const
{
    QList<IpmbPeer> all;
    all.reserve(m_peers.size());
    for (const Entry &entry : m_peers)
        all.append(entry.peer);
    std::sort(all.begin(), all.end(), [](const IpmbPeer &a, const IpmbPeer &b) {
        return std::pair(a.joinedAt(), a.endpointId()) < std::pair(b.joinedAt(), b.endpointId());
    });
    return all;
}
