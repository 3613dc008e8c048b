// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbselector.h"
#include "ipmblimits_p.h"

#include <QtCore/qdatastream.h>
#include <QtCore/qdebug.h>
#include <QtCore/qhashfunctions.h>

#include <algorithm>

class IpmbSelectorData : public QSharedData
{
public:
    IpmbSelector::Mode mode = IpmbSelector::Unicast;
    IpmbLabelOp op;
    std::chrono::milliseconds ttl{0};
    QString errorString; // set by fromString() on a syntax error: the selector is invalid
};

namespace {


std::chrono::milliseconds clampTtl(std::chrono::milliseconds ttl)
{
    return std::chrono::milliseconds(std::clamp<std::chrono::milliseconds::rep>(ttl.count(), 0, IpmbLimits::MaxTtlMsecs));
}

QSharedDataPointer<IpmbSelectorData> sharedDefaultSelector()
{
    // Default-constructed selectors share one instance, so they cost no allocation.
    static const QSharedDataPointer<IpmbSelectorData> defaultData(new IpmbSelectorData);
    return defaultData;
}

} // namespace

/*!
    \class IpmbSelector
    \inmodule IpmbQt
    \inheaderfile IpmbQt/IpmbSelector
    \brief Says which endpoints receive a message: an IpmbLabelOp, a delivery mode and a ttl.

    The controller matches the selector's labelOp() against the label of every endpoint.
    In \l Unicast mode exactly one matching endpoint receives the message; in
    \l Multicast mode every matching endpoint does. If nothing matches, the controller
    keeps the message for ttl() and delivers it if a matching endpoint joins in time;
    a ttl of 0 drops it at once.

    \code
    // Every renderer except the one on gpu0; wait up to 5 s for one to join.
    const IpmbSelector selector = IpmbSelector::multicast(
            IpmbLabelOp("renderer") && !IpmbLabelOp("gpu0"), std::chrono::seconds(5));
    \endcode

    IpmbSelector is implicitly shared.

    \sa IpmbLabelOp, IpmbLabel
*/

/*!
    \enum IpmbSelector::Mode
    \value Unicast Exactly one matching endpoint receives the message.
    \value Multicast Every matching endpoint receives the message.
*/

/*!
    Constructs a Unicast selector that matches every endpoint, with a ttl of 0.
*/
IpmbSelector::IpmbSelector()
    : d(sharedDefaultSelector())
{
}

/*!
    Constructs a selector with \a mode, label op \a op and \a ttl.
    \a ttl is clamped to [0, 0xFFFFFFFF] milliseconds.
*/
IpmbSelector::IpmbSelector(Mode mode, const IpmbLabelOp &op, std::chrono::milliseconds ttl)
    : d(new IpmbSelectorData)
{
    d->mode = mode;
    d->op = op;
    d->ttl = clampTtl(ttl);
}

/*! Constructs a copy of \a other. */
IpmbSelector::IpmbSelector(const IpmbSelector &other) = default;

/*! Move-constructs a selector from \a other. */
IpmbSelector::IpmbSelector(IpmbSelector &&other) noexcept = default;

/*! Assigns \a other to this selector. */
IpmbSelector &IpmbSelector::operator=(const IpmbSelector &other) = default;

/*! Move-assigns \a other to this selector. */
IpmbSelector &IpmbSelector::operator=(IpmbSelector &&other) noexcept = default;

/*! Destroys the selector. */
IpmbSelector::~IpmbSelector() = default;

/*!
    \fn void IpmbSelector::swap(IpmbSelector &other)
    Swaps this selector with \a other. This operation is very fast and never fails.
*/

/*!
    Returns a Unicast selector with label op \a op and \a ttl.
*/
IpmbSelector IpmbSelector::unicast(const IpmbLabelOp &op, std::chrono::milliseconds ttl)
{
    return IpmbSelector(Unicast, op, ttl);
}

/*!
    Returns a Multicast selector with label op \a op and \a ttl.
*/
IpmbSelector IpmbSelector::multicast(const IpmbLabelOp &op, std::chrono::milliseconds ttl)
{
    return IpmbSelector(Multicast, op, ttl);
}

/*!
    Returns a selector with \a mode and \a ttl whose label op is parsed from \a labelOp with
    IpmbLabelOp::fromString(), for example \c{"renderer && !gpu0"}.

    If \a labelOp has a syntax error, the selector is invalid: isValid() returns \c false,
    errorString() says what is wrong and where, the label op matches no endpoint, and
    IpmbEndpoint::send() refuses the selector with IpmbEndpoint::InvalidArgumentError. This is how
    QML's \c{Selector.unicast("...")} reports a mistake instead of sending to nobody.
*/
IpmbSelector IpmbSelector::fromString(Mode mode, const QString &labelOp, std::chrono::milliseconds ttl)
{
    QString why;
    if (const std::optional<IpmbLabelOp> op = IpmbLabelOp::fromString(labelOp, &why))
        return IpmbSelector(mode, *op, ttl);
    IpmbSelector invalid(mode, IpmbLabelOp::matchNone(), ttl);
    invalid.d->errorString = QStringLiteral("invalid label op \"%1\": %2").arg(labelOp, why);
    return invalid;
}

/*!
    \property IpmbSelector::valid
    \brief whether the selector can be sent.

    \c false only for a selector from fromString() whose label op does not parse; it matches
    nothing and IpmbEndpoint::send() refuses it with IpmbEndpoint::InvalidArgumentError.
    \sa isValid()
*/

/*!
    \property IpmbSelector::errorString
    \brief why the selector is invalid; empty if it is valid.
*/
/*!
    Returns \c false if the selector came from fromString() with a label op that does not parse.
    \sa errorString()
*/
bool IpmbSelector::isValid() const
{
    return d->errorString.isEmpty();
}

/*!
    Returns why the selector is invalid, or an empty string if it is valid.
    \sa isValid()
*/
QString IpmbSelector::errorString() const
{
    return d->errorString;
}

/*!
    \property IpmbSelector::mode
    \brief the delivery mode: one matching endpoint (Unicast) or every one (Multicast).
*/
/*!
    Returns the delivery mode.
*/
IpmbSelector::Mode IpmbSelector::mode() const
{
    return d->mode;
}

/*!
    Sets the delivery mode to \a mode.
*/
void IpmbSelector::setMode(Mode mode)
{
    if (std::as_const(d)->mode != mode)
        d->mode = mode;
}

/*!
    \property IpmbSelector::labelOp
    \brief the label op that the labels of the receivers must match.

    Setting it makes an invalid selector valid again.
*/
/*!
    Returns the label op that endpoints' labels must match.
*/
IpmbLabelOp IpmbSelector::labelOp() const
{
    return d->op;
}

/*!
    Sets the label op to \a op.
*/
void IpmbSelector::setLabelOp(const IpmbLabelOp &op)
{
    d->op = op;
    d->errorString.clear();
}

/*!
    \property IpmbSelector::ttl
    \brief how long, in milliseconds, the controller keeps a message that matches no endpoint
    yet.

    With 0 (the default) such a message is dropped at once; with a ttl it waits for a matching
    endpoint to join in time (within the controller's budget, see the
    \l {guides/concepts.html}{concepts guide}). Clamped to [0, 0xFFFFFFFF]. C++ code uses ttl()
    and setTtl() with std::chrono::milliseconds.
*/
/*!
    Returns how long the controller keeps a message that matched no endpoint yet.
*/
std::chrono::milliseconds IpmbSelector::ttl() const
{
    return d->ttl;
}

/*!
    Sets the ttl to \a ttl, clamped to [0, 0xFFFFFFFF] milliseconds (about 49.7 days),
    the range the wire format can carry.
*/
void IpmbSelector::setTtl(std::chrono::milliseconds ttl)
{
    const std::chrono::milliseconds clamped = clampTtl(ttl);
    if (std::as_const(d)->ttl != clamped)
        d->ttl = clamped;
}

/*!
    \fn bool IpmbSelector::operator==(const IpmbSelector &lhs, const IpmbSelector &rhs)
    Returns \c true if \a lhs and \a rhs have the same mode, ttl and (structurally) label op,
    and are both valid or both invalid for the same reason.
*/
bool operator==(const IpmbSelector &lhs, const IpmbSelector &rhs)
{
    return lhs.d == rhs.d
            || (lhs.d->mode == rhs.d->mode && lhs.d->ttl == rhs.d->ttl && lhs.d->op == rhs.d->op
                && lhs.d->errorString == rhs.d->errorString);
}

/*!
    \fn bool IpmbSelector::operator!=(const IpmbSelector &lhs, const IpmbSelector &rhs)
    Returns \c true if \a lhs and \a rhs differ.
*/

/*!
    \relates IpmbSelector
    Returns the hash value for \a selector, using \a seed to seed the calculation.
*/
size_t qHash(const IpmbSelector &selector, size_t seed) noexcept
{
    return qHashMulti(seed, int(selector.mode()), selector.labelOp(),
                      qint64(selector.ttl().count()));
}

#ifndef QT_NO_DEBUG_STREAM
/*!
    \relates IpmbSelector
    Writes \a selector to \a debug as \c{IpmbSelector(Multicast, renderer && !gpu0, ttl=500ms)}.
*/
QDebug operator<<(QDebug debug, const IpmbSelector &selector)
{
    const QDebugStateSaver saver(debug);
    debug.nospace().noquote() << "IpmbSelector("
                              << (selector.mode() == IpmbSelector::Multicast ? "Multicast"
                                                                              : "Unicast")
                              << ", " << selector.labelOp().toString()
                              << ", ttl=" << qint64(selector.ttl().count()) << "ms)";
    return debug;
}
#endif

#ifndef QT_NO_DATASTREAM
/*!
    \relates IpmbSelector
    Writes \a selector to the stream \a out.
*/
QDataStream &operator<<(QDataStream &out, const IpmbSelector &selector)
{
    return out << quint8(selector.mode()) << quint32(selector.ttl().count())
               << selector.labelOp();
}

/*!
    \relates IpmbSelector
    Reads a selector from \a in into \a selector. On a stream error or an unknown mode,
    the stream status is set and \a selector becomes a default-constructed selector.
*/
QDataStream &operator>>(QDataStream &in, IpmbSelector &selector)
{
    quint8 mode = 0;
    quint32 ttl = 0;
    IpmbLabelOp op;
    in >> mode >> ttl >> op;
    if (in.status() == QDataStream::Ok && mode > IpmbSelector::Multicast)
        in.setStatus(QDataStream::ReadCorruptData);
    if (in.status() == QDataStream::Ok)
        selector = IpmbSelector(IpmbSelector::Mode(mode), op, std::chrono::milliseconds(ttl));
    else
        selector = IpmbSelector();
    return in;
}
#endif

#include "moc_ipmbselector.cpp"
