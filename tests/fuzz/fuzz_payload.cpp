// SPDX-License-Identifier: BSD-3-Clause
// Fuzz target: the payload decoder (hostile bytes in, QVariant out). It must never crash, and
// a value it accepts must encode again into bytes that it accepts again.

#include "fuzzcommon.h"
#include "ipmbpayloadcodec_p.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    fuzzInitialize();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const QByteArrayView bytes(reinterpret_cast<const char *>(data), qsizetype(size));
    IpmbPayloadCodec::rawByteArrayOffset(bytes);
    const IpmbPayloadCodec::Decoded decoded = IpmbPayloadCodec::decode(bytes);
    if (decoded.status != IpmbPayloadCodec::Status::Ok) {
        FUZZ_CHECK(!decoded.value.isValid(), "a failed decode returned a value");
        FUZZ_CHECK(!decoded.errorString.isEmpty(), "a failed decode did not say why");
        return 0;
    }
    QByteArray encoded;
    QString why;
    const bool encodes = IpmbPayloadCodec::encode(decoded.value, encoded, &why);
    if (!encodes)
        std::fprintf(stderr, "re-encoding %s: %s\n", decoded.typeName.constData(), qPrintable(why));
    FUZZ_CHECK(encodes, "a decoded value does not encode");
    // The owning overload, on bytes this process wrote.
    const IpmbPayloadCodec::Decoded again = IpmbPayloadCodec::decode(std::move(encoded));
    if (again.status != IpmbPayloadCodec::Status::Ok)
        std::fprintf(stderr, "re-decoding %s: %s\n", decoded.typeName.constData(), qPrintable(again.errorString));
    FUZZ_CHECK(again.status == IpmbPayloadCodec::Status::Ok, "a re-encoded value does not decode");
    FUZZ_CHECK(again.value.metaType() == decoded.value.metaType(), "a value changed type in a round trip");
    return 0;
}
