// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBPEER_H
#define IPMBPEER_H

#include "ipmbqtglobal.h"
#include "ipmblabel.h"

#include <QtCore/qdatetime.h>
#include <QtCore/qmetatype.h>
#include <QtCore/qobjectdefs.h>
#include <QtCore/qshareddata.h>

QT_BEGIN_NAMESPACE
class QDebug;
QT_END_NAMESPACE

class IpmbPeerData;

class IPMBQT_EXPORT IpmbPeer
{
    Q_GADGET
    Q_PROPERTY(quint32 endpointId READ endpointId)
    Q_PROPERTY(IpmbLabel label READ label)
    Q_PROPERTY(qint64 pid READ pid)
    Q_PROPERTY(qint64 uid READ uid)
    Q_PROPERTY(QDateTime joinedAt READ joinedAt)
    Q_PROPERTY(bool controller READ isController)
    Q_PROPERTY(bool null READ isNull)

public:
    IpmbPeer();
    IpmbPeer(quint32 endpointId, const IpmbLabel &label, qint64 pid, qint64 uid, const QDateTime &joinedAt,
             bool isController);
    IpmbPeer(const IpmbPeer &other);
    IpmbPeer(IpmbPeer &&other) noexcept;
    IpmbPeer &operator=(const IpmbPeer &other);
    IpmbPeer &operator=(IpmbPeer &&other) noexcept;
    ~IpmbPeer();

    void swap(IpmbPeer &other) noexcept { d.swap(other.d); }

    bool isNull() const;
    quint32 endpointId() const;
    IpmbLabel label() const;
    qint64 pid() const;
    qint64 uid() const;
    QDateTime joinedAt() const;
    bool isController() const;

    friend IPMBQT_EXPORT bool operator==(const IpmbPeer &lhs, const IpmbPeer &rhs);
    friend bool operator!=(const IpmbPeer &lhs, const IpmbPeer &rhs) { return !(lhs == rhs); }

private:
    QSharedDataPointer<IpmbPeerData> d;
};

Q_DECLARE_SHARED(IpmbPeer)

#ifndef QT_NO_DEBUG_STREAM
IPMBQT_EXPORT QDebug operator<<(QDebug debug, const IpmbPeer &peer);
#endif

Q_DECLARE_METATYPE(IpmbPeer)

#endif // IPMBPEER_H
