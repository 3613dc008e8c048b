// SPDX-License-Identifier: BSD-3-Clause
// Fuzz target: IpmbLabelOp::fromString() on the input as UTF-8. What parses prints with
// toString(), and that text parses to an equal op that prints the same.

#include "fuzzcommon.h"
#include "ipmblabelop.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    fuzzInitialize();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const QString text = QString::fromUtf8(reinterpret_cast<const char *>(data), qsizetype(size));
    QString why;
    const std::optional<IpmbLabelOp> op = IpmbLabelOp::fromString(text, &why);
    if (!op) {
        FUZZ_CHECK(!why.isEmpty(), "fromString() failed without saying why");
        return 0;
    }
    const QString printed = op->toString();
    const std::optional<IpmbLabelOp> again = IpmbLabelOp::fromString(printed, &why);
    FUZZ_CHECK(again.has_value(), "toString() printed what fromString() refuses");
    FUZZ_CHECK(*again == *op, "an op changed in a toString()/fromString() round trip");
    FUZZ_CHECK(again->toString() == printed, "toString() is not stable");
    return 0;
}
