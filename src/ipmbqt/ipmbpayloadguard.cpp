// SPDX-License-Identifier: BSD-3-Clause
// GuardedDevice: the device that Qt's own stream operators read a payload through, and the
// checks it makes on their behalf (the codec is described in ipmbpayloadcodec.cpp).
#include "ipmbpayloadguard_p.h"
#include "ipmblimits_p.h"

#include <QtCore/qcborstreamreader.h>
#include <QtCore/qdatastream.h>
#include <QtCore/qeasingcurve.h>
#include <QtCore/qendian.h>
#include <QtCore/qfileinfo.h>
#include <QtCore/qiodevice.h>
#include <QtCore/qset.h>
#include <QtCore/qtimezone.h>
#include <QtCore/qvarlengtharray.h>

#include <array>
#include <cstring>

namespace IpmbPayloadCodec {

namespace {

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

} // namespace

qint64 GuardedDevice::readData(char *data, qint64 maxSize)
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

// Stops feeding bytes: every read from now on fails, and so does the operator>> reading.
bool GuardedDevice::refuse(Status status, const QString &reason)
{
    m_tripStatus = status;
    m_tripReason = reason;
    return false;
}

// The bytes at `offset` from the current position as a QString in QDataStream's format (u32
// byte count, UTF-16), if they are all there; *end is where the string ends.
bool GuardedDevice::peekString(qsizetype offset, QString *string, qsizetype *end) const
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

bool GuardedDevice::checkRead(qsizetype size)
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
bool GuardedDevice::checkValueStart(int typeId, bool inferred)
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
bool GuardedDevice::checkEasingCurve(bool inferred)
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

} // namespace IpmbPayloadCodec
