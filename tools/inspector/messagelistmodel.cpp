// SPDX-License-Identifier: BSD-3-Clause
#include "messagelistmodel.h"

#include "payloads.h"

#include <QtCore/qdatetime.h>
#include <QtCore/qlocale.h>

using namespace Qt::StringLiterals;

// What the table shows of a payload on one line; the detail pane shows all of it.
constexpr qsizetype PayloadLineChars = 160;

namespace ObservedText {

QString kind(const ObservedMessage &entry)
{
    const IpmbObservation &o = entry.observation;
    if (o.reply)
        return u"reply"_s;
    if (o.request)
        return u"request"_s;
    return entry.message.selector().mode() == IpmbSelector::Multicast ? u"multicast"_s : u"unicast"_s;
}

QString receiver(const ObservedMessage &entry)
{
    const IpmbObservation &o = entry.observation;
    if (o.target != 0) {
        const QString label = entry.targetLabel.toStringList().join(u',');
        return label.isEmpty() ? QString::number(o.target) : label;
    }
    if (o.deliveries == IpmbObservation::KeptForTtl)
        return u"(kept for its ttl)"_s;
    if (o.deliveries == 0)
        return u"(nobody)"_s;
    return o.deliveries == 1 ? u"(1 endpoint)"_s : u"(%1 endpoints)"_s.arg(o.deliveries);
}

QString type(const ObservedMessage &entry)
{
    const QByteArray name = entry.message.payloadTypeName();
    if (!name.isEmpty())
        return QString::fromLatin1(name);
    return entry.observation.payloadInRegion ? u"?"_s : u"null"_s;
}

QString size(qint64 bytes)
{
    if (bytes < 10 * 1024)
        return u"%1 B"_s.arg(bytes);
    if (bytes < 10 * 1024 * 1024)
        return u"%1 KiB"_s.arg(bytes / 1024);
    return u"%1 MiB"_s.arg(bytes / (1024 * 1024));
}

static bool whole(const ObservedMessage &entry)
{
    const IpmbObservation &o = entry.observation;
    return !o.payloadInRegion && o.payloadPrefix.size() == o.payloadSize;
}

// A payload of which the copy holds only the start (as `ipmbqt monitor` shows it).
static QString partial(const ObservedMessage &entry, bool oneLine)
{
    const IpmbObservation &o = entry.observation;
    if (o.payloadInRegion)
        return u"<%1 in shared memory: a monitor gets none of it>"_s.arg(size(o.payloadSize));
    QString start = IpmbToolSupport::payloadPrefixText(o.payloadPrefix);
    if (start.isNull())
        return u"<%1, %2: only the first %3 came along, too little to read>"_s.arg(
                type(entry), size(o.payloadSize), size(o.payloadPrefix.size()));
    if (oneLine)
        return start.replace(u'\n', u"\\n"_s) + QChar(0x2026);
    return start + u"\u2026\n\n(the first %1 of %2)"_s.arg(size(o.payloadPrefix.size()), size(o.payloadSize));
}

QString payloadLine(const ObservedMessage &entry)
{
    const QString text = whole(entry) ? payloadText(entry.message) : partial(entry, true);
    return text.size() > PayloadLineChars ? text.left(PayloadLineChars) + QChar(0x2026) : text;
}

QString payloadPretty(const ObservedMessage &entry)
{
    return whole(entry) ? payloadPrettyText(entry.message) : partial(entry, false);
}

} // namespace ObservedText

MessageListModel::MessageListModel(int limit, QObject *parent) : QAbstractListModel(parent), m_limit(qMax(1, limit))
{
}

int MessageListModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

const ObservedMessage *MessageListModel::at(int row) const
{
    return row >= 0 && row < m_rows.size() ? &m_rows.at(row) : nullptr;
}

static QString labelText(const IpmbLabel &label, quint32 id)
{
    const QString names = label.toStringList().join(u',');
    return names.isEmpty() ? QString::number(id) : names;
}

QVariant MessageListModel::data(const QModelIndex &index, int role) const
{
    const ObservedMessage *entry = at(index.row());
    if (!entry || index.column() != 0)
        return {};
    const IpmbMessage &message = entry->message;
    switch (role) {
    case SequenceRole:
        return qint64(entry->sequence);
    case TimeRole:
        return QDateTime::fromMSecsSinceEpoch(entry->receivedMsecs).toString(u"hh:mm:ss.zzz"_s);
    case Qt::DisplayRole:
    case SenderRole:
        return labelText(message.senderLabel(), message.senderId());
    case SenderIdRole:
        return qint64(message.senderId());
    case SenderColourRole:
        return m_colourOf ? m_colourOf(message.senderId()) : QColor(Qt::gray);
    case ReceiverRole:
        return ObservedText::receiver(*entry);
    case KindRole:
        return QString(ObservedText::kind(*entry)
                       + (entry->observation.tracked && !entry->observation.request ? u" tracked"_s : QString()));
    case SelectorRole:
        return entry->observation.reply ? QString() : message.selector().labelOp().toString();
    case PathRole:
        return entry->observation.path == IpmbObservation::OnChannel ? u"channel"_s : u"controller"_s;
    case TypeRole:
        return ObservedText::type(*entry);
    case SizeRole:
        return ObservedText::size(entry->observation.payloadSize);
    case PayloadRole:
        return ObservedText::payloadLine(*entry);
    default:
        return {};
    }
}

QHash<int, QByteArray> MessageListModel::roleNames() const
{
    return {
        {SequenceRole, "sequence"},
        {TimeRole, "time"},
        {SenderRole, "sender"},
        {SenderIdRole, "senderId"},
        {SenderColourRole, "senderColour"},
        {ReceiverRole, "receiver"},
        {KindRole, "kind"},
        {SelectorRole, "selector"},
        {PathRole, "path"},
        {TypeRole, "type"},
        {SizeRole, "size"},
        {PayloadRole, "payload"},
    };
}

bool MessageListModel::matches(const ObservedMessage &entry) const
{
    // As `ipmbqt monitor --filter`: the sender's label, or the one receiver's.
    return !m_filter || m_filter->matches(entry.message.senderLabel())
            || (entry.observation.target != 0 && m_filter->matches(entry.targetLabel));
}

void MessageListModel::append(std::deque<ObservedMessage> &&batch)
{
    while (qsizetype(batch.size()) > m_limit)
        batch.pop_front();
    QList<ObservedMessage> shown;
    for (ObservedMessage &entry : batch) {
        if (matches(entry))
            shown.prepend(entry);
        m_all.push_back(std::move(entry));
    }
    while (qsizetype(m_all.size()) > m_limit)
        m_all.pop_front();
    if (shown.size() > m_limit)
        shown.resize(m_limit);
    if (!shown.isEmpty()) {
        beginInsertRows(QModelIndex(), 0, int(shown.size()) - 1);
        m_rows = shown + m_rows;
        endInsertRows();
    }
    // The oldest rows go (they are also the oldest in m_all, so a row never outlives its copy).
    if (m_rows.size() > m_limit) {
        beginRemoveRows(QModelIndex(), m_limit, int(m_rows.size()) - 1);
        m_rows.resize(m_limit);
        endRemoveRows();
    }
    if (!shown.isEmpty())
        Q_EMIT countChanged();
}

void MessageListModel::setFilter(const std::optional<IpmbLabelOp> &filter)
{
    beginResetModel();
    m_filter = filter;
    m_rows.clear();
    for (auto it = m_all.crbegin(); it != m_all.crend(); ++it) {
        if (matches(*it))
            m_rows.append(*it);
    }
    endResetModel();
    Q_EMIT countChanged();
}

QVariantMap MessageListModel::details(int row) const
{
    const ObservedMessage *entry = at(row);
    if (!entry)
        return {};
    const IpmbMessage &message = entry->message;
    const IpmbObservation &o = entry->observation;
    QString receiver = ObservedText::receiver(*entry);
    if (o.target != 0)
        receiver += u" (id %1)"_s.arg(o.target);
    QString deliveries = o.deliveries == IpmbObservation::KeptForTtl ? u"kept for its ttl"_s : QString::number(o.deliveries);
    QString attachments = o.handleCount == 0 ? u"none"_s
            : u"%1 handles, %2 of them memory regions"_s.arg(o.handleCount).arg(o.regionCount);
    return {
        {u"sequence"_s, qint64(entry->sequence)},
        {u"time"_s, QDateTime::fromMSecsSinceEpoch(entry->receivedMsecs).toString(u"yyyy-MM-dd hh:mm:ss.zzz"_s)},
        {u"sender"_s, u"%1 (id %2, pid %3, uid %4)"_s.arg(labelText(message.senderLabel(), message.senderId()))
                              .arg(message.senderId()).arg(message.senderPid()).arg(message.senderUid())},
        {u"receiver"_s, receiver},
        {u"deliveries"_s, deliveries},
        {u"kind"_s, data(index(row), KindRole)},
        {u"selector"_s, o.reply ? u"(a reply: none)"_s : message.selector().labelOp().toString()},
        {u"path"_s, o.path == IpmbObservation::OnChannel ? u"a direct channel"_s : u"the controller"_s},
        {u"type"_s, ObservedText::type(*entry)},
        {u"size"_s, u"%1 bytes"_s.arg(QLocale::c().toString(o.payloadSize))},
        {u"attachments"_s, attachments},
        {u"payload"_s, ObservedText::payloadPretty(*entry)},
    };
}
