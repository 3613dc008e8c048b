// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBSELECTORCODEC_P_H
#define IPMBSELECTORCODEC_P_H

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

#include "ipmbqtglobal.h"
#include "ipmblimits_p.h"
#include "ipmblabel.h"
#include "ipmbselector.h"

#include <QtCore/qbytearray.h>
#include <QtCore/qbytearrayview.h>
#include <QtCore/qstring.h>

#include <optional>

// Binary wire form of labels and selectors, as read by the controller to route messages.
// All integers are little-endian, strings UTF-8:
//
//   label    := u16 count | count x (u16 byteLength | bytes)    names in ascending QString order
//   selector := u8 mode (0 Unicast, 1 Multicast) | u32 ttlMs | op
//   op       := u8 kind (0 False, 1 True, 2 Leaf, 3 Not, 4 And, 5 Or), then
//               Leaf: u16 byteLength | bytes;  Not: op;  And/Or: op op      (prefix order)
//
// The decoders treat their input as hostile and enforce the limits below.
namespace IpmbSelectorCodec {

// Limits: IpmbLimits::MaxLabelNames, MaxNameBytes, MaxOpDepth (a leaf is depth 1), MaxOpNodes.

IPMBQT_AUTOTEST_EXPORT void appendLabel(QByteArray &out, const IpmbLabel &label);
IPMBQT_AUTOTEST_EXPORT void appendSelector(QByteArray &out, const IpmbSelector &selector);

IPMBQT_AUTOTEST_EXPORT std::optional<IpmbLabel> decodeLabel(QByteArrayView bytes,
                                                           QString *errorString = nullptr);
IPMBQT_AUTOTEST_EXPORT std::optional<IpmbSelector> decodeSelector(QByteArrayView bytes,
                                                                 QString *errorString = nullptr);

IPMBQT_AUTOTEST_EXPORT bool fitsLimits(const IpmbLabel &label, QString *errorString = nullptr);
IPMBQT_AUTOTEST_EXPORT bool fitsLimits(const IpmbSelector &selector, QString *errorString = nullptr);

} // namespace IpmbSelectorCodec

#endif // IPMBSELECTORCODEC_P_H
