// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQT_INSPECTOR_PEERLISTMODEL_H
#define IPMBQT_INSPECTOR_PEERLISTMODEL_H

#include <IpmbQt/IpmbPeer>

#include <QtCore/qabstractitemmodel.h>
#include <QtCore/qlist.h>
#include <QtGui/qcolor.h>
#include <QtQml/qqmlregistration.h>

#include <functional>

// The endpoints on the bus, in the order they joined, with the rate at which each sends (set
// once a second by BusInspector).
class PeerListModel : public QAbstractListModel
{
    Q_OBJECT
    QML_ELEMENT
    QML_UNCREATABLE("BusInspector makes it")
    Q_PROPERTY(int count READ rowCount NOTIFY countChanged)

public:
    enum Role {
        EndpointIdRole = Qt::UserRole + 1,
        PidRole,
        LabelRole,
        ControllerRole,
        ColourRole,
        RateRole,   // messages per second it sent, over the last few seconds
        SentRole,   // messages it sent since the inspector joined
    };
    Q_ENUM(Role)

    struct Traffic
    {
        double rate = 0;
        quint64 sent = 0;
    };

    explicit PeerListModel(QObject *parent = nullptr);

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role) const override;
    QHash<int, QByteArray> roleNames() const override;

    void setColourOf(std::function<QColor(quint32)> colourOf) { m_colourOf = std::move(colourOf); }

    void add(const IpmbPeer &peer);
    void remove(quint32 endpointId);
    // Takes the controller flags of `peers` (they change with a failover) and each row's traffic.
    void update(const QList<IpmbPeer> &peers, const std::function<Traffic(quint32)> &trafficOf);
    const QList<IpmbPeer> &peers() const { return m_peers; }

Q_SIGNALS:
    void countChanged();

private:
    QList<IpmbPeer> m_peers;
    QList<Traffic> m_traffic;
    std::function<QColor(quint32)> m_colourOf;
};

#endif // IPMBQT_INSPECTOR_PEERLISTMODEL_H
