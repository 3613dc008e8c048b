// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbpayloadcodec_p.h"
#include "ipmbpayloadguard_p.h"
#include "ipmblimits_p.h"

#include <QtCore/qdatastream.h>
#include <QtCore/qeasingcurve.h>
#include <QtCore/qendian.h>
#include <QtCore/qiodevice.h>
#include <QtCore/qmetatype.h>

#include <cstring>
#include <new>

/*
    Payload wire format (the payload section of a Message frame; also in doc/payloads.md)

    | field       | size             | meaning                                                   |
    | ----------- | ---------------- | --------------------------------------------------------- |
    | nameLength  | u8               | length of name; 0 = null (invalid) QVariant               |
    | name        | nameLength bytes | QMetaType::name() of the value's type, printable ASCII    |
    | value bytes | all the rest     | by type, below; must be empty when nameLength is 0        |

    | type        | value bytes                                                                   |
    | ----------- | ----------------------------------------------------------------------------- |
    | (null)      | none                                                                          |
    | QByteArray  | the raw bytes                                                                 |
    | QString     | the raw UTF-16 code units, little-endian (an odd byte count is malformed)     |
    | any other   | QMetaType::save() on a QDataStream: version Qt_6_4, byte order little-endian, |
    |             | floating-point precision double; a reader must consume every byte             |

    The two raw fast paths exist because QByteArray and QString are what throughput-bound senders
    use: one allocation and one memcpy each way.

    Reading treats the bytes as hostile. Qt's own operator>> for QVariant and its containers trusts
    its input (unbounded recursion, reserve() of a claimed count, QBitArray lengths that crash Qt
    6.4, unknown type ids silently read as null), so QVariantList/Map/Hash/Pair, QStringList,
    QByteArrayList, QBitArray and every QVariant inside them are read here, in exactly Qt's format,
    with every count checked against the bytes left; so are registered QList<T> containers. Qt's
    operators only read the leaves and user types, through a device (GuardedDevice) that stops
    feeding bytes when the stack gets deep (see StackBudget), or when the bytes that Qt 6.4 is
    about to read would make it call a function address from the bytes (QEasingCurve), open a file
    named by them (a QDateTime's time-zone id) or reserve from a count they do not back (CBOR,
    QEasingCurve, QPolygon). Types whose operators no such check makes safe are refused
    (whyRefused()). doc/payloads.md lists every type and what happens to it.
*/

/*
    The codec is three files. This one: the format, the rules for which types may be sent
    (shared with the reader), the encoding side and the raw fast paths. ipmbpayloaddecoder.cpp:
    decode() and ValueReader, which reads containers in Qt's format with checked counts.
    ipmbpayloadguard.cpp: GuardedDevice, the device under Qt's own operator>>, with its per-type
    checks of the bytes (ipmbpayloadguard_p.h declares what the three share).
*/

namespace IpmbPayloadCodec {

// ByteArrayName and StringName are in ipmbpayloadguard_p.h.
// A type name's length and how deep QVariantList/Map/Hash/Pair may nest in one another (deeper
// payloads are refused by encode() and decode(); also the recursion depth of ValueReader):
// IpmbLimits::MaxPayloadTypeNameBytes and MaxPayloadNesting.

void configure(QDataStream &stream)
{
    stream.setVersion(QDataStream::Qt_6_4);
    stream.setByteOrder(QDataStream::LittleEndian);
    // DoublePrecision is the default, and setting it allocates a QDataStreamPrivate: only pin it if
    // a future default differs (with SinglePrecision every double would be truncated to a float).
    if (stream.floatingPointPrecision() != QDataStream::DoublePrecision)
        stream.setFloatingPointPrecision(QDataStream::DoublePrecision);
}

bool isPrintableAscii(QByteArrayView name) noexcept
{
    for (char c : name) {
        if (c < 0x20 || c > 0x7e)
            return false;
    }
    return true;
}

// A type name for an error message, with anything unprintable escaped.
QString printable(QByteArrayView name)
{
    QString result;
    result.reserve(name.size());
    for (char c : name) {
        if (c >= 0x20 && c <= 0x7e)
            result.append(QLatin1Char(c));
        else
            result.append(QStringLiteral("\\x%1").arg(uint(uchar(c)), 2, 16, QLatin1Char('0')));
    }
    return result;
}

// Types that no process can receive: their value means nothing outside the sender.
bool isPointerOrVoid(QMetaType type)
{
    constexpr QMetaType::TypeFlags pointerFlags = QMetaType::IsPointer | QMetaType::PointerToQObject
            | QMetaType::PointerToGadget | QMetaType::SharedPointerToQObject
            | QMetaType::WeakPointerToQObject | QMetaType::TrackingPointerToQObject;
    return type.id() == QMetaType::Void || type.sizeOf() <= 0 || (type.flags() & pointerFlags);
}

// Types that a receiver refuses although Qt can stream them: their operator>> in Qt 6.4 is not
// safe on hostile bytes, and no check of ours short of rewriting it would make it so. Returns
// why, or nullptr for every other type. The ids are QtGui's (readable only in a process that
// links QtGui); doc/payloads.md lists every type the codec reaches and what it does with it.
const char *whyRefused(int typeId)
{
    switch (typeId) {
    case QMetaType::QFont:
        return "its Qt 6.4 operator>> reserves room for a list of font families from an unchecked count";
    case QMetaType::QPixmap:
    case QMetaType::QImage:
    case QMetaType::QBitmap:
        return "its Qt 6.4 operator>> decodes an image of unbounded size with the image format plugins";
    case QMetaType::QIcon:
        return "its Qt 6.4 operator>> loads an icon engine plugin named by the bytes, and decodes images";
    case QMetaType::QCursor:
    case QMetaType::QBrush:
    case QMetaType::QPen:
    case QMetaType::QPalette:
        return "its Qt 6.4 operator>> may decode an image (a pixmap or a brush texture) and reserves "
               "from unchecked counts";
    case QMetaType::QRegion:
        return "its Qt 6.4 operator>> recurses once per nested operation and reserves from unchecked counts";
    case QMetaType::QTextFormat:
        return "its Qt 6.4 operator>> reads QVariants through QVariant::load(), which trusts its input";
    case QMetaType::QColorSpace:
        return "its Qt 6.4 operator>> parses an ICC profile, a complex binary format";
    default:
        return nullptr;
    }
}

namespace {

bool fail(QString *errorString, const QString &message)
{
    if (errorString)
        *errorString = message;
    return false;
}

// ---------------------------------------------------------------------------------------------
// Encoding

// For sequential writes; QDataStream over it writes straight into the caller's buffer, which
// grows geometrically, so batching many messages into one buffer stays amortised O(n).
class AppendDevice final : public QIODevice
{
public:
    explicit AppendDevice(QByteArray *out) : m_out(out) { open(QIODevice::WriteOnly | QIODevice::Unbuffered); }
    bool isSequential() const override { return true; }

protected:
    qint64 readData(char *, qint64) override { return -1; }
    qint64 writeData(const char *data, qint64 size) override
    {
        m_out->append(data, qsizetype(size));
        return size;
    }

private:
    QByteArray *m_out;
};

// Why a value of this type cannot be sent, or an empty string. This runs for every message (and
// every element of a QVariantList ...): cheap checks, and no string unless there is an error.
QString whyNotSendable(QMetaType type)
{
    const bool pointerOrVoid = isPointerOrVoid(type);
    const char *refused = whyRefused(type.id());
    const bool streamable = !pointerOrVoid && !refused && type.hasRegisteredDataStreamOperators();
    if (streamable && type.id() < QMetaType::User)
        return {}; // built-in type names are short and ASCII
    const QByteArrayView name(type.name());
    if (streamable && name.size() <= IpmbLimits::MaxPayloadTypeNameBytes && isPrintableAscii(name))
        return {};

    const QString shown = printable(name);
    if (pointerOrVoid) {
        return QStringLiteral("cannot send a value of type '%1': a pointer (or void) means nothing "
                              "in another process; send the value itself").arg(shown);
    }
    if (refused)
        return QStringLiteral("cannot send a value of type '%1': receivers refuse it (%2)").arg(shown, QLatin1StringView(refused));
    if (!type.hasRegisteredDataStreamOperators()) {
        return QStringLiteral("cannot send a value of type '%1': it has no QDataStream operators "
                              "(declare operator<<(QDataStream &, const %1 &) and operator>> before "
                              "Q_DECLARE_METATYPE(%1))").arg(shown);
    }
    if (name.size() > IpmbLimits::MaxPayloadTypeNameBytes) {
        return QStringLiteral("cannot send a value of type '%1': its type name is longer than %2 bytes")
                .arg(shown).arg(IpmbLimits::MaxPayloadTypeNameBytes);
    }
    if (!isPrintableAscii(name))
        return QStringLiteral("cannot send a value of type '%1': its type name is not printable ASCII").arg(shown);
    return {};
}

// Qt's QVariant::save() does not fail for an element it cannot stream: it writes the type and no
// value (and asserts in debug builds), which no receiver could decode. Check the tree first.
QString whyNotSendable(const QVariant &value, int depth)
{
    const QMetaType type = value.metaType();
    if (!type.isValid())
        return {}; // a null QVariant, also fine as an element
    const auto elements = [&](const auto &container) -> QString {
        if (depth >= IpmbLimits::MaxPayloadNesting) {
            return QStringLiteral("cannot send a payload nested deeper than %1 levels of QVariantList, "
                                  "QVariantMap, QVariantHash and QVariantPair").arg(IpmbLimits::MaxPayloadNesting);
        }
        for (const QVariant &element : container) {
            QString why = whyNotSendable(element, depth + 1);
            if (!why.isEmpty())
                return why;
        }
        return {};
    };
    switch (type.id()) {
    case QMetaType::QByteArray:
    case QMetaType::QString:
        return {};
    case QMetaType::QVariantList:
        return elements(*static_cast<const QVariantList *>(value.constData()));
    case QMetaType::QVariantMap:
        return elements(*static_cast<const QVariantMap *>(value.constData()));
    case QMetaType::QVariantHash:
        return elements(*static_cast<const QVariantHash *>(value.constData()));
    case QMetaType::QVariantPair: {
        const auto &pair = *static_cast<const QVariantPair *>(value.constData());
        return elements(std::initializer_list<QVariant>{pair.first, pair.second});
    }
    case QMetaType::QEasingCurve:
        if (static_cast<const QEasingCurve *>(value.constData())->type() == QEasingCurve::Custom) {
            return QStringLiteral("cannot send a QEasingCurve with a custom easing function: Qt writes the "
                                  "function's address, which means nothing in another process");
        }
        return {};
    default:
        return whyNotSendable(type);
    }
}

// The fast path for QByteArray and QString: the type name and the value bytes, no QDataStream.
struct RawValue
{
    QByteArrayView name;
    const void *data = nullptr;
    qsizetype valueSize = -1;  // -1: the value does not take the fast path
    bool utf16 = false;
    bool verbatim = false;     // an IpmbEncodedPayload: `data` is the whole encoding

    qsizetype encodedSize() const { return verbatim ? valueSize : 1 + name.size() + valueSize; }
    void write(char *p) const
    {
        if (verbatim) {
            std::memcpy(p, data, size_t(valueSize));
            return;
        }
        *p++ = char(name.size());
        std::memcpy(p, name.data(), size_t(name.size()));
        p += name.size();
        if (valueSize == 0)
            return;
        if (utf16)
            qToLittleEndian<char16_t>(data, valueSize / 2, p);
        else
            std::memcpy(p, data, size_t(valueSize));
    }
};

RawValue rawValue(const QVariant &value)
{
    switch (value.metaType().id()) {
    case QMetaType::QByteArray: {
        const QByteArray &bytes = *static_cast<const QByteArray *>(value.constData());
        return {ByteArrayName, bytes.constData(), bytes.size(), false};
    }
    case QMetaType::QString: {
        const QString &string = *static_cast<const QString *>(value.constData());
        return {StringName, string.constData(), string.size() * 2, true};
    }
    default:
        if (value.metaType() == QMetaType::fromType<IpmbEncodedPayload>()) {
            const QByteArray &bytes = static_cast<const IpmbEncodedPayload *>(value.constData())->bytes;
            if (IpmbPayloadCodec::typeNameOf(bytes))  // else encode() says why it cannot be sent
                return {{}, bytes.constData(), bytes.size(), false, true};
        }
        return {};
    }
}

} // namespace

/*!
    \internal
    Appends the encoding of \a value to \a out and returns \c true.

    Returns \c false and sets \a errorString when the value cannot be sent: a pointer type, a type
    without QDataStream operators, a QVariantList/QVariantMap/QVariantHash/QVariantPair that holds
    such a value or is nested more than IpmbLimits::MaxPayloadNesting levels deep. \a out is then left as it was;
    it never receives partial output.
*/
bool encode(const QVariant &value, QByteArray &out, QString *errorString)
{
    const QMetaType type = value.metaType();
    const auto shown = [&type] { return printable(type.isValid() ? type.name() : ""); };
    const qsizetype start = out.size();
    try {
        if (!type.isValid()) {
            out.append(char(0));
            return true;
        }
        if (const RawValue raw = rawValue(value); raw.valueSize >= 0) {
            out.resize(start + raw.encodedSize());
            raw.write(out.data() + start);
            return true;
        }
        if (type == QMetaType::fromType<IpmbEncodedPayload>()) {
            QString why;
            typeNameOf(static_cast<const IpmbEncodedPayload *>(value.constData())->bytes, &why);
            return fail(errorString, QStringLiteral("an encoded payload must start with its type name: %1").arg(why));
        }

        const QString why = whyNotSendable(value, 0);
        if (!why.isEmpty())
            return fail(errorString, why);

        const QByteArrayView name(type.name());
        out.append(char(name.size()));
        out.append(name);
        AppendDevice device(&out);
        QDataStream stream(&device);
        configure(stream);
        if (!type.save(stream, value.constData()) || stream.status() != QDataStream::Ok) {
            out.truncate(start);
            return fail(errorString, QStringLiteral("cannot send a value of type '%1': writing it to a "
                                                    "QDataStream failed").arg(shown()));
        }
        return true;
    } catch (const std::bad_alloc &) {
        out.truncate(start);
        return fail(errorString, QStringLiteral("out of memory while encoding a value of type '%1'").arg(shown()));
    } catch (...) {
        out.truncate(start);
        return fail(errorString, QStringLiteral("cannot send a value of type '%1': its stream operator "
                                                "threw").arg(shown()));
    }
}

qsizetype rawEncodedSize(const QVariant &value)
{
    const RawValue raw = rawValue(value);
    return raw.valueSize < 0 ? -1 : raw.encodedSize();
}

void encodeRaw(const QVariant &value, char *out)
{
    const RawValue raw = rawValue(value);
    Q_ASSERT(raw.valueSize >= 0);
    raw.write(out);
}

} // namespace IpmbPayloadCodec
