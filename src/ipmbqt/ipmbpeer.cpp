// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbpeer.h"

#include <QtCore/qdebug.h>

class IpmbPeerData : public QSharedData
{
public:
    quint32 endpointId = 0;
    IpmbLabel label;
    qint64 pid = -1;
    qint64 uid = -1;
    QDateTime joinedAt;
    bool isController = false;
};

/*!
    \class IpmbPeer
    \inmodule IpmbQt
    \brief Another endpoint on the bus, as IpmbEndpoint::peers() and IpmbEndpoint::peerJoined()
    report it.

    A read-only value (implicitly shared, a Q_GADGET whose properties QML reads). The controller
    vouches for the pid and uid (it read them from the kernel when the endpoint connected); the
    label is the one the endpoint joined with. endpointId() stays the same for as long as that
    endpoint stays on the bus, across failover (\l {guides/presence-and-requests.html}{presence guide}).
*/

/*! Constructs a null peer. */
IpmbPeer::IpmbPeer() : d(new IpmbPeerData) { }

/*! Constructs a peer; the bus does this, applications rarely need to. */
IpmbPeer::IpmbPeer(quint32 endpointId, const IpmbLabel &label, qint64 pid, qint64 uid, const QDateTime &joinedAt,
                   bool isController)
    : d(new IpmbPeerData)
{
    d->endpointId = endpointId;
    d->label = label;
    d->pid = pid;
    d->uid = uid;
    d->joinedAt = joinedAt;
    d->isController = isController;
}

/*! Constructs a copy of \a other. */
IpmbPeer::IpmbPeer(const IpmbPeer &other) = default;

/*! Move-constructs a peer from \a other. */
IpmbPeer::IpmbPeer(IpmbPeer &&other) noexcept = default;

/*! Assigns \a other to this peer. */
IpmbPeer &IpmbPeer::operator=(const IpmbPeer &other) = default;

/*! Move-assigns \a other to this peer. */
IpmbPeer &IpmbPeer::operator=(IpmbPeer &&other) noexcept = default;

/*! Destroys the peer. */
IpmbPeer::~IpmbPeer() = default;

/*!
    \fn void IpmbPeer::swap(IpmbPeer &other)
    Swaps this peer with \a other. This operation is very fast and never fails.
*/

/*!
    \property IpmbPeer::null
    \brief whether this is a default-constructed peer (endpoint id 0), not one the bus reported.
*/
bool IpmbPeer::isNull() const { return d->endpointId == 0; }

/*!
    \property IpmbPeer::endpointId
    \brief the endpoint's id on the bus; IpmbMessage::senderId() of its messages.
*/
quint32 IpmbPeer::endpointId() const { return d->endpointId; }

/*!
    \property IpmbPeer::label
    \brief the label the endpoint joined with.
*/
IpmbLabel IpmbPeer::label() const { return d->label; }

/*!
    \property IpmbPeer::pid
    \brief the id of the endpoint's process; -1 for a null peer.
*/
qint64 IpmbPeer::pid() const { return d->pid; }

/*!
    \property IpmbPeer::uid
    \brief the user id of the endpoint's process; -1 for a null peer.
*/
qint64 IpmbPeer::uid() const { return d->uid; }

/*!
    \property IpmbPeer::joinedAt
    \brief when the endpoint first joined the bus (kept across failover).
*/
QDateTime IpmbPeer::joinedAt() const { return d->joinedAt; }

/*!
    \property IpmbPeer::controller
    \brief whether the bus controller runs in this endpoint's process, started by it.

    It changes when another endpoint takes over after failover; the endpoint's peers() then says
    so, without a signal.
*/
bool IpmbPeer::isController() const { return d->isController; }

/*!
    \fn bool IpmbPeer::operator==(const IpmbPeer &lhs, const IpmbPeer &rhs)
    Returns \c true if \a lhs and \a rhs describe the same endpoint the same way: id, process,
    user, label, join time and whether it hosts the controller.
*/

/*!
    \fn bool IpmbPeer::operator!=(const IpmbPeer &lhs, const IpmbPeer &rhs)
    Returns \c true if \a lhs and \a rhs differ.
*/
bool operator==(const IpmbPeer &lhs, const IpmbPeer &rhs)
{
    return lhs.d == rhs.d
            || (lhs.d->endpointId == rhs.d->endpointId && lhs.d->pid == rhs.d->pid && lhs.d->uid == rhs.d->uid
                && lhs.d->isController == rhs.d->isController && lhs.d->joinedAt == rhs.d->joinedAt
                && lhs.d->label == rhs.d->label);
}

#ifndef QT_NO_DEBUG_STREAM
/*!
    \relates IpmbPeer
    Writes \a peer to \a debug as \c{IpmbPeer(1234567, pid 4242, IpmbLabel("worker"))}.
*/
QDebug operator<<(QDebug debug, const IpmbPeer &peer)
{
    QDebugStateSaver saver(debug);
    debug.nospace() << "IpmbPeer(";
    if (peer.isNull())
        return debug << "null)";
    debug << peer.endpointId() << ", pid " << peer.pid() << ", " << peer.label();
    if (peer.isController())
        debug << ", controller";
    return debug << ')';
}
#endif
