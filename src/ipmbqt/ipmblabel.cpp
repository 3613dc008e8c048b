// SPDX-License-Identifier: BSD-3-Clause
#include "ipmblabel.h"

#include <QtCore/qdatastream.h>
#include <QtCore/qdebug.h>
#include <QtCore/qhashfunctions.h>

#include <algorithm>

class IpmbLabelData : public QSharedData
{
public:
    // Kept sorted (QString::operator<) and free of duplicates: contains() is a binary search
    // that never allocates, which matters because the router calls it for every message, and
    // equal labels then have equal lists, so ==, qHash and the wire encoding need no sorting.
    QStringList names;
};

namespace {

QSharedDataPointer<IpmbLabelData> sharedEmptyLabel()
{
    // Default-constructed labels share one instance, so an empty label costs no allocation.
    static const QSharedDataPointer<IpmbLabelData> empty(new IpmbLabelData);
    return empty;
}

void sortAndDeduplicate(QStringList &names)
{
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
}

} // namespace

/*!
    \class IpmbLabel
    \inmodule IpmbQt
    \inheaderfile IpmbQt/IpmbLabel
    \brief An unordered set of strings describing an endpoint, such as
    \c{{"renderer", "gpu0"}}.

    Labels are matched by IpmbLabelOp expressions to route messages. Inserting a
    name that is already present does nothing. IpmbLabel is implicitly shared.

    \sa IpmbLabelOp, IpmbSelector
*/

/*!
    Constructs an empty label.
*/
IpmbLabel::IpmbLabel()
    : d(sharedEmptyLabel())
{
}

/*!
    Constructs a label holding \a names; duplicates are ignored.
*/
IpmbLabel::IpmbLabel(std::initializer_list<QString> names)
    : IpmbLabel(QStringList(names))
{
}

/*!
    Constructs a label holding \a names; duplicates are ignored.
*/
IpmbLabel::IpmbLabel(const QStringList &names)
    : d(new IpmbLabelData)
{
    d->names = names;
    sortAndDeduplicate(d->names);
}

/*! Constructs a copy of \a other. */
IpmbLabel::IpmbLabel(const IpmbLabel &other) = default;

/*! Move-constructs a label from \a other. */
IpmbLabel::IpmbLabel(IpmbLabel &&other) noexcept = default;

/*! Assigns \a other to this label. */
IpmbLabel &IpmbLabel::operator=(const IpmbLabel &other) = default;

/*! Move-assigns \a other to this label. */
IpmbLabel &IpmbLabel::operator=(IpmbLabel &&other) noexcept = default;

/*! Destroys the label. */
IpmbLabel::~IpmbLabel() = default;

/*!
    \fn void IpmbLabel::swap(IpmbLabel &other)
    Swaps this label with \a other. This operation is very fast and never fails.
*/

/*!
    \property IpmbLabel::empty
    \brief whether the label holds no names.

    \sa isEmpty()
*/

/*!
    \property IpmbLabel::size
    \brief the number of names in the label.

    \sa size()
*/

/*!
    \property IpmbLabel::names
    \brief the names of the label, sorted in ascending QString order.

    Read-only, for QML; C++ code calls toStringList().
*/
/*!
    Returns \c true if the label holds no names.
*/
bool IpmbLabel::isEmpty() const
{
    return d->names.isEmpty();
}

/*!
    Returns the number of distinct names in the label.
*/
qsizetype IpmbLabel::size() const
{
    return d->names.size();
}

/*!
    Returns \c true if the label holds \a name. The comparison is case-sensitive.
    This never allocates memory.
*/
bool IpmbLabel::contains(const QString &name) const
{
    const QStringList &names = d->names;
    return std::binary_search(names.cbegin(), names.cend(), name);
}

/*!
    Adds \a name to the label; does nothing if it is already there.
*/
void IpmbLabel::insert(const QString &name)
{
    const QStringList &names = std::as_const(d)->names;
    const auto it = std::lower_bound(names.cbegin(), names.cend(), name);
    if (it != names.cend() && *it == name)
        return;
    const qsizetype index = it - names.cbegin();
    d->names.insert(index, name); // detaches only when something changes
}

/*!
    Removes \a name from the label; does nothing if it is not there.
*/
void IpmbLabel::remove(const QString &name)
{
    const QStringList &names = std::as_const(d)->names;
    const auto it = std::lower_bound(names.cbegin(), names.cend(), name);
    if (it == names.cend() || *it != name)
        return;
    const qsizetype index = it - names.cbegin();
    d->names.removeAt(index);
}

/*!
    Returns the names of the label, sorted in ascending QString order.
*/
QStringList IpmbLabel::toStringList() const
{
    return d->names;
}

/*!
    Returns the names, sorted, joined by \c{", "}: \c{"gpu0, renderer"}. QML calls this
    function when it shows a label as text.
*/
QString IpmbLabel::toString() const
{
    return d->names.join(u", ");
}

/*!
    \fn bool IpmbLabel::operator==(const IpmbLabel &lhs, const IpmbLabel &rhs)
    Returns \c true if \a lhs and \a rhs hold the same names.
*/
bool operator==(const IpmbLabel &lhs, const IpmbLabel &rhs)
{
    return lhs.d == rhs.d || lhs.d->names == rhs.d->names;
}

/*!
    \fn bool IpmbLabel::operator!=(const IpmbLabel &lhs, const IpmbLabel &rhs)
    Returns \c true if \a lhs and \a rhs differ.
*/

/*!
    \relates IpmbLabel
    Returns the hash value for \a label, using \a seed to seed the calculation.
*/
size_t qHash(const IpmbLabel &label, size_t seed) noexcept
{
    const QStringList names = label.toStringList(); // shallow copy; sorted, so order is canonical
    return qHashRange(names.cbegin(), names.cend(), seed);
}

#ifndef QT_NO_DEBUG_STREAM
/*!
    \relates IpmbLabel
    Writes \a label to \a debug as \c{IpmbLabel("gpu0", "renderer")}.
*/
QDebug operator<<(QDebug debug, const IpmbLabel &label)
{
    const QDebugStateSaver saver(debug);
    debug.nospace() << "IpmbLabel(";
    const QStringList names = label.toStringList();
    for (qsizetype i = 0; i < names.size(); ++i) {
        if (i)
            debug << ", ";
        debug << names.at(i);
    }
    debug << ')';
    return debug;
}
#endif

#ifndef QT_NO_DATASTREAM
/*!
    \relates IpmbLabel
    Writes \a label to the stream \a out as a sorted QStringList.
*/
QDataStream &operator<<(QDataStream &out, const IpmbLabel &label)
{
    return out << label.toStringList();
}

/*!
    \relates IpmbLabel
    Reads a label from \a in into \a label. On a stream error \a label becomes empty.
*/
QDataStream &operator>>(QDataStream &in, IpmbLabel &label)
{
    QStringList names;
    in >> names;
    label = in.status() == QDataStream::Ok ? IpmbLabel(names) : IpmbLabel();
    return in;
}
#endif

#include "moc_ipmblabel.cpp"
