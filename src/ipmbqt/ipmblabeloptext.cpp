// SPDX-License-Identifier: BSD-3-Clause
// The text form of IpmbLabelOp: toString() and the parser behind fromString(), which reads back
// what toString() writes.
#include "ipmblabelop.h"
#include "ipmblabelop_p.h"

#include "ipmblimits_p.h"

#include <QtCore/qvarlengtharray.h>

#include <algorithm>
#include <optional>
#include <utility>

namespace {

using Kind = IpmbLabelOp::Kind;
using IpmbLabelOpDetail::takeLast;

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
