// SPDX-License-Identifier: BSD-3-Clause
#include "ipmblabelop.h"

#include "ipmblabel.h"
#include "ipmblimits_p.h"

#include <QtCore/qdatastream.h>
#include <QtCore/qdebug.h>
#include <QtCore/qhashfunctions.h>
#include <QtCore/qvarlengtharray.h>

#include <algorithm>
#include <limits>
#include <utility>

class IpmbLabelOpData : public QSharedData
{
public:
    using Kind = IpmbLabelOp::Kind;
    using Ptr = QExplicitlySharedDataPointer<IpmbLabelOpData>;

    explicit IpmbLabelOpData(Kind k)
        : kind(k)
    {
        hash = qHash(int(kind));
    }

    explicit IpmbLabelOpData(const QString &leafName)
        : kind(Kind::Leaf), name(leafName)
    {
        hash = qHashMulti(0, int(kind), name);
    }

    IpmbLabelOpData(Kind k, Ptr first, Ptr second = Ptr())
        : kind(k)
    {
        operands[0] = std::move(first);
        operands[1] = std::move(second);
        depth = saturatingAdd(operands[0]->depth, 1);
        nodeCount = saturatingAdd(operands[0]->nodeCount, 1);
        if (operands[1]) {
            depth = std::max(depth, saturatingAdd(operands[1]->depth, 1));
            nodeCount = saturatingAdd(nodeCount, operands[1]->nodeCount);
            hash = qHashMulti(0, int(kind), operands[0]->hash, operands[1]->hash);
        } else {
            hash = qHashMulti(0, int(kind), operands[0]->hash);
        }
    }

    // Nodes are never modified after construction, so QSharedDataPointer must never clone one.
    IpmbLabelOpData(const IpmbLabelOpData &) = delete;
    IpmbLabelOpData &operator=(const IpmbLabelOpData &) = delete;

    ~IpmbLabelOpData()
    {
        // An op built with operators can be arbitrarily deep. Releasing it recursively could
        // overflow the stack, so the children this node owns alone are unlinked into a list
        // first and released one by one.
        QVarLengthArray<Ptr, 32> pending;
        for (Ptr &child : operands) {
            if (child)
                pending.append(std::move(child));
        }
        while (!pending.isEmpty()) {
            Ptr node = std::move(pending.last());
            pending.removeLast();
            // ref == 1 means `node` is the only reference left, so nobody else can see it.
            if (node->ref.loadRelaxed() == 1) {
                for (Ptr &child : node->operands) {
                    if (child)
                        pending.append(std::move(child));
                }
            }
        }
    }

    static quint32 saturatingAdd(quint32 a, quint32 b)
    {
        const quint64 sum = quint64(a) + b;
        return sum > std::numeric_limits<quint32>::max() ? std::numeric_limits<quint32>::max()
                                                          : quint32(sum);
    }

    const IpmbLabelOpData *operand(int i) const { return operands[i].constData(); }

    Kind kind;
    quint32 depth = 1;     // nodes on the longest path from here to a leaf (saturating)
    quint32 nodeCount = 1; // nodes of the tree with shared subtrees counted each time (saturating)
    size_t hash = 0;       // structural hash, seed 0; qHash() reseeds it
    QString name;          // Leaf only
    Ptr operands[2];       // Not: [0]; And/Or: [0] and [1]
};

namespace {

using Kind = IpmbLabelOp::Kind;
using Ptr = IpmbLabelOpData::Ptr;


// QVarLengthArray has no takeLast() in Qt 6.4.
template <typename T, qsizetype Prealloc>
T takeLast(QVarLengthArray<T, Prealloc> &stack)
{
    T value = std::move(stack.last());
    stack.removeLast();
    return value;
}

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

// Precedence for toString(): a node needs parentheses when its precedence is lower
// than what its position in the parent requires.
enum Precedence { PrecOr = 1, PrecAnd = 2, PrecNot = 3, PrecPrimary = 4 };

int precedence(Kind kind)
{
    switch (kind) {
    case Kind::Or:
        return PrecOr;
    case Kind::And:
        return PrecAnd;
    case Kind::Not:
        return PrecNot;
    case Kind::False:
    case Kind::True:
    case Kind::Leaf:
        break;
    }
    return PrecPrimary;
}

bool isNameChar(QChar ch)
{
    const char16_t c = ch.unicode();
    return (c >= u'a' && c <= u'z') || (c >= u'A' && c <= u'Z') || (c >= u'0' && c <= u'9')
            || c == u'_' || c == u'.' || c == u':' || c == u'/' || c == u'@' || c == u'+'
            || c == u'-';
}

bool isKeyword(QStringView word)
{
    return word == u"true" || word == u"false";
}

void appendName(QString &out, const QString &name)
{
    const bool plain = !name.isEmpty() && std::all_of(name.cbegin(), name.cend(), isNameChar)
            && !isKeyword(name);
    if (plain) {
        out += name;
        return;
    }
    out += QLatin1Char('"');
    for (const QChar ch : name) {
        if (ch == QLatin1Char('"') || ch == QLatin1Char('\\'))
            out += QLatin1Char('\\');
        out += ch;
    }
    out += QLatin1Char('"');
}

QString describeChar(QChar ch)
{
    if (ch.isPrint() && !ch.isSpace())
        return QLatin1Char('\'') + QString(ch) + QLatin1Char('\'');
    return QStringLiteral("U+%1").arg(uint(ch.unicode()), 4, 16, QLatin1Char('0')).toUpper();
}

// Recursive descent over the grammar in fromString(). Only '(' recurses, and at most
// MaxDepth times; chains of '!', '&&' and '||' are parsed in loops.
class Parser
{
public:
    explicit Parser(QStringView text)
        : m_text(text)
    {
    }

    std::optional<IpmbLabelOp> parse(QString *errorString)
    {
        std::optional<IpmbLabelOp> result = parseAll();
        if (errorString)
            *errorString = result ? QString() : m_error;
        return result;
    }

private:
    enum class Token { End, Name, True, False, Not, And, Or, LParen, RParen };

    struct Node
    {
        IpmbLabelOp op;
        int depth = 1;
    };

    std::optional<IpmbLabelOp> parseAll()
    {
        if (m_text.size() > IpmbLimits::MaxOpTextLength) {
            fail(QStringLiteral("expression is %1 characters long, more than the limit of %2")
                         .arg(m_text.size())
                         .arg(IpmbLimits::MaxOpTextLength));
            return std::nullopt;
        }
        if (!next())
            return std::nullopt;
        if (m_token == Token::End) {
            fail(QStringLiteral("empty expression"));
            return std::nullopt;
        }
        Node node;
        if (!parseOr(node))
            return std::nullopt;
        if (m_token == Token::RParen) {
            fail(QStringLiteral("unexpected ')' at position %1").arg(m_tokenStart));
            return std::nullopt;
        }
        if (m_token != Token::End) {
            fail(QStringLiteral("expected '&&', '||' or end of input at position %1")
                         .arg(m_tokenStart));
            return std::nullopt;
        }
        return node.op;
    }

    bool fail(const QString &message)
    {
        if (m_error.isEmpty())
            m_error = message;
        return false;
    }

    bool failDepth(qsizetype position)
    {
        return fail(QStringLiteral("nesting depth exceeds %1 at position %2")
                            .arg(IpmbLimits::MaxOpDepth)
                            .arg(position));
    }

    // Lexes the token starting at m_pos into m_token/m_tokenStart/m_tokenText.
    bool next()
    {
        while (m_pos < m_text.size() && m_text.at(m_pos).isSpace())
            ++m_pos;
        m_tokenStart = m_pos;
        m_tokenText.clear();
        if (m_pos == m_text.size()) {
            m_token = Token::End;
            return true;
        }
        const QChar ch = m_text.at(m_pos);
        switch (ch.unicode()) {
        case u'(':
            ++m_pos;
            m_token = Token::LParen;
            return true;
        case u')':
            ++m_pos;
            m_token = Token::RParen;
            return true;
        case u'!':
            ++m_pos;
            m_token = Token::Not;
            return true;
        case u'&':
        case u'|':
            if (m_pos + 1 < m_text.size() && m_text.at(m_pos + 1) == ch) {
                m_pos += 2;
                m_token = ch == QLatin1Char('&') ? Token::And : Token::Or;
                return true;
            }
            return fail(QStringLiteral("expected '%1%1' at position %2").arg(ch).arg(m_pos));
        case u'"':
            return lexString();
        default:
            break;
        }
        if (!isNameChar(ch))
            return fail(QStringLiteral("unexpected character %1 at position %2")
                                .arg(describeChar(ch))
                                .arg(m_pos));
        const qsizetype start = m_pos;
        while (m_pos < m_text.size() && isNameChar(m_text.at(m_pos)))
            ++m_pos;
        const QStringView word = m_text.sliced(start, m_pos - start);
        if (word == u"true") {
            m_token = Token::True;
        } else if (word == u"false") {
            m_token = Token::False;
        } else {
            m_token = Token::Name;
            m_tokenText = word.toString();
        }
        return true;
    }

    bool lexString()
    {
        const qsizetype start = m_pos;
        ++m_pos; // opening quote
        while (m_pos < m_text.size()) {
            const QChar ch = m_text.at(m_pos);
            if (ch == QLatin1Char('"')) {
                ++m_pos;
                m_token = Token::Name;
                return true;
            }
            if (ch == QLatin1Char('\\')) {
                if (m_pos + 1 == m_text.size())
                    break;
                const QChar escaped = m_text.at(m_pos + 1);
                if (escaped != QLatin1Char('"') && escaped != QLatin1Char('\\'))
                    return fail(QStringLiteral("invalid escape sequence \\%1 at position %2 "
                                               "(only \\\" and \\\\ are allowed)")
                                        .arg(escaped)
                                        .arg(m_pos));
                m_tokenText += escaped;
                m_pos += 2;
                continue;
            }
            m_tokenText += ch;
            ++m_pos;
        }
        return fail(QStringLiteral("unterminated string starting at position %1").arg(start));
    }

    bool combine(Kind kind, Node &left, Node &&right, qsizetype position)
    {
        const int depth = std::max(left.depth, right.depth) + 1;
        if (depth > IpmbLimits::MaxOpDepth)
            return failDepth(position);
        left.op = kind == Kind::And ? (left.op && right.op) : (left.op || right.op);
        left.depth = depth;
        return true;
    }

    bool parseOr(Node &out)
    {
        if (!parseAnd(out))
            return false;
        while (m_token == Token::Or) {
            const qsizetype position = m_tokenStart;
            Node right;
            if (!next() || !parseAnd(right) || !combine(Kind::Or, out, std::move(right), position))
                return false;
        }
        return true;
    }

    bool parseAnd(Node &out)
    {
        if (!parseUnary(out))
            return false;
        while (m_token == Token::And) {
            const qsizetype position = m_tokenStart;
            Node right;
            if (!next() || !parseUnary(right)
                || !combine(Kind::And, out, std::move(right), position))
                return false;
        }
        return true;
    }

    bool parseUnary(Node &out)
    {
        QVarLengthArray<qsizetype, 8> nots; // positions of the '!' prefixes, outermost first
        while (m_token == Token::Not) {
            if (nots.size() >= IpmbLimits::MaxOpDepth - 1) // its operand adds at least one more level
                return failDepth(m_tokenStart);
            nots.append(m_tokenStart);
            if (!next())
                return false;
        }
        if (!parsePrimary(out))
            return false;
        while (!nots.isEmpty()) {
            if (out.depth + 1 > IpmbLimits::MaxOpDepth)
                return failDepth(nots.last());
            out.op = !out.op;
            ++out.depth;
            nots.removeLast();
        }
        return true;
    }

    bool parsePrimary(Node &out)
    {
        switch (m_token) {
        case Token::Name:
            out = Node{IpmbLabelOp(m_tokenText), 1};
            return next();
        case Token::True:
            out = Node{IpmbLabelOp::matchAll(), 1};
            return next();
        case Token::False:
            out = Node{IpmbLabelOp::matchNone(), 1};
            return next();
        case Token::LParen: {
            const qsizetype open = m_tokenStart;
            if (++m_parens > IpmbLimits::MaxOpDepth)
                return failDepth(open);
            if (!next() || !parseOr(out))
                return false;
            if (m_token != Token::RParen)
                return fail(QStringLiteral("expected ')' at position %1 to close '(' at position %2")
                                    .arg(m_tokenStart)
                                    .arg(open));
            --m_parens;
            return next();
        }
        case Token::RParen:
            return fail(QStringLiteral("unexpected ')' at position %1").arg(m_tokenStart));
        case Token::End:
            return fail(QStringLiteral("expected an operand at position %1 (end of input)")
                                .arg(m_tokenStart));
        case Token::Not:
        case Token::And:
        case Token::Or:
            break;
        }
        return fail(QStringLiteral("expected an operand at position %1").arg(m_tokenStart));
    }

    QStringView m_text;
    qsizetype m_pos = 0;
    Token m_token = Token::End;
    qsizetype m_tokenStart = 0;
    QString m_tokenText;
    int m_parens = 0;
    QString m_error;
};

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
    Returns the text form of this op, for example \c{renderer && !gpu0}.

    The text uses the fewest parentheses such that fromString() gives back an op
    equal to this one. Names that are not plain words are quoted; see fromString()
    for the grammar.
*/
QString IpmbLabelOp::toString() const
{
    // An explicit stack of pending work instead of recursion, for arbitrarily deep ops.
    enum class Text { None, AndOp, OrOp, CloseParen };
    struct Item
    {
        const IpmbLabelOpData *node; // null for text items
        int minPrecedence;
        Text text;
    };
    QVarLengthArray<Item, IpmbLimits::MaxOpDepth> stack;
    stack.append(Item{d.constData(), 0, Text::None});
    QString result;
    while (!stack.isEmpty()) {
        const Item item = takeLast(stack);
        if (!item.node) {
            switch (item.text) {
            case Text::AndOp:
                result += QLatin1String(" && ");
                break;
            case Text::OrOp:
                result += QLatin1String(" || ");
                break;
            case Text::CloseParen:
                result += QLatin1Char(')');
                break;
            case Text::None:
                break;
            }
            continue;
        }
        const IpmbLabelOpData *node = item.node;
        const int prec = precedence(node->kind);
        if (prec < item.minPrecedence) {
            result += QLatin1Char('(');
            stack.append(Item{nullptr, 0, Text::CloseParen});
        }
        switch (node->kind) {
        case Kind::False:
            result += QLatin1String("false");
            break;
        case Kind::True:
            result += QLatin1String("true");
            break;
        case Kind::Leaf:
            appendName(result, node->name);
            break;
        case Kind::Not:
            result += QLatin1Char('!');
            stack.append(Item{node->operand(0), PrecNot, Text::None});
            break;
        case Kind::And:
        case Kind::Or:
            // Left-associative: the left operand may be the same operator unparenthesized,
            // the right operand must bind tighter.
            stack.append(Item{node->operand(1), prec + 1, Text::None});
            stack.append(Item{nullptr, 0, node->kind == Kind::And ? Text::AndOp : Text::OrOp});
            stack.append(Item{node->operand(0), prec, Text::None});
            break;
        }
    }
    return result;
}

/*!
    Parses \a text and returns the op it describes, or \c std::nullopt if it is not
    valid. On failure, if \a errorString is not null, it is set to a reason that names
    the 0-based position of the problem, such as \c{expected ')' at position 7 to
    close '(' at position 0}; on success it is cleared.

    The grammar, where \c{&&} binds tighter than \c{||} and both are left-associative:

    \badcode
    expr    := and ('||' and)*
    and     := unary ('&&' unary)*
    unary   := '!' unary | primary
    primary := 'true' | 'false' | NAME | STRING | '(' expr ')'
    \endcode

    A NAME is a run of the characters \c{A-Z a-z 0-9 _ . : / @ + -} other than
    \c true and \c false. Any other name is written as a double-quoted STRING in which
    \c{\"} and \c{\\} are the only escapes. Whitespace between tokens is ignored.

    The text may be at most 65536 characters long, and the op it describes at most
    64 levels deep: a leaf is one level, each \c{!}, \c{&&} and \c{||} adds one (so
    \c{a && b && c} is three levels), and parentheses may nest at most 64 deep.
*/
std::optional<IpmbLabelOp> IpmbLabelOp::fromString(const QString &text, QString *errorString)
{
    return Parser(text).parse(errorString);
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
