// SPDX-License-Identifier: BSD-3-Clause
#include "ipmblabelop.h"
#include "ipmblabelop_p.h"

#include "ipmblabel.h"
#include "ipmblimits_p.h"

#include <QtCore/qdatastream.h>
#include <QtCore/qdebug.h>
#include <QtCore/qhashfunctions.h>
#include <QtCore/qvarlengtharray.h>

#include <utility>

namespace {

using Kind = IpmbLabelOp::Kind;
using Ptr = IpmbLabelOpData::Ptr;

using IpmbLabelOpDetail::takeLast;

QSharedDataPointer<IpmbLabelOpData> sharedConstant(Kind kind)
{
    // matchAll()/matchNone() and default construction share two nodes and never allocate.
    static const QSharedDataPointer<IpmbLabelOpData> trueNode(new IpmbLabelOpData(Kind::True));
    static const QSharedDataPointer<IpmbLabelOpData> falseNode(new IpmbLabelOpData(Kind::False));
    return kind == Kind::True ? trueNode : falseNode;
}

Ptr ptrTo(const IpmbLabelOpData *node)
{
    // Nodes are immutable; the const_cast only lets the (non-const) refcounting pointer hold it.
    return Ptr(const_cast<IpmbLabelOpData *>(node));
}

} // namespace

/*!
    \class IpmbLabelOp
    \inmodule IpmbQt
    \inheaderfile IpmbQt/IpmbLabelOp
    \brief A boolean expression over an IpmbLabel, used by IpmbSelector to pick receivers.

    An op is \c true or \c false, a leaf that is true when the label contains a
    name, or a negation, conjunction or disjunction of other ops. Build one with
    the operators \c{!}, \c{&&} and \c{||}:

    \code
    const IpmbLabelOp op = IpmbLabelOp("renderer") && !IpmbLabelOp("gpu0");
    \endcode

    or parse its text form with fromString(). Equality is structural: \c{a && b}
    and \c{b && a} are different ops. IpmbLabelOp is implicitly shared and
    immutable, so combining ops shares their subtrees instead of copying them.

    The wire codec accepts ops at most 64 levels deep (a leaf is one level) with at
    most 1024 nodes and leaf names of at most 1024 UTF-8 bytes. Deeper or larger ops
    can be built and matched locally but are rejected when sent.

    \sa IpmbLabel, IpmbSelector
*/

/*!
    \enum IpmbLabelOp::Kind
    \value False Matches no label.
    \value True Matches every label.
    \value Leaf Matches labels that contain name().
    \value Not Matches labels its single operand does not match.
    \value And Matches labels both operands match.
    \value Or Matches labels at least one operand matches.
*/

/*!
    Constructs an op that matches every label (Kind::True).
*/
IpmbLabelOp::IpmbLabelOp()
    : d(sharedConstant(Kind::True))
{
}

/*!
    Constructs a leaf that matches labels containing \a name.
*/
IpmbLabelOp::IpmbLabelOp(const QString &name)
    : d(new IpmbLabelOpData(name))
{
}

/*!
    Constructs a leaf that matches labels containing \a name, which is UTF-8.
*/
IpmbLabelOp::IpmbLabelOp(const char *name)
    : IpmbLabelOp(QString::fromUtf8(name))
{
}

IpmbLabelOp::IpmbLabelOp(IpmbLabelOpData *data)
    : d(data)
{
}

/*! Constructs a copy of \a other. */
IpmbLabelOp::IpmbLabelOp(const IpmbLabelOp &other) = default;

/*! Move-constructs an op from \a other. */
IpmbLabelOp::IpmbLabelOp(IpmbLabelOp &&other) noexcept = default;

/*! Assigns \a other to this op. */
IpmbLabelOp &IpmbLabelOp::operator=(const IpmbLabelOp &other) = default;

/*! Move-assigns \a other to this op. */
IpmbLabelOp &IpmbLabelOp::operator=(IpmbLabelOp &&other) noexcept = default;

/*! Destroys the op. Releasing even a very deep op does not recurse. */
IpmbLabelOp::~IpmbLabelOp() = default;

/*!
    \fn void IpmbLabelOp::swap(IpmbLabelOp &other)
    Swaps this op with \a other. This operation is very fast and never fails.
*/

/*!
    Returns an op that matches every label (Kind::True).
*/
IpmbLabelOp IpmbLabelOp::matchAll()
{
    return IpmbLabelOp();
}

/*!
    Returns an op that matches no label (Kind::False).
*/
IpmbLabelOp IpmbLabelOp::matchNone()
{
    IpmbLabelOp op;
    op.d = sharedConstant(Kind::False);
    return op;
}

/*!
    \property IpmbLabelOp::kind
    \brief the kind of the root node of this op.

    \sa kind()
*/

/*!
    \property IpmbLabelOp::name
    \brief the name a Kind::Leaf op looks for; empty for other kinds.

    \sa name()
*/

/*!
    \property IpmbLabelOp::text
    \brief the text form of this op, which fromString() parses back into an equal op.

    Read-only, for QML; C++ code calls toString().
*/
/*!
    Returns the kind of the root node of this op.
*/
IpmbLabelOp::Kind IpmbLabelOp::kind() const
{
    return d->kind;
}

/*!
    Returns the name a Kind::Leaf op looks for, or an empty string for other kinds.
*/
QString IpmbLabelOp::name() const
{
    return d->name;
}

/*!
    Returns the operands of the root node: one for Kind::Not, two (left, right)
    for Kind::And and Kind::Or, none otherwise.
*/
QList<IpmbLabelOp> IpmbLabelOp::operands() const
{
    QList<IpmbLabelOp> result;
    for (const Ptr &operand : d->operands) {
        if (operand)
            result.append(IpmbLabelOp(operand.data()));
    }
    return result;
}

/*!
    Returns \c true if \a label satisfies this op. A leaf is satisfied when the
    label contains its name. \c{&&} and \c{||} short-circuit from left to right.

    The evaluation uses no recursion and allocates no memory for ops up to 64 levels
    deep, the most the wire codec accepts.
*/
bool IpmbLabelOp::matches(const IpmbLabel &label) const
{
    struct Frame
    {
        const IpmbLabelOpData *node;
        int step; // operands already evaluated
    };
    QVarLengthArray<Frame, IpmbLimits::MaxOpDepth> stack;
    stack.append(Frame{d.constData(), 0});
    bool value = true;
    while (!stack.isEmpty()) {
        Frame &top = stack.last();
        const IpmbLabelOpData *node = top.node;
        switch (node->kind) {
        case Kind::False:
            value = false;
            stack.removeLast();
            break;
        case Kind::True:
            value = true;
            stack.removeLast();
            break;
        case Kind::Leaf:
            value = label.contains(node->name);
            stack.removeLast();
            break;
        case Kind::Not:
            if (top.step == 0) {
                top.step = 1;
                stack.append(Frame{node->operand(0), 0}); // invalidates `top`
            } else {
                value = !value;
                stack.removeLast();
            }
            break;
        case Kind::And:
        case Kind::Or: {
            // After the left operand, `value` decides And when false and Or when true.
            const bool decided = top.step == 1 && value == (node->kind == Kind::Or);
            if (top.step < 2 && !decided) {
                const int operand = top.step;
                top.step = operand + 1;
                stack.append(Frame{node->operand(operand), 0}); // invalidates `top`
            } else {
                stack.removeLast(); // `value` is the result of the last operand evaluated
            }
            break;
        }
        }
    }
    return value;
}

/*!
    \fn IpmbLabelOp IpmbLabelOp::operator!(const IpmbLabelOp &op)
    Returns an op that matches the labels \a op does not match.
*/
IpmbLabelOp operator!(const IpmbLabelOp &op)
{
    return IpmbLabelOp(new IpmbLabelOpData(Kind::Not, ptrTo(op.d.constData())));
}

/*!
    \fn IpmbLabelOp IpmbLabelOp::operator&&(const IpmbLabelOp &lhs, const IpmbLabelOp &rhs)
    Returns an op that matches the labels both \a lhs and \a rhs match.
*/
IpmbLabelOp operator&&(const IpmbLabelOp &lhs, const IpmbLabelOp &rhs)
{
    return IpmbLabelOp(new IpmbLabelOpData(Kind::And, ptrTo(lhs.d.constData()),
                                           ptrTo(rhs.d.constData())));
}

/*!
    \fn IpmbLabelOp IpmbLabelOp::operator||(const IpmbLabelOp &lhs, const IpmbLabelOp &rhs)
    Returns an op that matches the labels \a lhs or \a rhs (or both) match.
*/
IpmbLabelOp operator||(const IpmbLabelOp &lhs, const IpmbLabelOp &rhs)
{
    return IpmbLabelOp(new IpmbLabelOpData(Kind::Or, ptrTo(lhs.d.constData()),
                                           ptrTo(rhs.d.constData())));
}

/*!
    \fn bool IpmbLabelOp::operator==(const IpmbLabelOp &lhs, const IpmbLabelOp &rhs)
    Returns \c true if \a lhs and \a rhs have the same structure: the same kinds,
    names and operands in the same order.
*/
bool operator==(const IpmbLabelOp &lhs, const IpmbLabelOp &rhs)
{
    using Pair = std::pair<const IpmbLabelOpData *, const IpmbLabelOpData *>;
    QVarLengthArray<Pair, IpmbLimits::MaxOpDepth> stack;
    stack.append(Pair{lhs.d.constData(), rhs.d.constData()});
    while (!stack.isEmpty()) {
        const auto [a, b] = takeLast(stack);
        if (a == b)
            continue; // shared subtree
        if (a->kind != b->kind || a->hash != b->hash || a->depth != b->depth
            || a->nodeCount != b->nodeCount || a->name != b->name)
            return false;
        for (int i = 1; i >= 0; --i) {
            if (a->operands[i])
                stack.append(Pair{a->operand(i), b->operand(i)});
        }
    }
    return true;
}

/*!
    \fn bool IpmbLabelOp::operator!=(const IpmbLabelOp &lhs, const IpmbLabelOp &rhs)
    Returns \c true if \a lhs and \a rhs differ in structure.
*/

/*!
    \fn size_t IpmbLabelOp::qHash(const IpmbLabelOp &op, size_t seed)
    Returns the hash value for \a op, using \a seed to seed the calculation.
    Structurally equal ops have equal hashes. This takes constant time.
*/
size_t IpmbLabelOp::hash(size_t seed) const noexcept
{
    return qHash(d->hash, seed);
}

#ifndef QT_NO_DEBUG_STREAM
/*!
    \relates IpmbLabelOp
    Writes \a op to \a debug as \c{IpmbLabelOp(renderer && !gpu0)}.
*/
QDebug operator<<(QDebug debug, const IpmbLabelOp &op)
{
    const QDebugStateSaver saver(debug);
    debug.nospace().noquote() << "IpmbLabelOp(" << op.toString() << ')';
    return debug;
}
#endif

#ifndef QT_NO_DATASTREAM
/*!
    \relates IpmbLabelOp
    Writes \a op to the stream \a out: each node in prefix order as a \c quint8
    kind, followed by a QString for leaves.
*/
QDataStream &operator<<(QDataStream &out, const IpmbLabelOp &op)
{
    QVarLengthArray<IpmbLabelOp, IpmbLimits::MaxOpDepth> stack;
    stack.append(op);
    while (!stack.isEmpty() && out.status() == QDataStream::Ok) {
        const IpmbLabelOp node = takeLast(stack);
        out << quint8(node.kind());
        if (node.kind() == Kind::Leaf)
            out << node.name();
        const QList<IpmbLabelOp> operands = node.operands();
        for (auto it = operands.crbegin(); it != operands.crend(); ++it)
            stack.append(*it);
    }
    return out;
}

/*!
    \relates IpmbLabelOp
    Reads an op from \a in into \a op. Any depth is accepted (it is read without
    recursion). On a stream error or an unknown kind, the stream status is set and
    \a op becomes matchAll().
*/
QDataStream &operator>>(QDataStream &in, IpmbLabelOp &op)
{
    struct Pending
    {
        Kind kind;
        std::optional<IpmbLabelOp> left; // And/Or: set once the left operand is read
    };
    QList<Pending> stack; // grows with the input only, never with recursion
    while (in.status() == QDataStream::Ok) {
        quint8 rawKind = 0;
        in >> rawKind;
        if (in.status() != QDataStream::Ok)
            break;
        IpmbLabelOp node;
        switch (Kind(rawKind)) {
        case Kind::False:
            node = IpmbLabelOp::matchNone();
            break;
        case Kind::True:
            break;
        case Kind::Leaf: {
            QString name;
            in >> name;
            node = IpmbLabelOp(name);
            break;
        }
        case Kind::Not:
        case Kind::And:
        case Kind::Or:
            stack.append(Pending{Kind(rawKind), std::nullopt});
            continue;
        default:
            in.setStatus(QDataStream::ReadCorruptData);
            continue;
        }
        if (in.status() != QDataStream::Ok)
            break;
        // Hand the complete node to the pending operators, completing as many as possible.
        while (!stack.isEmpty()) {
            Pending &parent = stack.last();
            if (parent.kind == Kind::Not) {
                node = !node;
            } else if (!parent.left) {
                parent.left = std::move(node);
                break;
            } else {
                node = parent.kind == Kind::And ? (*parent.left && node) : (*parent.left || node);
            }
            stack.removeLast();
        }
        if (stack.isEmpty()) {
            op = std::move(node);
            return in;
        }
    }
    op = IpmbLabelOp();
    return in;
}
#endif

#include "moc_ipmblabelop.cpp"
