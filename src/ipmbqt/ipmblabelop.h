// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBLABELOP_H
#define IPMBLABELOP_H

#include "ipmbqtglobal.h"

#include <QtCore/qlist.h>
#include <QtCore/qmetatype.h>
#include <QtCore/qobjectdefs.h>
#include <QtCore/qshareddata.h>
#include <QtCore/qstring.h>

#include <optional>

QT_BEGIN_NAMESPACE
class QDataStream;
class QDebug;
QT_END_NAMESPACE

class IpmbLabel;
class IpmbLabelOpData;

class IPMBQT_EXPORT IpmbLabelOp
{
    Q_GADGET
    Q_PROPERTY(Kind kind READ kind)
    Q_PROPERTY(QString name READ name)
    Q_PROPERTY(QString text READ toString)

public:
    enum class Kind { False, True, Leaf, Not, And, Or };
    Q_ENUM(Kind)

    IpmbLabelOp();
    explicit IpmbLabelOp(const QString &name);
    explicit IpmbLabelOp(const char *name);
    IpmbLabelOp(const IpmbLabelOp &other);
    IpmbLabelOp(IpmbLabelOp &&other) noexcept;
    IpmbLabelOp &operator=(const IpmbLabelOp &other);
    IpmbLabelOp &operator=(IpmbLabelOp &&other) noexcept;
    ~IpmbLabelOp();

    void swap(IpmbLabelOp &other) noexcept { d.swap(other.d); }

    static IpmbLabelOp matchAll();
    static IpmbLabelOp matchNone();

    Kind kind() const;
    QString name() const;
    QList<IpmbLabelOp> operands() const;

    Q_INVOKABLE bool matches(const IpmbLabel &label) const;

    Q_INVOKABLE QString toString() const;
    static std::optional<IpmbLabelOp> fromString(const QString &text, QString *errorString = nullptr);

    friend IPMBQT_EXPORT IpmbLabelOp operator!(const IpmbLabelOp &op);
    friend IPMBQT_EXPORT IpmbLabelOp operator&&(const IpmbLabelOp &lhs, const IpmbLabelOp &rhs);
    friend IPMBQT_EXPORT IpmbLabelOp operator||(const IpmbLabelOp &lhs, const IpmbLabelOp &rhs);

    friend IPMBQT_EXPORT bool operator==(const IpmbLabelOp &lhs, const IpmbLabelOp &rhs);
    friend bool operator!=(const IpmbLabelOp &lhs, const IpmbLabelOp &rhs) { return !(lhs == rhs); }

    // Declared once, here: it reads the structural hash that every node keeps.
    friend size_t qHash(const IpmbLabelOp &op, size_t seed = 0) noexcept { return op.hash(seed); }

private:
    explicit IpmbLabelOp(IpmbLabelOpData *data);
    size_t hash(size_t seed) const noexcept;

    // Nodes are immutable once built, so subtrees are shared between ops and never detached.
    QSharedDataPointer<IpmbLabelOpData> d;
};

Q_DECLARE_SHARED(IpmbLabelOp)

#ifndef QT_NO_DEBUG_STREAM
IPMBQT_EXPORT QDebug operator<<(QDebug debug, const IpmbLabelOp &op);
#endif

#ifndef QT_NO_DATASTREAM
IPMBQT_EXPORT QDataStream &operator<<(QDataStream &out, const IpmbLabelOp &op);
IPMBQT_EXPORT QDataStream &operator>>(QDataStream &in, IpmbLabelOp &op);
#endif

Q_DECLARE_METATYPE(IpmbLabelOp)

#endif // IPMBLABELOP_H
