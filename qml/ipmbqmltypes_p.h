// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQMLTYPES_P_H
#define IPMBQMLTYPES_P_H

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

#include <IpmbQt/ipmblabel.h>
#include <IpmbQt/ipmblabelop.h>
#include <IpmbQt/ipmbmemoryregion.h>
#include <IpmbQt/ipmbmessage.h>
#include <IpmbQt/ipmbnativehandle.h>
#include <IpmbQt/ipmbpeer.h>
#include <IpmbQt/ipmbselector.h>

#include <QtQml/qqmlregistration.h>

// The core's value classes, as QML value types (lower-case names, as Qt's own: point, rect).
// QML reads their properties; messages and selectors are made by Endpoint and Selector.
struct IpmbQmlMessageForeign
{
    Q_GADGET
    QML_FOREIGN(IpmbMessage)
    QML_VALUE_TYPE(message)
};

struct IpmbQmlPeerForeign
{
    Q_GADGET
    QML_FOREIGN(IpmbPeer)
    QML_VALUE_TYPE(peer)
};

struct IpmbQmlSelectorForeign
{
    Q_GADGET
    QML_FOREIGN(IpmbSelector)
    QML_VALUE_TYPE(selector)
};

struct IpmbQmlLabelForeign
{
    Q_GADGET
    QML_FOREIGN(IpmbLabel)
    QML_VALUE_TYPE(label)
};

struct IpmbQmlLabelOpForeign
{
    Q_GADGET
    QML_FOREIGN(IpmbLabelOp)
    QML_VALUE_TYPE(labelOp)
};

struct IpmbQmlMemoryRegionForeign
{
    Q_GADGET
    QML_FOREIGN(IpmbMemoryRegion)
    QML_VALUE_TYPE(memoryRegion)
};

struct IpmbQmlNativeHandleForeign
{
    Q_GADGET
    QML_FOREIGN(IpmbNativeHandle)
    QML_VALUE_TYPE(nativeHandle)
};

// Message.PayloadOk, Message.PayloadUnknownType, Message.PayloadMalformed.
namespace IpmbQmlMessageEnums {
Q_NAMESPACE
QML_FOREIGN_NAMESPACE(IpmbMessage)
QML_NAMED_ELEMENT(Message)
}

// LabelOp.Leaf, LabelOp.And, ... (labelOp.kind).
namespace IpmbQmlLabelOpEnums {
Q_NAMESPACE
QML_FOREIGN_NAMESPACE(IpmbLabelOp)
QML_NAMED_ELEMENT(LabelOp)
}

// MemoryRegion.NoError, MemoryRegion.LockError, ... (memoryRegion.error).
namespace IpmbQmlMemoryRegionEnums {
Q_NAMESPACE
QML_FOREIGN_NAMESPACE(IpmbMemoryRegion)
QML_NAMED_ELEMENT(MemoryRegion)
}

#endif // IPMBQMLTYPES_P_H
