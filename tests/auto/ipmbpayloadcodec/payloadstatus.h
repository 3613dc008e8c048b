// SPDX-License-Identifier: BSD-3-Clause
#ifndef PAYLOADSTATUS_H
#define PAYLOADSTATUS_H

// QCOMPARE prints a decode status by name (both payload codec tests).

#include "ipmbpayloadcodec_p.h"

#include <QtCore/qbytearray.h>

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

#endif // PAYLOADSTATUS_H
