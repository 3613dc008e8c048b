// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQMLPEERMODEL_H
#define IPMBQMLPEERMODEL_H

#include "ipmbqtqml_export.h"

#include <IpmbQt/ipmblabelop.h>
#include <IpmbQt/ipmbpeer.h>

#include <QtCore/qabstractitemmodel.h>
#include <QtCore/qpointer.h>
#include <QtQml/qqmlregistration.h>

class IpmbQmlEndpoint;

class IPMBQTQML_EXPORT IpmbQmlPeerModel : public QAbstractListModel
{
    Q_OBJECT
    QML_NAMED_ELEMENT(PeerModel)
    Q_PROPERTY(IpmbQmlEndpoint *endpoint READ endpoint WRITE setEndpoint NOTIFY endpointChanged)
    Q_PROPERTY(QString filter READ filter WRITE setFilter NOTIFY filterChanged)
    Q_PROPERTY(QString errorString READ errorString NOTIFY filterChanged)
    Q_PROPERTY(int count READ rowCount NOTIFY countChanged)

public:
    enum Role {
        EndpointIdRole = Qt::UserRole + 1,
        LabelRole,
        PidRole,
        UidRole,
        JoinedAtRole,
        ControllerRole,
        PeerRole,
    };
    Q_ENUM(Role)

    explicit IpmbQmlPeerModel(QObject *parent = nullptr);

    IpmbQmlEndpoint *endpoint() const { return m_endpoint; }
    void setEndpoint(IpmbQmlEndpoint *endpoint);
    QString filter() const { return m_filter; }
    void setFilter(const QString &filter);
    QString errorString() const { return m_errorString; }

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QHash<int, QByteArray> roleNames() const override;

Q_SIGNALS:
    void endpointChanged();
    void filterChanged();
    void countChanged();

private:
    bool accepts(const IpmbPeer &peer) const;
    void reset();
    void add(const IpmbPeer &peer);
    void remove(const IpmbPeer &peer);

    QPointer<IpmbQmlEndpoint> m_endpoint;
    QString m_filter;
    IpmbLabelOp m_op = IpmbLabelOp::matchAll();
    QString m_errorString;
    QList<IpmbPeer> m_peers;
};

#endif // IPMBQMLPEERMODEL_H
