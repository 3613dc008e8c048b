// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBROUTES_P_H
#define IPMBROUTES_P_H

//
//  W A R N I N G
//  -------------
//
// This file is not part of the IpmbQt API. It exists purely as an
// implementation detail. This header file may change from version to
// version without notice, or even be removed.
//
// We mean it.
//

#include "ipmblabelop.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qhash.h>
#include <QtCore/qmutex.h>

#include <atomic>
#include <vector>

// The membership an endpoint routes its own messages by (doc/protocol.md, "Direct channels"):
// every other endpoint's id, label and pid, from the Peer frames it asked for. Unlike
// IpmbPeerTable (the user's list, in the endpoint's thread), it is fed by the thread that reads the
// connection and read by every thread in send(); it tells nobody of changes.
//
// Thread-safe: m_mutex guards the members; isReady() is one atomic load.
class IPMBQT_AUTOTEST_EXPORT IpmbRoutes
{
public:
    struct Member
    {
        qint64 pid = -1;
        IpmbLabel label;
        bool confirmed = true;      // listed by the current controller
    };

    // The reading thread, in the order the frames came. A list end makes the table ready.
    void apply(const IpmbProtocol::Peer &peer);
    // The controller was lost: the members stay, unconfirmed, until the new controller's list
    // ends; then those it did not list go, except those `keep` says to keep (they have a channel).
    void controllerLost();
    template <typename Keep>
    void forgetUnconfirmed(Keep &&keep);
    void clear();
    // This endpoint: a selector that matches its label routes to it too (through the controller).
    void setSelf(quint32 id, const IpmbLabel &label);

    // Any thread. Whether a list has ended: the sender may route by this table.
    bool isReady() const { return m_ready.load(std::memory_order_acquire); }
    // The ids whose label `op` matches, this endpoint's included, into *ids (cleared first). Cached per thread for the last op
    // while the table does not change: a sender mostly uses one selector over and over.
    void matches(const IpmbLabelOp &op, std::vector<quint32> *ids) const;
    bool member(quint32 id, Member *out) const;

private:
    // With m_mutex held: a new generation.
    void changed();

    mutable QMutex m_mutex;
    QHash<quint32, Member> m_members;
    quint32 m_selfId = 0;
    IpmbLabel m_selfLabel;
    std::atomic<bool> m_ready {false};
    std::atomic<quint64> m_generation {0};  // changes with every change of m_members
};

template <typename Keep>
void IpmbRoutes::forgetUnconfirmed(Keep &&keep)
{
    QMutexLocker locker(&m_mutex);
    for (auto it = m_members.begin(); it != m_members.end();) {
        if (!it->confirmed && !keep(it.key()))
            it = m_members.erase(it);
        else
            ++it;
    }
    changed();
}

#endif // IPMBROUTES_P_H
