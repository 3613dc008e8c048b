// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQT_INSPECTOR_MESSAGELISTMODEL_H
#define IPMBQT_INSPECTOR_MESSAGELISTMODEL_H

#include "ipmbtoolsupport_p.h"

#include <IpmbQt/IpmbLabelOp>
#include <IpmbQt/IpmbMessage>

#include <QtCore/qabstractitemmodel.h>
#include <QtCore/qlist.h>
#include <QtGui/qcolor.h>
#include <QtQml/qqmlregistration.h>

#include <deque>
#include <functional>
#include <optional>

// One copy of a message as the monitor got it. Only what arrives is stored: the texts the table
// shows are made when a row is drawn, so a busy bus costs a few copies of shared data per message.
struct ObservedMessage
{
    quint64 sequence = 0;   // 1, 2, ... in the order the copies arrived
    qint64 receivedMsecs = 0;
    IpmbMessage message;
    IpmbObservation observation;
    IpmbLabel targetLabel;  // the receiver's label, from the peer list, when there is one receiver
};

// The last copies, newest first: those that match the filter among the last `limit` that arrived.
// Rows come in batches (BusInspector appends at most ten times a second), never one at a time.
class MessageListModel : public QAbstractListModel
{
    Q_OBJECT
    QML_ELEMENT
    QML_UNCREATABLE("BusInspector makes it")
    Q_PROPERTY(int count READ rowCount NOTIFY countChanged)
    Q_PROPERTY(int limit READ limit CONSTANT)

public:
    enum Role {
        SequenceRole = Qt::UserRole + 1,
        TimeRole,
        SenderRole,
        SenderIdRole,
        SenderColourRole,
        ReceiverRole,
        KindRole,
        SelectorRole,
        PathRole,
        TypeRole,
        SizeRole,
        PayloadRole,
    };
    Q_ENUM(Role)

    explicit MessageListModel(int limit, QObject *parent = nullptr);

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role) const override;
    QHash<int, QByteArray> roleNames() const override;

    int limit() const { return m_limit; }
    // The colour of a sender's id, as the peer list and the chart show it.
    void setColourOf(std::function<QColor(quint32)> colourOf) { m_colourOf = std::move(colourOf); }

    // Adds copies that arrived, oldest first.
    void append(std::deque<ObservedMessage> &&batch);
    // Shows only the copies from or to an endpoint whose label matches `filter` (none: all).
    void setFilter(const std::optional<IpmbLabelOp> &filter);

    // All there is to say about the row's message, for the detail pane: the fields by name, and
    // "payload" pretty-printed. Empty for a row that is not there.
    Q_INVOKABLE QVariantMap details(int row) const;
    const ObservedMessage *at(int row) const;

Q_SIGNALS:
    void countChanged();

private:
    bool matches(const ObservedMessage &entry) const;

    const int m_limit;
    std::deque<ObservedMessage> m_all;   // the last m_limit copies, oldest first
    QList<ObservedMessage> m_rows;       // those of m_all that match, newest first
    std::optional<IpmbLabelOp> m_filter;
    std::function<QColor(quint32)> m_colourOf;
};

// How the inspector shows parts of a copy; shared by the table, the detail pane and the test hooks.
namespace ObservedText {
QString kind(const ObservedMessage &entry);
QString receiver(const ObservedMessage &entry);
QString type(const ObservedMessage &entry);
QString size(qint64 bytes);
// The payload on one line (the table), or pretty-printed on many (the detail pane); either says
// so when the copy held only the start of it.
QString payloadLine(const ObservedMessage &entry);
QString payloadPretty(const ObservedMessage &entry);
}

#endif // IPMBQT_INSPECTOR_MESSAGELISTMODEL_H
