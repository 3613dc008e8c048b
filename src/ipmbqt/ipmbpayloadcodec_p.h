// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBPAYLOADCODEC_P_H
#define IPMBPAYLOADCODEC_P_H

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

// QVariant <-> bytes for the payload section of a Message frame. The format is described at the
// top of ipmbpayloadcodec.cpp and in doc/payloads.md. No OS code here.

#include "ipmbqtglobal.h"

#include <QtCore/qbytearray.h>
#include <QtCore/qbytearrayview.h>
#include <QtCore/qstring.h>
#include <QtCore/qvariant.h>

#include <optional>

// A payload that is already encoded (the bytes of a payload section): encode() writes it as it
// is. The tools forward payloads of types they cannot read this way (ipmbtoolsupport_p.h).
struct IpmbEncodedPayload
{
    QByteArray bytes;
};

namespace IpmbPayloadCodec {

enum class Status { Ok, UnknownType, Malformed };

struct Decoded
{
    QVariant value;        // invalid unless status == Ok
    QByteArray typeName;   // as carried on the wire, even when the type is unknown here
    Status status = Status::Malformed;
    QString errorString;   // readable reason when status != Ok

    // A QByteArray payload whose bytes the caller already extracted.
    static Decoded byteArray(QByteArray &&bytes);
};

// Where the value starts if `bytes` encode a QByteArray (the raw fast path); 0 if they do not.
IPMBQT_AUTOTEST_EXPORT qsizetype rawByteArrayOffset(QByteArrayView bytes);

// Appends the encoding of value to out. Returns false with a readable errorString if the type
// cannot be streamed (no QDataStream operators / not registered); out is then left unchanged.
IPMBQT_AUTOTEST_EXPORT bool encode(const QVariant &value, QByteArray &out, QString *errorString = nullptr);

// What encode() would append for a QByteArray or QString value, known without encoding it; -1
// for every other type. encodeRaw() writes exactly those bytes to `out` (a large payload is
// encoded straight into shared memory that way).
IPMBQT_AUTOTEST_EXPORT qsizetype rawEncodedSize(const QVariant &value);
IPMBQT_AUTOTEST_EXPORT void encodeRaw(const QVariant &value, char *out);

// The type name at the start of an encoded payload (or of a prefix of one): nullopt with the
// reason if it is cut short or not printable ASCII; empty for a null payload.
IPMBQT_AUTOTEST_EXPORT std::optional<QByteArray> typeNameOf(QByteArrayView bytes, QString *errorString = nullptr);

// Decodes exactly `bytes`. Hostile input: never crashes, never returns a wrong value.
IPMBQT_AUTOTEST_EXPORT Decoded decode(QByteArrayView bytes);
// The same, for bytes this process owns: a QByteArray payload then takes over their buffer
// instead of copying it.
IPMBQT_AUTOTEST_EXPORT Decoded decode(QByteArray &&bytes);

} // namespace IpmbPayloadCodec

Q_DECLARE_METATYPE(IpmbEncodedPayload)

#endif // IPMBPAYLOADCODEC_P_H
