// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbselectorcodec_p.h"

#include <QtCore/qendian.h>
#include <QtCore/qstringconverter.h>
#include <QtCore/qvarlengtharray.h>

#include <algorithm>

using namespace IpmbSelectorCodec;

namespace {

using Kind = IpmbLabelOp::Kind;

constexpr qsizetype MaxLengthField = 0xFFFF; // u16

// QVarLengthArray has no takeLast() in Qt 6.4.
template <typename T, qsizetype Prealloc>
T takeLast(QVarLengthArray<T, Prealloc> &stack)
{
    T value = std::move(stack.last());
    stack.removeLast();
    return value;
}

void appendU8(QByteArray &out, quint8 value)
{
    out.append(char(value));
}

void appendU16(QByteArray &out, quint16 value)
{
    char buffer[sizeof value];
    qToLittleEndian(value, buffer);
    out.append(buffer, sizeof buffer);
}

void appendU32(QByteArray &out, quint32 value)
{
    char buffer[sizeof value];
    qToLittleEndian(value, buffer);
    out.append(buffer, sizeof buffer);
}

void appendString(QByteArray &out, const QString &text)
{
    const QByteArray utf8 = text.toUtf8();
    // A string longer than a u16 can count is cut at 0xFFFF bytes. It was over MaxNameBytes
    // anyway, and the length written still is, so the decoder rejects it instead of reading
    // the rest of the string as further fields.
    const qsizetype length = std::min(utf8.size(), MaxLengthField);
    appendU16(out, quint16(length));
    out.append(utf8.constData(), length);
}

// Writes the nodes of `op` in prefix order, without recursion. An op over MaxOpNodes is cut
// after MaxOpNodes + 1 nodes: the decoder rejects it on reading that node, whatever follows,
// and an op that shares subtrees (x = x && x, repeated) cannot make the encoder expand it
// exponentially.
void appendOp(QByteArray &out, const IpmbLabelOp &op)
{
    QVarLengthArray<IpmbLabelOp, IpmbLimits::MaxOpDepth> stack;
    stack.append(op);
    int written = 0;
    while (!stack.isEmpty() && written <= IpmbLimits::MaxOpNodes) {
        const IpmbLabelOp node = takeLast(stack);
        ++written;
        appendU8(out, quint8(node.kind()));
        switch (node.kind()) {
        case Kind::False:
        case Kind::True:
            break;
        case Kind::Leaf:
            appendString(out, node.name());
            break;
        case Kind::Not:
        case Kind::And:
        case Kind::Or: {
            const QList<IpmbLabelOp> operands = node.operands();
            for (auto it = operands.crbegin(); it != operands.crend(); ++it)
                stack.append(*it);
            break;
        }
        }
    }
}

// Strict UTF-8: invalid or truncated sequences, overlong forms and encoded surrogates are
// errors (QString::fromUtf8 would replace them, and the value would change in transit), and
// a leading BOM is kept as a character rather than dropped.
std::optional<QString> decodeUtf8(QByteArrayView bytes)
{
    QStringDecoder decoder(QStringDecoder::Utf8,
                           QStringDecoder::Flag::Stateless
                                   | QStringDecoder::Flag::ConvertInitialBom);
    QString text = decoder.decode(bytes);
    if (decoder.hasError())
        return std::nullopt;
    return text;
}

class Reader
{
public:
    Reader(QByteArrayView bytes, QLatin1String what, QString *errorString)
        : m_bytes(bytes), m_what(what), m_errorString(errorString)
    {
    }

    qsizetype position() const { return m_pos; }

    bool fail(const QString &reason)
    {
        if (m_errorString)
            *m_errorString = m_what + QLatin1String(": ") + reason;
        return false;
    }

    // A little-endian quint8, quint16 or quint32. `field` and `part` ("leaf", "length") name what
    // is read, for error messages only.
    template <typename T>
    bool readUInt(T &value, QLatin1String field, QLatin1String part = QLatin1String())
    {
        if (!need(sizeof value, field, part))
            return false;
        value = qFromLittleEndian(qFromUnaligned<T>(m_bytes.data() + m_pos));
        m_pos += sizeof value;
        return true;
    }
    bool readU8(quint8 &value, QLatin1String field, QLatin1String part = QLatin1String())
    {
        return readUInt(value, field, part);
    }
    bool readU16(quint16 &value, QLatin1String field, QLatin1String part = QLatin1String())
    {
        return readUInt(value, field, part);
    }
    bool readU32(quint32 &value, QLatin1String field, QLatin1String part = QLatin1String())
    {
        return readUInt(value, field, part);
    }

    bool readBytes(qsizetype count, QByteArrayView &bytes, QLatin1String field,
                   QLatin1String part = QLatin1String())
    {
        if (!need(count, field, part))
            return false;
        bytes = m_bytes.sliced(m_pos, count);
        m_pos += count;
        return true;
    }

    // Reads a u16 length (at most MaxNameBytes) and that many bytes of strict UTF-8.
    // `what` and `index` ("name", 3) only serve the error messages.
    bool readString(QString &text, QLatin1String what, int index = -1)
    {
        const qsizetype at = m_pos;
        quint16 length = 0;
        QByteArrayView bytes;
        if (!readU16(length, what, QLatin1String("length")))
            return false;
        if (length > IpmbLimits::MaxNameBytes)
            return fail(QStringLiteral("%1 length %2 at byte %3 exceeds %4")
                                .arg(describe(what, index))
                                .arg(length)
                                .arg(at)
                                .arg(IpmbLimits::MaxNameBytes));
        if (!readBytes(length, bytes, what, QLatin1String("bytes")))
            return false;
        std::optional<QString> decoded = decodeUtf8(bytes);
        if (!decoded)
            return fail(QStringLiteral("%1 at byte %2 is not valid UTF-8")
                                .arg(describe(what, index))
                                .arg(at));
        text = std::move(*decoded);
        return true;
    }

    bool finish()
    {
        if (m_pos != m_bytes.size())
            return fail(QStringLiteral("%1 trailing bytes after byte %2")
                                .arg(m_bytes.size() - m_pos)
                                .arg(m_pos));
        return true;
    }

private:
    static QString describe(QLatin1String what, int index)
    {
        return index < 0 ? QString(what) : QStringLiteral("%1 %2").arg(what).arg(index);
    }

    bool need(qsizetype count, QLatin1String field, QLatin1String part)
    {
        const qsizetype left = m_bytes.size() - m_pos;
        if (left >= count)
            return true;
        const QString name = part.isEmpty() ? QString(field) : field + QLatin1Char(' ') + part;
        return fail(QStringLiteral("truncated at byte %1 reading %2 (%3 needed, %4 left)")
                            .arg(m_pos)
                            .arg(name)
                            .arg(count)
                            .arg(left));
    }

    QByteArrayView m_bytes;
    qsizetype m_pos = 0;
    QLatin1String m_what;
    QString *m_errorString;
};

// Recursion is bounded: depth is checked before descending, so at most MaxOpDepth frames.
bool decodeOp(Reader &reader, int depth, int &nodes, IpmbLabelOp &op)
{
    const qsizetype at = reader.position();
    quint8 rawKind = 0;
    if (!reader.readU8(rawKind, QLatin1String("op kind")))
        return false;
    if (rawKind > quint8(Kind::Or))
        return reader.fail(QStringLiteral("unknown op kind %1 at byte %2").arg(rawKind).arg(at));
    if (++nodes > IpmbLimits::MaxOpNodes)
        return reader.fail(QStringLiteral("op has more than %1 nodes (at byte %2)")
                                   .arg(IpmbLimits::MaxOpNodes)
                                   .arg(at));
    if (depth > IpmbLimits::MaxOpDepth)
        return reader.fail(QStringLiteral("op nesting depth exceeds %1 at byte %2")
                                   .arg(IpmbLimits::MaxOpDepth)
                                   .arg(at));
    switch (Kind(rawKind)) {
    case Kind::False:
        op = IpmbLabelOp::matchNone();
        return true;
    case Kind::True:
        op = IpmbLabelOp::matchAll();
        return true;
    case Kind::Leaf: {
        QString name;
        if (!reader.readString(name, QLatin1String("leaf")))
            return false;
        op = IpmbLabelOp(name);
        return true;
    }
    case Kind::Not:
        if (!decodeOp(reader, depth + 1, nodes, op))
            return false;
        op = !op;
        return true;
    case Kind::And:
    case Kind::Or: {
        IpmbLabelOp left;
        IpmbLabelOp right;
        if (!decodeOp(reader, depth + 1, nodes, left) || !decodeOp(reader, depth + 1, nodes, right))
            return false;
        op = Kind(rawKind) == Kind::And ? (left && right) : (left || right);
        return true;
    }
    }
    Q_UNREACHABLE();
    return false;
}

QString shortQuoted(const QString &name)
{
    constexpr qsizetype Shown = 24;
    if (name.size() > Shown)
        return QLatin1Char('"') + QStringView(name).left(Shown) + QChar(0x2026) + QLatin1Char('"');
    return QLatin1Char('"') + name + QLatin1Char('"');
}

bool checkName(const QString &name, const QString &what, QString *errorString)
{
    if (!name.isValidUtf16()) {
        if (errorString)
            *errorString = what + QLatin1Char(' ') + shortQuoted(name)
                    + QLatin1String(" is not valid UTF-16 (it has an unpaired surrogate)");
        return false;
    }
    const qsizetype bytes = name.toUtf8().size();
    if (bytes > IpmbLimits::MaxNameBytes) {
        if (errorString)
            *errorString = QStringLiteral("%1 %2 is %3 UTF-8 bytes, more than the limit of %4")
                                   .arg(what, shortQuoted(name))
                                   .arg(bytes)
                                   .arg(IpmbLimits::MaxNameBytes);
        return false;
    }
    return true;
}

} // namespace

/*!
    \namespace IpmbSelectorCodec
    \internal
    \brief The binary wire form of IpmbLabel and IpmbSelector.

    \badcode
    label    := u16 count | count x (u16 byteLength | bytes)
    selector := u8 mode (0 Unicast, 1 Multicast) | u32 ttlMs | op
    op       := u8 kind (0 False, 1 True, 2 Leaf, 3 Not, 4 And, 5 Or), then
                Leaf: u16 byteLength | bytes;  Not: op;  And/Or: op op
    \endcode

    Integers are little-endian and strings UTF-8. Label names are written in ascending
    QString order without duplicates. The decoders treat their input as hostile and
    reject, with a reason:
    \list
    \li labels with more than 256 names, or a name over 1024 UTF-8 bytes;
    \li label names that are not in strictly ascending order (so each label has
        exactly one encoding);
    \li ops nested more than 64 levels deep (a leaf is one level), ops with more
        than 1024 nodes, and leaf names over 1024 UTF-8 bytes;
    \li invalid UTF-8, unknown mode or kind bytes, truncation and trailing bytes.
    \endlist

    The encoders accept any value. A value within the limits always decodes to an
    equal value; one over the limits (which users can build, for example a 65-level
    op) is encoded in a form the decoder rejects. Senders call fitsLimits() first to
    refuse such values with a clear error.
*/

/*!
    \internal
    Appends the wire form of \a label to \a out.

    Labels over the limits (see fitsLimits()) are rejected by decodeLabel().
*/
void IpmbSelectorCodec::appendLabel(QByteArray &out, const IpmbLabel &label)
{
    const QStringList names = label.toStringList(); // sorted and unique
    // Over 0xFFFF names cannot be counted; the count written is then still over MaxLabelNames.
    const qsizetype count = std::min(names.size(), MaxLengthField);
    appendU16(out, quint16(count));
    for (qsizetype i = 0; i < count; ++i)
        appendString(out, names.at(i));
}

/*!
    \internal
    Appends the wire form of \a selector to \a out.

    Selectors whose label op is over the limits (see fitsLimits()) are rejected by
    decodeSelector().
*/
void IpmbSelectorCodec::appendSelector(QByteArray &out, const IpmbSelector &selector)
{
    appendU8(out, quint8(selector.mode()));
    appendU32(out, quint32(selector.ttl().count())); // IpmbSelector clamps ttl to a u32
    appendOp(out, selector.labelOp());
}

/*!
    \internal
    Decodes a label from exactly \a bytes. Returns \c std::nullopt if the bytes are not
    a valid label within the limits, and then sets \a errorString, if not null, to a
    reason such as \c{label: truncated at byte 9 reading name bytes (4 needed, 1 left)}.
*/
std::optional<IpmbLabel> IpmbSelectorCodec::decodeLabel(QByteArrayView bytes, QString *errorString)
{
    Reader reader(bytes, QLatin1String("label"), errorString);
    quint16 count = 0;
    if (!reader.readU16(count, QLatin1String("name count")))
        return std::nullopt;
    if (count > IpmbLimits::MaxLabelNames) {
        reader.fail(QStringLiteral("name count %1 exceeds %2").arg(count).arg(IpmbLimits::MaxLabelNames));
        return std::nullopt;
    }
    QStringList names;
    names.reserve(count);
    for (int i = 0; i < count; ++i) {
        QString name;
        if (!reader.readString(name, QLatin1String("name"), i))
            return std::nullopt;
        if (!names.isEmpty() && !(names.constLast() < name)) {
            reader.fail(QStringLiteral("name %1 is a duplicate or out of order").arg(i));
            return std::nullopt;
        }
        names.append(std::move(name));
    }
    if (!reader.finish())
        return std::nullopt;
    if (errorString)
        errorString->clear();
    return IpmbLabel(names);
}

/*!
    \internal
    Decodes a selector from exactly \a bytes. Returns \c std::nullopt if the bytes are not
    a valid selector within the limits, and then sets \a errorString, if not null, to a
    reason such as \c{selector: leaf length 5000 at byte 6 exceeds 1024}.
*/
std::optional<IpmbSelector> IpmbSelectorCodec::decodeSelector(QByteArrayView bytes,
                                                              QString *errorString)
{
    Reader reader(bytes, QLatin1String("selector"), errorString);
    quint8 mode = 0;
    quint32 ttl = 0;
    if (!reader.readU8(mode, QLatin1String("mode")))
        return std::nullopt;
    if (mode > IpmbSelector::Multicast) {
        reader.fail(QStringLiteral("unknown mode %1").arg(mode));
        return std::nullopt;
    }
    if (!reader.readU32(ttl, QLatin1String("ttl")))
        return std::nullopt;
    IpmbLabelOp op;
    int nodes = 0;
    if (!decodeOp(reader, 1, nodes, op) || !reader.finish())
        return std::nullopt;
    if (errorString)
        errorString->clear();
    return IpmbSelector(IpmbSelector::Mode(mode), op, std::chrono::milliseconds(ttl));
}

/*!
    \internal
    Returns \c true if \a label can be sent: at most 256 names, each valid UTF-16 and at
    most 1024 bytes in UTF-8. Otherwise returns \c false and sets \a errorString, if not
    null, to the reason. decodeLabel() accepts the encoding of every label that fits.
*/
bool IpmbSelectorCodec::fitsLimits(const IpmbLabel &label, QString *errorString)
{
    if (label.size() > IpmbLimits::MaxLabelNames) {
        if (errorString)
            *errorString = QStringLiteral("label: %1 names, more than the limit of %2")
                                   .arg(label.size())
                                   .arg(IpmbLimits::MaxLabelNames);
        return false;
    }
    const QStringList names = label.toStringList();
    for (const QString &name : names) {
        if (!checkName(name, QStringLiteral("label: name"), errorString))
            return false;
    }
    if (errorString)
        errorString->clear();
    return true;
}

/*!
    \internal
    Returns \c true if \a selector can be sent: its label op is at most 64 levels deep,
    has at most 1024 nodes, and each leaf name is valid UTF-16 and at most 1024 bytes in
    UTF-8. Otherwise returns \c false and sets \a errorString, if not null, to the reason.
    decodeSelector() accepts the encoding of every selector that fits.
*/
bool IpmbSelectorCodec::fitsLimits(const IpmbSelector &selector, QString *errorString)
{
    struct Item
    {
        IpmbLabelOp op;
        int depth;
    };
    QVarLengthArray<Item, IpmbLimits::MaxOpDepth> stack;
    stack.append(Item{selector.labelOp(), 1});
    int nodes = 0;
    // Visits at most MaxOpNodes + 1 nodes, however large (or exponentially shared) the op is.
    while (!stack.isEmpty()) {
        const Item item = takeLast(stack);
        if (++nodes > IpmbLimits::MaxOpNodes) {
            if (errorString)
                *errorString = QStringLiteral("selector: label op has more than %1 nodes")
                                       .arg(IpmbLimits::MaxOpNodes);
            return false;
        }
        if (item.depth > IpmbLimits::MaxOpDepth) {
            if (errorString)
                *errorString = QStringLiteral("selector: label op is nested more than %1 levels deep")
                                       .arg(IpmbLimits::MaxOpDepth);
            return false;
        }
        if (item.op.kind() == Kind::Leaf
            && !checkName(item.op.name(), QStringLiteral("selector: leaf name"), errorString)) {
            return false;
        }
        const QList<IpmbLabelOp> operands = item.op.operands();
        for (auto it = operands.crbegin(); it != operands.crend(); ++it)
            stack.append(Item{*it, item.depth + 1});
    }
    if (errorString)
        errorString->clear();
    return true;
}
