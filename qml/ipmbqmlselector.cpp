// SPDX-License-Identifier: BSD-3-Clause
#include "ipmbqmlselector.h"

IpmbSelector IpmbQmlSelector::unicast(const QString &labelOp, int ttlMsecs) const
{
    return IpmbSelector::fromString(IpmbSelector::Unicast, labelOp, std::chrono::milliseconds(ttlMsecs));
}

IpmbSelector IpmbQmlSelector::multicast(const QString &labelOp, int ttlMsecs) const
{
    return IpmbSelector::fromString(IpmbSelector::Multicast, labelOp, std::chrono::milliseconds(ttlMsecs));
}
