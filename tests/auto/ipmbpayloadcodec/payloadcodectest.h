// SPDX-License-Identifier: BSD-3-Clause
#ifndef PAYLOADCODECTEST_H
#define PAYLOADCODECTEST_H

// What both payload codec test programs share: QCOMPARE prints a decode status by name, and
// le32() writes the u32 fields of hand-made payloads.

#include "ipmbpayloadcodec_p.h"

#include <QtCore/qbytearray.h>
#include <QtCore/qendian.h>

namespace IpmbPayloadCodec {
inline char *toString(Status status)
{
    switch (status) {
    case Status::Ok: return qstrdup("Ok");
    case Status::UnknownType: return qstrdup("UnknownType");
    case Status::Malformed: return qstrdup("Malformed");
    }
    return qstrdup("?");
}
} // namespace IpmbPayloadCodec

inline QByteArray le32(quint32 value)
{
    QByteArray bytes(4, Qt::Uninitialized);
    qToLittleEndian(value, bytes.data());
    return bytes;
}

#endif // PAYLOADCODECTEST_H
