// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbpayloadcodec_p.h"
#include "ipmblimits_p.h"

#include <QtCore/qbitarray.h>
#include <QtCore/qcborstreamreader.h>
#include <QtCore/qdatastream.h>
#include <QtCore/qeasingcurve.h>
#include <QtCore/qendian.h>
#include <QtCore/qfileinfo.h>
#include <QtCore/qiodevice.h>
#include <QtCore/qmetacontainer.h>
#include <QtCore/qmetatype.h>
#include <QtCore/qsequentialiterable.h>
#include <QtCore/qset.h>
#include <QtCore/qtimezone.h>
#include <QtCore/qvarlengtharray.h>

#include <array>
#include <cstring>
#include <limits>
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

namespace IpmbPayloadCodec {

namespace {

constexpr QByteArrayView ByteArrayName("QByteArray");
constexpr QByteArrayView StringName("QString");
// A type name's length and how deep QVariantList/Map/Hash/Pair may nest in one another (deeper
// payloads are refused by encode() and decode(); also the recursion depth of the reader below):
// IpmbLimits::MaxPayloadTypeNameBytes and MaxPayloadNesting.

// Qt's operators recurse once per QVariant nested in a user type (a gadget holding a QVariantMap
// of QVariantLists ...), with no limit of their own. The device stops feeding bytes once a decode
// has used this much stack, which makes every enclosing operator>> fail and unwind. It is far
// above what MaxNestingDepth levels of our own reader need, and far below any thread's stack.
#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer's redzones make every frame several times larger.
constexpr quintptr StackBudget = 4 * 512 * 1024;
#else
constexpr quintptr StackBudget = 512 * 1024;
#endif

void configure(QDataStream &stream)
{
    stream.setVersion(QDataStream::Qt_6_4);
    stream.setByteOrder(QDataStream::LittleEndian);
    // DoublePrecision is the default, and setting it allocates a QDataStreamPrivate: only pin it if
    // a future default differs (with SinglePrecision every double would be truncated to a float).
    if (stream.floatingPointPrecision() != QDataStream::DoublePrecision)
        stream.setFloatingPointPrecision(QDataStream::DoublePrecision);
}

quintptr stackPosition() noexcept
{
#if defined(__GNUC__)
    // The real frame, also under AddressSanitizer's fake stacks (where locals live on the heap).
    return quintptr(__builtin_frame_address(0));
#else
    volatile char marker = 0;
    return quintptr(&marker);
#endif
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

bool fail(QString *errorString, const QString &message)
{
    if (errorString)
        *errorString = message;
    return false;
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

    qsizetype encodedSize() const { return 1 + name.size() + valueSize; }
    void write(char *p) const
    {
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
        return {};
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

// QEasingCurve::Type values that Qt 6.4 streams: Linear (0) ... TCBSpline (46); Custom (47) holds
// a function of the sender's process.
constexpr quint8 LastStreamableEasingType = QEasingCurve::TCBSpline;

// Qt 6.4's operator<< writes the address of the curve's easing function *in the sender*, and its
// operator>> stores it; valueForProgress() then calls it. The address that the same curve type
// has in this process is what QEasingCurve(type) holds here, and what it writes.
quint64 localEasingFunction(quint8 type)
{
    static const auto table = [] {
        std::array<quint64, LastStreamableEasingType + 1> result{};
        for (quint8 t = 0; t <= LastStreamableEasingType; ++t) {
            QByteArray bytes;
            QDataStream stream(&bytes, QIODevice::WriteOnly);
            configure(stream);
            stream << QEasingCurve(QEasingCurve::Type(t));
            result[t] = qFromLittleEndian<quint64>(bytes.constData() + 1);
        }
        return result;
    }();
    return table[type];
}

// Qt 6.4 opens "/usr/share/zoneinfo/" + id while it reads a time zone, without looking at the id:
// "../" steps reach any file, a named pipe blocks the reading thread in open(), and /dev/zero is
// read until memory runs out. An id is let through if Qt lists it (the tzdata zones and the
// "UTC+hh:mm" ids), or if it has the form of an IANA id (letters, digits, '_', '+', '-', separated
// by single '/', no '.' at all, so no path can leave the tzdata directory) and tzdata has a
// regular file of that name: that admits the aliases, such as "Etc/UTC", the system time zone of
// most containers. stat() never blocks on what it finds.
bool isSafeTimeZoneId(QStringView id)
{
    if (id.isEmpty())
        return true; // Qt takes the system time zone
    // What Qt writes for an invalid zone (a custom zone Qt refused, say), and reads back as one
    // without looking anything up: refusing it would refuse the re-encoding of a value we accepted.
    if (id == QLatin1StringView("-No Time Zone Specified!"))
        return true;
    if (id.size() > 64)
        return false;
    QByteArray latin1(id.size(), Qt::Uninitialized);
    for (qsizetype i = 0; i < id.size(); ++i) {
        const char16_t c = id[i].unicode();
        // Path characters are refused even in a listed id.
        if (c <= 0x20 || c >= 0x7f || c == u'\\')
            return false;
        latin1[i] = char(c);
    }
    if (latin1.startsWith('/') || latin1.contains(".."))
        return false;

    static const QSet<QByteArray> known = [] {
        const QList<QByteArray> ids = QTimeZone::availableTimeZoneIds();
        return QSet<QByteArray>(ids.cbegin(), ids.cend());
    }();
    if (known.contains(latin1))
        return true;

    bool componentStart = true;
    for (char c : std::as_const(latin1)) {
        const bool nameChar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                || c == '_' || c == '+' || c == '-';
        if (c == '/' ? componentStart : !nameChar)
            return false;
        componentStart = c == '/';
    }
    if (componentStart)
        return false; // ends with '/'
    return QFileInfo(QStringLiteral("/usr/share/zoneinfo/") + QLatin1StringView(latin1)).isFile();
}

// Qt's QCborValue::fromCbor() reserves room for as many elements as a CBOR array or map claims
// (up to a million, per container, 1024 containers deep) before it reads them: 5 bytes can ask
// for 16 MiB, a few KiB for tens of GiB. This walk reads the whole item first, without
// allocating and without recursion, and passes only a complete, well-formed item, nested at
// most MaxNestingDepth levels (tags count as levels, as Qt recurses for them too): then every
// count that fromCbor() reserves for is backed by bytes.
bool isCompleteCbor(QByteArrayView bytes)
{
    QCborStreamReader reader(bytes.data(), bytes.size());
    QVarLengthArray<int, 32> levels; // per open container: 1 + the tags in front of it
    int depth = 0;
    int tags = 0;
    char sink[1024];
    while (reader.lastError() == QCborError::NoError) {
        if (!levels.isEmpty() && !reader.hasNext()) {
            if (!reader.leaveContainer())
                return false;
            depth -= levels.back();
            levels.removeLast();
            if (levels.isEmpty())
                return true;
            continue;
        }
        if (depth + tags >= IpmbLimits::MaxPayloadNesting)
            return false;
        switch (reader.type()) {
        case QCborStreamReader::Tag:
            ++tags;
            reader.next();
            continue;
        case QCborStreamReader::Array:
        case QCborStreamReader::Map:
            if (!reader.enterContainer())
                return false;
            levels.append(1 + tags);
            depth += 1 + tags;
            tags = 0;
            continue;
        case QCborStreamReader::ByteArray:
        case QCborStreamReader::String: {
            auto chunk = reader.readStringChunk(sink, sizeof(sink));
            while (chunk.status == QCborStreamReader::Ok)
                chunk = reader.readStringChunk(sink, sizeof(sink));
            if (chunk.status != QCborStreamReader::EndOfString)
                return false;
            break;
        }
        case QCborStreamReader::Invalid:
            return false;
        default: // integers, simple types, floating point
            reader.next();
            break;
        }
        tags = 0;
        if (levels.isEmpty())
            return reader.lastError() == QCborError::NoError;
    }
    return false;
}

// A read-only view of the value bytes, which never copies them, and which guards Qt's own stream
// operators (those that read user types and the leaves) against input they do not survive.
//
// The device sees only the reads. It knows where a value starts in two ways: ValueReader
// announces it before it calls Qt's operator>> for a type, and Qt's QVariant::load() (inside a
// user type) reads u32 type id, u8 null flag, then the value: that exact sequence. At the start of
// a value of a type whose Qt 6.4 operator>> is unsafe, it checks the bytes that operator will
// read, and refuses to feed them if they are not safe, which makes the operator fail.
class GuardedDevice final : public QIODevice
{
public:
    GuardedDevice(QByteArrayView bytes, quintptr stackOrigin)
        : m_data(bytes.data()), m_remaining(bytes.size()), m_stackOrigin(stackOrigin)
    {
        open(QIODevice::ReadOnly | QIODevice::Unbuffered);
    }

    bool isSequential() const override { return true; }
    // What a user type's operator>> may check a count against before it reserves anything.
    qint64 bytesAvailable() const override { return m_remaining + QIODevice::bytesAvailable(); }
    qsizetype remaining() const { return m_remaining; }
    const char *current() const { return m_data; }

    bool tripped() const { return !m_tripReason.isEmpty(); }
    Status tripStatus() const { return m_tripStatus; }
    const QString &tripReason() const { return m_tripReason; }

    // The next 8 bytes as a qint64, without consuming them.
    bool peek(qint64 *value) const
    {
        if (m_remaining < 8)
            return false;
        *value = qFromLittleEndian<qint64>(m_data);
        return true;
    }

    // The next read starts a value of this type (0: nothing announced).
    void announce(int typeId) { m_announced = typeId; }

    // Qt 6.4's operator>>(QDataStream &, QBitArray &) writes to read-only memory when the qint64
    // length it reads is negative, or so large that its "(length + 7) / 8" overflows.
    static bool isSafeBitArrayLength(qint64 length)
    {
        return length >= 0 && length <= std::numeric_limits<qint64>::max() - 7;
    }

protected:
    qint64 readData(char *data, qint64 maxSize) override
    {
        if (tripped())
            return -1;
        const quintptr here = stackPosition();
        const quintptr used = here < m_stackOrigin ? m_stackOrigin - here : here - m_stackOrigin;
        if (used > StackBudget) {
            refuse(Status::Malformed, QStringLiteral("nested too deeply"));
            return -1;
        }
        const qsizetype size = qsizetype(qMin<qint64>(maxSize, m_remaining));
        if (!checkRead(size))
            return -1;
        if (size > 0)
            std::memcpy(data, m_data, size_t(size));
        if (m_data == m_patchAt && size == 8) {
            qToLittleEndian(m_patch, data);
            m_patchAt = nullptr;
        }
        for (qsizetype i = std::size(m_history) - 1; i > 0; --i)
            m_history[i] = m_history[i - 1];
        m_history[0] = {size, size == 1 ? quint64(uchar(*m_data))
                                        : size == 4 ? quint64(qFromLittleEndian<quint32>(m_data)) : 0};
        m_data += size;
        m_remaining -= size;
        return size;
    }
    qint64 writeData(const char *, qint64) override { return -1; }

private:
    struct Read
    {
        qsizetype size = 0;
        quint64 value = 0; // of a 1- or 4-byte read, little-endian
    };

    // Stops feeding bytes: every read from now on fails, and so does the operator>> reading.
    Q_DECL_COLD_FUNCTION Q_NEVER_INLINE bool refuse(Status status, const QString &reason)
    {
        m_tripStatus = status;
        m_tripReason = reason;
        return false;
    }

    // The bytes at `offset` from the current position as a QString in QDataStream's format (u32
    // byte count, UTF-16), if they are all there; *end is where the string ends.
    bool peekString(qsizetype offset, QString *string, qsizetype *end) const
    {
        if (m_remaining - offset < 4)
            return false;
        const quint32 bytes = qFromLittleEndian<quint32>(m_data + offset);
        if (bytes == 0xffffffff) { // a null string
            string->clear();
            *end = offset + 4;
            return true;
        }
        if (bytes % 2 != 0 || bytes > quint64(m_remaining - offset - 4))
            return false; // Qt's operator>> fails on its own, before it uses the string
        string->resize(qsizetype(bytes / 2));
        qFromLittleEndian<char16_t>(m_data + offset + 4, bytes / 2, string->data());
        *end = offset + 4 + qsizetype(bytes);
        return true;
    }

    bool checkRead(qsizetype size)
    {
        int typeId = m_announced;
        const bool inferred = typeId == 0;
        m_announced = 0;
        if (inferred && m_history[0].size == 1 && m_history[0].value <= 1 && m_history[1].size == 4)
            typeId = int(m_history[1].value); // after QVariant::load()'s type id and null flag
        if (typeId != 0 && !checkValueStart(typeId, inferred))
            return false;

        // A QDateTime reads qint64 julian day, quint32 msecs, qint8 spec; with spec Qt::TimeZone
        // (3) a QTimeZone follows: the QString id, and for a custom zone the string
        // "OffsetFromUtc" and then the id. Qt's operators read that sequence for a QDateTime
        // anywhere, also as a plain member of a user type, so the check is made on the reads.
        // A user type that reads the same sequence and then a string that is not a time-zone id
        // is refused too: an accepted cost, documented in doc/payloads.md.
        if (size == 4 && m_history[0].size == 1 && m_history[0].value == Qt::TimeZone
            && m_history[1].size == 4 && m_history[2].size == 8) {
            // An incomplete string fails in Qt's operator>>, which then uses an empty id: the
            // system time zone.
            QString id;
            qsizetype end = 0;
            bool complete = peekString(0, &id, &end);
            if (complete && id == QLatin1StringView("OffsetFromUtc"))
                complete = peekString(end, &id, &end);
            if (complete && !isSafeTimeZoneId(id)) {
                id.truncate(64);
                return refuse(Status::Malformed, QStringLiteral("holds a QDateTime whose time zone id '%1' is "
                                                              "not a known time zone").arg(id));
            }
        }
        return true;
    }

    // At the first read of a value of type typeId; `inferred` from QVariant::load()'s reads, which
    // a user type's own reads can match by coincidence.
    bool checkValueStart(int typeId, bool inferred)
    {
        switch (typeId) {
        case QMetaType::QBitArray: {
            qint64 length = 0;
            if (m_remaining >= 8)
                length = qFromLittleEndian<qint64>(m_data);
            if (!isSafeBitArrayLength(length))
                return refuse(Status::Malformed, QStringLiteral("holds a QBitArray with an impossible length"));
            return true;
        }
        case QMetaType::QEasingCurve:
            return checkEasingCurve(inferred);
        case QMetaType::QCborValue:
        case QMetaType::QCborArray:
        case QMetaType::QCborMap: {
            if (m_remaining < 4)
                return true;
            const quint32 length = qFromLittleEndian<quint32>(m_data);
            if (length == 0xffffffff || length > quint64(m_remaining - 4))
                return true; // Qt's operator>> fails on its own, before it parses anything
            if (!isCompleteCbor(QByteArrayView(m_data + 4, length))) {
                return refuse(Status::Malformed, QStringLiteral("holds CBOR that is incomplete, malformed or "
                                                              "nested more than %1 levels deep")
                                                       .arg(IpmbLimits::MaxPayloadNesting));
            }
            return true;
        }
        case QMetaType::QVariantList:
        case QMetaType::QStringList:
        case QMetaType::QByteArrayList: {
            // Read by ValueReader with checked counts, but by Qt's readArrayBasedContainer() inside
            // a user type, which reserves from the count: an element takes at least 5 or 4 bytes.
            const quint64 minSize = typeId == QMetaType::QVariantList ? 5 : 4;
            const quint64 count = m_remaining >= 4 ? qFromLittleEndian<quint32>(m_data) : 0;
            if (count * minSize > quint64(m_remaining - 4)) {
                return refuse(Status::Malformed, QStringLiteral("a container claims %1 elements, but only %2 "
                                                                "bytes are left").arg(count).arg(m_remaining - 4));
            }
            return true;
        }
        case QMetaType::QPolygon:
        case QMetaType::QPolygonF: {
            // A QList<QPoint> or QList<QPointF>: Qt reserves from the count.
            const quint64 pointSize = typeId == QMetaType::QPolygon ? 8 : 16;
            if (m_remaining >= 4 && qFromLittleEndian<quint32>(m_data) * pointSize > quint64(m_remaining - 4)) {
                return refuse(Status::Malformed, QStringLiteral("holds a polygon that claims more points than "
                                                              "there are bytes"));
            }
            return true;
        }
        default:
            if (inferred && QMetaType::isRegistered(typeId)) {
                if (const char *why = whyRefused(typeId)) {
                    return refuse(Status::UnknownType, QStringLiteral("holds a value of type '%1', which receivers "
                                                                    "refuse: %2")
                                                             .arg(QLatin1StringView(QMetaType(typeId).name()),
                                                                  QLatin1StringView(why)));
                }
            }
            return true;
        }
    }

    // Qt 6.4 reads u8 type, u64 function address, bool hasConfig, and with a config: double
    // period, amplitude, overshoot, a QList<QPointF> and a QList<TCBPoint> (a QPointF and three
    // doubles), each reserved from its u32 count.
    bool checkEasingCurve(bool inferred)
    {
        const auto bad = [this](const QString &why) {
            return refuse(Status::Malformed, QStringLiteral("holds a QEasingCurve that %1").arg(why));
        };
        if (m_remaining < 10)
            return true; // Qt's operator>> fails on its own
        const quint8 type = quint8(*m_data);
        if (type == QEasingCurve::Custom) {
            return refuse(Status::UnknownType, QStringLiteral("holds a QEasingCurve with a custom easing function "
                                                            "(a function of the sending process), which "
                                                            "receivers refuse"));
        }
        if (type > LastStreamableEasingType)
            return bad(QStringLiteral("has an unknown curve type %1").arg(type));
        const quint64 function = qFromLittleEndian<quint64>(m_data + 1);
        if (function != 0 && function != localEasingFunction(type)) {
            if (inferred) { // in a user type: a coincidence is possible, never change its bytes
                return refuse(Status::UnknownType, QStringLiteral("holds a QEasingCurve inside a user type, with "
                                                                "the address of an easing function in the "
                                                                "sending process, which Qt 6.4 would call "
                                                                "(send the curve outside your type)"));
            }
            m_patchAt = m_data + 1;
            m_patch = localEasingFunction(type);
        }
        if (m_data[9] == 0)
            return true; // no config
        qsizetype offset = 10 + 3 * 8;
        for (quint64 elementSize : {16, 40}) {
            if (m_remaining - offset < 4)
                return true; // truncated: Qt's operator>> fails before it reserves
            const quint64 count = qFromLittleEndian<quint32>(m_data + offset);
            offset += 4;
            if (count * elementSize > quint64(m_remaining - offset))
                return bad(QStringLiteral("claims %1 points, more than the bytes left").arg(count));
            offset += qsizetype(count * elementSize);
        }
        return true;
    }

    const char *m_data;
    qsizetype m_remaining;
    quintptr m_stackOrigin;
    Status m_tripStatus = Status::Ok;
    QString m_tripReason;
    int m_announced = 0;
    const char *m_patchAt = nullptr;
    quint64 m_patch = 0;
    Read m_history[3];
};

// Reads a value in QMetaType::save()'s format for its type (see the comment at the top). Hostile
// input decides how deep the recursion readVariant -> readValue -> read<container> -> readVariant
// goes, so those functions keep few locals, and every error message is built in a cold function.
class ValueReader
{
public:
    ValueReader(GuardedDevice &device, QDataStream &stream, QByteArrayView payloadType)
        : m_device(device), m_stream(stream), m_payloadType(payloadType)
    {
    }

    Status status() const { return m_status; }
    const QString &errorString() const { return m_errorString; }

    // Whether this process can read a value of this type at all; sets the error if not.
    bool checkReadable(QMetaType type)
    {
        if (isPointerOrVoid(type) || type.id() == QMetaType::QVariant || !type.hasRegisteredDataStreamOperators()
            || whyRefused(type.id())) {
            return failUnreadable(type);
        }
        return true;
    }

    bool readValue(QMetaType type, QVariant &value, int depth)
    {
        switch (type.id()) {
        case QMetaType::QVariantList:
            return readVariantList(value, depth);
        case QMetaType::QVariantMap:
            return readMap<QVariantMap>(value, depth);
        case QMetaType::QVariantHash:
            return readMap<QVariantHash>(value, depth);
        case QMetaType::QVariantPair:
            return readPair(value, depth);
        case QMetaType::QStringList:
            return readList<QStringList>(value);
        case QMetaType::QByteArrayList:
            return readList<QByteArrayList>(value);
        case QMetaType::QBitArray:
            return readBitArray(value);
        default:
            if (QByteArrayView(type.name()).startsWith("QList<"))
                return readSequence(type, value, depth);
            return readLeaf(type, value);
        }
    }

private:
    Q_DECL_COLD_FUNCTION Q_NEVER_INLINE bool fail(Status status, const QString &why)
    {
        m_status = status;
        m_errorString = QStringLiteral("payload of type '%1': %2").arg(printable(m_payloadType), why);
        return false;
    }

    Q_DECL_COLD_FUNCTION Q_NEVER_INLINE bool tooDeep()
    {
        return fail(Status::Malformed, QStringLiteral("nested too deeply (more than %1 levels of "
                                                      "QVariantList, QVariantMap, QVariantHash and "
                                                      "QVariantPair)").arg(IpmbLimits::MaxPayloadNesting));
    }

    // After a read failed (stream status not Ok).
    Q_DECL_COLD_FUNCTION Q_NEVER_INLINE bool failStream()
    {
        if (m_device.tripped())
            return fail(m_device.tripStatus(), m_device.tripReason());
        if (m_stream.status() == QDataStream::ReadPastEnd)
            return fail(Status::Malformed, QStringLiteral("truncated (a value needs more bytes than are left)"));
        return fail(Status::Malformed, QStringLiteral("corrupt data (or a value of a type that is not "
                                                      "registered in this process)"));
    }

    Q_DECL_COLD_FUNCTION Q_NEVER_INLINE bool failUnreadable(QMetaType type)
    {
        const QString shown = printable(type.name());
        if (isPointerOrVoid(type)) { // encode() never writes these
            return fail(Status::Malformed, QStringLiteral("type '%1' is a pointer or void, which no process "
                                                          "can send").arg(shown));
        }
        if (type.id() == QMetaType::QVariant) // QVariant::fromValue(QVariant) is the variant itself
            return fail(Status::Malformed, QStringLiteral("a QVariant holding a QVariant is never sent"));
        // A valid encoding maybe, from an honest sender, of a type this process does not accept:
        // "unknown" like a type without stream operators, not "malformed".
        if (const char *why = whyRefused(type.id())) {
            return fail(Status::UnknownType, QStringLiteral("type '%1' is refused by receivers: %2")
                                                     .arg(shown, QLatin1StringView(why)));
        }
        // Registered here, but without stream operators: fixable on this side, so "unknown".
        return fail(Status::UnknownType, QStringLiteral("type '%1' cannot be read in this process: it "
                                                        "has no QDataStream operators here").arg(shown));
    }

    Q_DECL_COLD_FUNCTION Q_NEVER_INLINE bool failTypeId(quint32 typeId)
    {
        if (typeId > quint32(QMetaType::User)) {
            return fail(Status::Malformed, QStringLiteral("contains a value with type id %1, which is never "
                                                          "sent").arg(typeId));
        }
        // QtGui's and QtWidgets' types have ids below User; a process without them does not know
        // these ids, and Qt's own QVariant::load() would read such a value as null, then its bytes
        // as whatever comes next.
        if (typeId >= quint32(QMetaType::FirstGuiType) && typeId <= quint32(QMetaType::LastGuiType)) {
            return fail(Status::UnknownType, QStringLiteral("contains a value of a Qt GUI type (type id %1), "
                                                            "which this process cannot read (it does not "
                                                            "use QtGui)").arg(typeId));
        }
        return fail(Status::UnknownType, QStringLiteral("contains a value of built-in type id %1, which "
                                                        "this process does not know").arg(typeId));
    }

    bool streamOk() { return m_stream.status() == QDataStream::Ok || failStream(); }

    // A u32 count of elements of at least minSize bytes each: a count that the bytes left cannot
    // hold is refused before anything is allocated for it.
    bool readCount(quint32 *count, qsizetype minSize)
    {
        m_stream >> *count;
        if (!streamOk())
            return false;
        if (qsizetype(*count) > m_device.remaining() / minSize) {
            return fail(Status::Malformed, QStringLiteral("a container claims %1 elements, but only %2 bytes "
                                                          "are left").arg(*count).arg(m_device.remaining()));
        }
        return true;
    }

    bool readVariantList(QVariant &value, int depth)
    {
        if (depth >= IpmbLimits::MaxPayloadNesting)
            return tooDeep();
        quint32 count = 0;
        if (!readCount(&count, 5)) // an element is at least u32 type id, u8 null flag
            return false;
        QVariantList list;
        list.reserve(count);
        for (quint32 i = 0; i < count; ++i) {
            if (!readVariant(list.emplace_back(), depth + 1))
                return false;
        }
        value = QVariant(list);
        return true;
    }

    template <typename Map>
    bool readMap(QVariant &value, int depth)
    {
        if (depth >= IpmbLimits::MaxPayloadNesting)
            return tooDeep();
        quint32 count = 0;
        if (!readCount(&count, 4 + 5)) // a key is at least its u32 length, a value as above
            return false;
        Map map;
        QString key;
        for (quint32 i = 0; i < count; ++i) {
            m_stream >> key;
            // A repeated key replaces the earlier value, as in Qt's operator>>.
            if (!streamOk() || !readVariant(map[key], depth + 1))
                return false;
        }
        value = QVariant(map);
        return true;
    }

    bool readPair(QVariant &value, int depth)
    {
        if (depth >= IpmbLimits::MaxPayloadNesting)
            return tooDeep();
        QVariantPair pair;
        if (!readVariant(pair.first, depth + 1) || !readVariant(pair.second, depth + 1))
            return false;
        value = QVariant::fromValue(pair);
        return true;
    }

    template <typename List>
    bool readList(QVariant &value)
    {
        quint32 count = 0;
        if (!readCount(&count, 4)) // an element is at least its u32 length
            return false;
        List list;
        list.reserve(count);
        for (quint32 i = 0; i < count; ++i) {
            m_stream >> list.emplace_back();
            if (!streamOk())
                return false;
        }
        value = QVariant::fromValue(list);
        return true;
    }

    bool readBitArray(QVariant &value)
    {
        qint64 length = 0;
        if (!m_device.peek(&length)) {
            return fail(Status::Malformed, QStringLiteral("truncated (a value needs more bytes than are left)"));
        }
        if (!GuardedDevice::isSafeBitArrayLength(length) || (length + 7) / 8 > m_device.remaining() - 8) {
            return fail(Status::Malformed, QStringLiteral("a QBitArray claims %1 bits, more than the bytes "
                                                          "left").arg(length));
        }
        return readLeaf(QMetaType::fromType<QBitArray>(), value);
    }

    // A QList<T> of a registered element type (such as QList<Reading>) in Qt's format: u32 count,
    // the elements. Qt's operator>> would reserve() the count before reading any element; here
    // the count is checked against the bytes left (an element takes at least one), nothing is
    // reserved, and every element is read as a value of its own type (so that a QList of
    // QEasingCurve or QDateTime gets the same checks as one of them alone).
    Q_NEVER_INLINE bool readSequence(QMetaType type, QVariant &value, int depth)
    {
        if (depth >= IpmbLimits::MaxPayloadNesting)
            return tooDeep();
        QVariant list(type);
        QSequentialIterable iterable;
        if (list.metaType() != type
            || !QMetaType::view(type, list.data(), QMetaType::fromType<QSequentialIterable>(), &iterable)) {
            return readLeaf(type, value); // no view registered: Qt's reader, under the device's guard
        }
        const QMetaSequence sequence = iterable.metaContainer();
        const QMetaType elementType = sequence.valueMetaType();
        if (!sequence.canAddValueAtEnd() || !elementType.isValid())
            return readLeaf(type, value);
        if (!checkReadable(elementType))
            return false;
        quint32 count = 0;
        if (!readCount(&count, 1))
            return false;
        QVariant element;
        for (quint32 i = 0; i < count; ++i) {
            if (!readValue(elementType, element, depth + 1))
                return false;
            sequence.addValueAtEnd(list.data(), element.constData());
        }
        value = std::move(list);
        return true;
    }

    // Qt's operator>> for everything else, guarded by the device. Not inlined, like
    // readSequence(): their locals would grow the frame of every level of the recursion.
    Q_NEVER_INLINE bool readLeaf(QMetaType type, QVariant &value)
    {
        QVariant leaf(type);
        if (leaf.metaType() != type) {
            return fail(Status::UnknownType, QStringLiteral("type '%1' cannot be default-constructed in "
                                                            "this process").arg(printable(type.name())));
        }
        m_device.announce(type.id());
        const bool loaded = type.load(m_stream, leaf.data());
        m_device.announce(0); // in case the operator read nothing
        if (!loaded)
            return failUnreadable(type);
        if (!streamOk())
            return false;
        value = std::move(leaf);
        return true;
    }

    // A type written by name (QVariant::save() does so for ids >= User, with a trailing NUL).
    Q_NEVER_INLINE bool readTypeName(QMetaType *type)
    {
        QByteArray name;
        m_stream >> name;
        if (!streamOk())
            return false;
        if (name.endsWith('\0'))
            name.chop(1);
        if (name.isEmpty() || name.size() > IpmbLimits::MaxPayloadTypeNameBytes || !isPrintableAscii(name)) {
            return fail(Status::Malformed, QStringLiteral("contains a value whose type name '%1' is not "
                                                          "valid").arg(printable(name)));
        }
        *type = QMetaType::fromName(name); // NUL-terminated, see decodeValue()
        if (!type->isValid()) {
            return fail(Status::UnknownType, QStringLiteral("contains a value of type '%1', which is not "
                                                            "registered in this process (call "
                                                            "qRegisterMetaType<%1>())").arg(printable(name)));
        }
        return true;
    }

    // QVariant::load(), except that a type unknown here is an error, not a null value followed by
    // the unknown value's bytes read as whatever comes next.
    bool readVariant(QVariant &value, int depth)
    {
        quint32 typeId = 0;
        qint8 isNull = 0;
        m_stream >> typeId >> isNull;
        if (!streamOk())
            return false;
        if (typeId == quint32(QMetaType::UnknownType)) {
            value = QVariant();
            return true;
        }
        QMetaType type;
        if (typeId == quint32(QMetaType::User)) {
            if (!readTypeName(&type))
                return false;
        } else if (typeId > quint32(QMetaType::User) || !QMetaType::isRegistered(int(typeId))) {
            return failTypeId(typeId);
        } else {
            type = QMetaType(int(typeId));
        }
        return checkReadable(type) && readValue(type, value, depth);
    }

    GuardedDevice &m_device;
    QDataStream &m_stream;
    QByteArrayView m_payloadType;
    Status m_status = Status::Ok;
    QString m_errorString;
};

Decoded failed(Decoded &&result, Status status, const QString &why)
{
    result.value = QVariant();
    result.status = status;
    result.errorString = why;
    return std::move(result);
}

Decoded decodeValue(Decoded &&result, QByteArrayView valueBytes, quintptr stackOrigin)
{
    QMetaType type;
    if (result.typeName == ByteArrayName)
        type = QMetaType::fromType<QByteArray>();
    else if (result.typeName == StringName)
        type = QMetaType::fromType<QString>();
    else // a QByteArray, so NUL-terminated: fromName() may pass it to normalizedType(const char *)
        type = QMetaType::fromName(result.typeName);

    if (!type.isValid()) {
        return failed(std::move(result), Status::UnknownType,
                      QStringLiteral("payload type '%1' is not registered in this process (call "
                                     "qRegisterMetaType<%1>())").arg(printable(result.typeName)));
    }

    switch (type.id()) {
    case QMetaType::QByteArray:
        result.value = QVariant(valueBytes.toByteArray());
        result.status = Status::Ok;
        return std::move(result);
    case QMetaType::QString: {
        if (valueBytes.size() % 2 != 0) {
            return failed(std::move(result), Status::Malformed,
                          QStringLiteral("payload of type 'QString' has an odd number of bytes (%1)")
                                  .arg(valueBytes.size()));
        }
        const qsizetype units = valueBytes.size() / 2;
        QString string(units, Qt::Uninitialized);
        if (units > 0)
            qFromLittleEndian<char16_t>(valueBytes.data(), units, string.data());
        result.value = QVariant(std::move(string));
        result.status = Status::Ok;
        return std::move(result);
    }
    default:
        break;
    }

    GuardedDevice device(valueBytes, stackOrigin);
    QDataStream stream(&device);
    configure(stream);
    ValueReader reader(device, stream, result.typeName);
    QVariant value;
    if (!reader.checkReadable(type) || !reader.readValue(type, value, 0))
        return failed(std::move(result), reader.status(), reader.errorString());
    if (device.remaining() != 0) {
        return failed(std::move(result), Status::Malformed,
                      QStringLiteral("payload of type '%1' has %2 unread trailing bytes")
                              .arg(printable(result.typeName)).arg(device.remaining()));
    }
    result.value = std::move(value);
    result.status = Status::Ok;
    return std::move(result);
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

/*!
    \internal
    Decodes exactly \a bytes (one payload section).

    The input is treated as hostile: every outcome but Status::Ok carries an invalid value and a
    readable errorString; no input crashes the process, exhausts its stack, or costs memory out of
    proportion to its size, and a failed allocation is reported as Status::Malformed. Nothing is
    logged here (the caller logs); only Qt's QVariant::load(), reached through a user type that
    holds a QVariant, may print its own warning.
*/
Decoded decode(QByteArrayView bytes)
{
    const quintptr stackOrigin = stackPosition();
    Decoded result;
    try {
        if (bytes.isEmpty())
            return failed(std::move(result), Status::Malformed, QStringLiteral("empty payload section"));
        const qsizetype nameLength = uchar(bytes.front());
        if (nameLength == 0) {
            if (bytes.size() != 1) {
                return failed(std::move(result), Status::Malformed,
                              QStringLiteral("a null payload carries %1 value bytes").arg(bytes.size() - 1));
            }
            result.status = Status::Ok;
            return result;
        }
        if (bytes.size() < 1 + nameLength) {
            result.typeName = bytes.sliced(1).toByteArray();
            return failed(std::move(result), Status::Malformed,
                          QStringLiteral("truncated payload: its type name needs %1 bytes, %2 are left")
                                  .arg(nameLength).arg(bytes.size() - 1));
        }
        const QByteArrayView name = bytes.sliced(1, nameLength);
        // The two fast-path names refer to static storage: no allocation for most messages.
        if (name == StringName)
            result.typeName = QByteArray::fromRawData(StringName.data(), StringName.size());
        else if (name == ByteArrayName)
            result.typeName = QByteArray::fromRawData(ByteArrayName.data(), ByteArrayName.size());
        else
            result.typeName = name.toByteArray();
        if (!isPrintableAscii(result.typeName)) {
            return failed(std::move(result), Status::Malformed,
                          QStringLiteral("payload type name '%1' is not printable ASCII")
                                  .arg(printable(result.typeName)));
        }
        return decodeValue(std::move(result), bytes.sliced(1 + nameLength), stackOrigin);
    } catch (const std::bad_alloc &) {
        return failed(std::move(result), Status::Malformed,
                      QStringLiteral("payload of type '%1' needs more memory than is available")
                              .arg(printable(result.typeName)));
    } catch (...) {
        return failed(std::move(result), Status::Malformed,
                      QStringLiteral("payload of type '%1' could not be read (a stream operator threw)")
                              .arg(printable(result.typeName)));
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

qsizetype rawByteArrayOffset(QByteArrayView bytes)
{
    const qsizetype offset = 1 + ByteArrayName.size();
    if (bytes.size() < offset || uchar(bytes.front()) != ByteArrayName.size()
        || bytes.sliced(1, ByteArrayName.size()) != ByteArrayName) {
        return 0;
    }
    return offset;
}

Decoded Decoded::byteArray(QByteArray &&bytes)
{
    Decoded result;
    result.typeName = QByteArray::fromRawData(ByteArrayName.data(), ByteArrayName.size());
    result.value = QVariant(std::move(bytes));
    result.status = Status::Ok;
    return result;
}

Decoded decode(QByteArray &&bytes)
{
    const qsizetype offset = rawByteArrayOffset(bytes);
    if (offset == 0)
        return decode(QByteArrayView(bytes));
    bytes.remove(0, offset);  // an unshared buffer just starts later: no copy
    return Decoded::byteArray(std::move(bytes));
}

} // namespace IpmbPayloadCodec
