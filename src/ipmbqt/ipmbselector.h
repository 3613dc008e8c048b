// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBSELECTOR_H
#define IPMBSELECTOR_H

#include "ipmbqtglobal.h"
#include "ipmblabelop.h"

#include <QtCore/qmetatype.h>
#include <QtCore/qobjectdefs.h>
#include <QtCore/qshareddata.h>

#include <chrono>

QT_BEGIN_NAMESPACE
class QDataStream;
class QDebug;
QT_END_NAMESPACE

class IpmbSelectorData;

class IPMBQT_EXPORT IpmbSelector
{
    Q_GADGET

public:
    enum Mode { Unicast, Multicast };
    Q_ENUM(Mode)

    IpmbSelector();
    IpmbSelector(Mode mode, const IpmbLabelOp &op,
                 std::chrono::milliseconds ttl = std::chrono::milliseconds(0));
    IpmbSelector(const IpmbSelector &other);
    IpmbSelector(IpmbSelector &&other) noexcept;
    IpmbSelector &operator=(const IpmbSelector &other);
    IpmbSelector &operator=(IpmbSelector &&other) noexcept;
    ~IpmbSelector();

    void swap(IpmbSelector &other) noexcept { d.swap(other.d); }

    static IpmbSelector unicast(const IpmbLabelOp &op,
                                std::chrono::milliseconds ttl = std::chrono::milliseconds(0));
    static IpmbSelector multicast(const IpmbLabelOp &op,
                                  std::chrono::milliseconds ttl = std::chrono::milliseconds(0));

    Mode mode() const;
    void setMode(Mode mode);

    IpmbLabelOp labelOp() const;
    void setLabelOp(const IpmbLabelOp &op);

    // Clamped to [0, 0xFFFFFFFF] ms, the range of the wire format.
    std::chrono::milliseconds ttl() const;
    void setTtl(std::chrono::milliseconds ttl);

    friend IPMBQT_EXPORT bool operator==(const IpmbSelector &lhs, const IpmbSelector &rhs);
    friend bool operator!=(const IpmbSelector &lhs, const IpmbSelector &rhs) { return !(lhs == rhs); }

private:
    QSharedDataPointer<IpmbSelectorData> d;
};

Q_DECLARE_SHARED(IpmbSelector)

IPMBQT_EXPORT size_t qHash(const IpmbSelector &selector, size_t seed = 0) noexcept;

#ifndef QT_NO_DEBUG_STREAM
IPMBQT_EXPORT QDebug operator<<(QDebug debug, const IpmbSelector &selector);
#endif

#ifndef QT_NO_DATASTREAM
IPMBQT_EXPORT QDataStream &operator<<(QDataStream &out, const IpmbSelector &selector);
IPMBQT_EXPORT QDataStream &operator>>(QDataStream &in, IpmbSelector &selector);
#endif

Q_DECLARE_METATYPE(IpmbSelector)

#endif // IPMBSELECTOR_H
