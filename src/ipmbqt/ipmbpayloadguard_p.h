// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBPAYLOADGUARD_P_H
#define IPMBPAYLOADGUARD_P_H

//
//  W A R N I N G
//  -------------
//
// This file is not part of the IpmbQt API. It exists purely as an
// implementation detail. This header file may change from version to
// version without notice, or even be removed.
//
// We mean it.
//

// What the payload codec's three files share: ipmbpayloadcodec.cpp (the format, the type rules
// and encoding), ipmbpayloaddecoder.cpp (decode() and ValueReader) and ipmbpayloadguard.cpp
// (GuardedDevice). Only they include this header; everyone else uses ipmbpayloadcodec_p.h.

#include "ipmbpayloadcodec_p.h"

#include <QtCore/qbytearrayview.h>
#include <QtCore/qdatastream.h>
#include <QtCore/qendian.h>
#include <QtCore/qiodevice.h>
#include <QtCore/qmetatype.h>
#include <QtCore/qstring.h>

#include <limits>

namespace IpmbPayloadCodec {

// The type names of the raw fast paths.
inline constexpr QByteArrayView ByteArrayName("QByteArray");
inline constexpr QByteArrayView StringName("QString");

// Defined in ipmbpayloadcodec.cpp.
void configure(QDataStream &stream);
bool isPrintableAscii(QByteArrayView name) noexcept;
QString printable(QByteArrayView name);
bool isPointerOrVoid(QMetaType type);
const char *whyRefused(int typeId);

// Inline: it measures the frame of whoever calls it (decode() and GuardedDevice::readData()).
inline quintptr stackPosition() noexcept
{
#if defined(__GNUC__)
    // The real frame, also under AddressSanitizer's fake stacks (where locals live on the heap).
    return quintptr(__builtin_frame_address(0));
#else
    volatile char marker = 0;
    return quintptr(&marker);
#endif
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
    qint64 readData(char *data, qint64 maxSize) override;
    qint64 writeData(const char *, qint64) override { return -1; }

private:
    struct Read
    {
        qsizetype size = 0;
        quint64 value = 0; // of a 1- or 4-byte read, little-endian
    };

    // Defined, and described, in ipmbpayloadguard.cpp.
    Q_DECL_COLD_FUNCTION Q_NEVER_INLINE bool refuse(Status status, const QString &reason);
    bool peekString(qsizetype offset, QString *string, qsizetype *end) const;
    bool checkRead(qsizetype size);
    bool checkValueStart(int typeId, bool inferred);
    bool checkEasingCurve(bool inferred);

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

} // namespace IpmbPayloadCodec

#endif // IPMBPAYLOADGUARD_P_H
