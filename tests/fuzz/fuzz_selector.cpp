// SPDX-License-Identifier: BSD-3-Clause
// Fuzz target: the wire decoders of labels and selectors (what the controller routes by).
// Whatever decodes must encode again, and that encoding must decode to an equal value.

#include "fuzzcommon.h"
#include "ipmbselectorcodec_p.h"

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

    if (const std::optional<IpmbSelector> selector = IpmbSelectorCodec::decodeSelector(bytes)) {
        FUZZ_CHECK(IpmbSelectorCodec::fitsLimits(*selector), "a decoded selector is over the limits");
        QByteArray encoded;
        IpmbSelectorCodec::appendSelector(encoded, *selector);
        const std::optional<IpmbSelector> again = IpmbSelectorCodec::decodeSelector(encoded);
        FUZZ_CHECK(again.has_value(), "a re-encoded selector does not decode");
        FUZZ_CHECK(*again == *selector, "a selector changed in a round trip");
        QByteArray encodedAgain;
        IpmbSelectorCodec::appendSelector(encodedAgain, *again);
        FUZZ_CHECK(encodedAgain == encoded, "a selector's encoding is not stable");
    }

    if (const std::optional<IpmbLabel> label = IpmbSelectorCodec::decodeLabel(bytes)) {
        FUZZ_CHECK(IpmbSelectorCodec::fitsLimits(*label), "a decoded label is over the limits");
        QByteArray encoded;
        IpmbSelectorCodec::appendLabel(encoded, *label);
        const std::optional<IpmbLabel> again = IpmbSelectorCodec::decodeLabel(encoded);
        FUZZ_CHECK(again.has_value(), "a re-encoded label does not decode");
        FUZZ_CHECK(*again == *label, "a label changed in a round trip");
    }
    return 0;
}
