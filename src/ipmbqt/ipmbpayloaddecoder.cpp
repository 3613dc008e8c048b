// SPDX-License-Identifier: BSD-3-Clause
// decode(): the reading side of the payload codec, whose format is described at the top of
// ipmbpayloadcodec.cpp. Qt's own operators read through GuardedDevice (ipmbpayloadguard.cpp).
#include "ipmbpayloadcodec_p.h"
#include "ipmbpayloadguard_p.h"
#include "ipmblimits_p.h"

#include <QtCore/qbitarray.h>
#include <QtCore/qdatastream.h>
#include <QtCore/qendian.h>
#include <QtCore/qmetacontainer.h>
#include <QtCore/qmetatype.h>
#include <QtCore/qsequentialiterable.h>

#include <new>

namespace IpmbPayloadCodec {

namespace {

// Reads a value in QMetaType::save()'s format for its type (see the comment at the top of
// ipmbpayloadcodec.cpp). Hostile input decides how deep the recursion readVariant -> readValue ->
// read<container> -> readVariant goes, so those functions keep few locals, and every error
// message is built in a cold function.
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

std::optional<QByteArray> typeNameOf(QByteArrayView bytes, QString *errorString)
{
    const auto fail = [errorString](const QString &why) -> std::optional<QByteArray> {
        if (errorString)
            *errorString = why;
        return std::nullopt;
    };
    if (bytes.isEmpty())
        return fail(QStringLiteral("empty payload section"));
    const qsizetype nameLength = uchar(bytes.front());
    if (bytes.size() < 1 + nameLength) {
        return fail(QStringLiteral("its type name needs %1 bytes, %2 are there").arg(nameLength).arg(bytes.size() - 1));
    }
    QByteArray name = bytes.sliced(1, nameLength).toByteArray();
    if (!isPrintableAscii(name))
        return fail(QStringLiteral("type name '%1' is not printable ASCII").arg(printable(name)));
    return name;
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
