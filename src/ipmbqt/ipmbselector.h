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
    Q_PROPERTY(Mode mode READ mode WRITE setMode)
    Q_PROPERTY(IpmbLabelOp labelOp READ labelOp WRITE setLabelOp)
    Q_PROPERTY(qint64 ttl READ ttlMsecs WRITE setTtlMsecs)
    Q_PROPERTY(bool valid READ isValid)
    Q_PROPERTY(QString errorString READ errorString)

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

    // Parses labelOp with IpmbLabelOp::fromString(); on a syntax error the selector is invalid
    // (matches nothing, send() refuses it) and errorString() says why, as QUrl does.
    static IpmbSelector fromString(Mode mode, const QString &labelOp,
                                   std::chrono::milliseconds ttl = std::chrono::milliseconds(0));

    bool isValid() const;
    QString errorString() const;

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
    qint64 ttlMsecs() const { return qint64(ttl().count()); }
    void setTtlMsecs(qint64 msecs) { setTtl(std::chrono::milliseconds(msecs)); }

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
