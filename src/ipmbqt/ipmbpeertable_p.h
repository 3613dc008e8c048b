// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBPEERTABLE_P_H
#define IPMBPEERTABLE_P_H

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

#include "ipmbpeer.h"
#include "ipmbprotocol_p.h"

#include <QtCore/qhash.h>
#include <QtCore/qlist.h>
#include <QtCore/qset.h>

// Who else is on the bus, as an endpoint that watches peers knows it (doc/protocol.md,
// "Presence"): fed, in order, with the Peer frames the I/O thread read and with the loss of the
// controller, it says who joined and who left, exactly once each, across failover.
// Not thread-safe: the endpoint's thread owns it.
class IPMBQT_AUTOTEST_EXPORT IpmbPeerTable
{
public:
    // What the I/O thread read, in the order it read it.
    struct Note
    {
        enum Kind { Present, Joined, Left, ListEnd, ControllerLost };
        Kind kind = ListEnd;
        IpmbPeer peer;              // Present, Joined; for Left only its endpointId() counts
        qint64 bytes = 0;           // of the Peer frame's body: what listing the peer costs
    };
    static Note noteFrom(const IpmbProtocol::Peer &frame, qint64 bytes);

    struct Change
    {
        bool joined;                // else it left
        IpmbPeer peer;
    };

    // Applies `note` at time `nowMsecs` (monotonic); a peer unconfirmed after the controller was
    // lost leaves if it has not reconnected within `graceMsecs`.
    void apply(const Note &note, qint64 nowMsecs, qint64 graceMsecs, QList<Change> *changes);
    // Unconfirmed peers whose process is gone, or whose grace ran out, leave.
    void expire(qint64 nowMsecs, QList<Change> *changes);
    bool hasUnconfirmed() const { return m_unconfirmed > 0; }
    void clear();

    // The confirmed and the unconfirmed ones (those are only waiting to be confirmed), in the
    // order they joined.
    QList<IpmbPeer> peers() const;
    qsizetype size() const { return m_peers.size(); }

private:
    struct Entry
    {
        IpmbPeer peer;
        qint64 deadline = -1;       // unconfirmed until; -1: confirmed
        qint64 bytes = 0;           // counted in m_bytes
    };
    QHash<quint32, Entry>::iterator leave(QHash<quint32, Entry>::iterator it, QList<Change> *changes);

    QHash<quint32, Entry> m_peers;
    QSet<quint32> m_listed;         // Present since the last ListEnd
    qsizetype m_unconfirmed = 0;
    qint64 m_bytes = 0;             // IpmbLimits::MaxPeerBytes at most
    bool m_warnedFull = false;
};

#endif // IPMBPEERTABLE_P_H
