// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBLABEL_H
#define IPMBLABEL_H

#include "ipmbqtglobal.h"

#include <QtCore/qmetatype.h>
#include <QtCore/qobjectdefs.h>
#include <QtCore/qshareddata.h>
#include <QtCore/qstringlist.h>

#include <initializer_list>

QT_BEGIN_NAMESPACE
class QDataStream;
class QDebug;
QT_END_NAMESPACE

class IpmbLabelData;

class IPMBQT_EXPORT IpmbLabel
{
    Q_GADGET
    Q_PROPERTY(QStringList names READ toStringList)
    Q_PROPERTY(qsizetype size READ size)
    Q_PROPERTY(bool empty READ isEmpty)

public:
    IpmbLabel();
    IpmbLabel(std::initializer_list<QString> names);
    explicit IpmbLabel(const QStringList &names);
    IpmbLabel(const IpmbLabel &other);
    IpmbLabel(IpmbLabel &&other) noexcept;
    IpmbLabel &operator=(const IpmbLabel &other);
    IpmbLabel &operator=(IpmbLabel &&other) noexcept;
    ~IpmbLabel();

    void swap(IpmbLabel &other) noexcept { d.swap(other.d); }

    bool isEmpty() const;
    qsizetype size() const;
    Q_INVOKABLE bool contains(const QString &name) const;

    void insert(const QString &name);
    void remove(const QString &name);

    QStringList toStringList() const;
    // The names joined by ", " (QML uses this when a label is shown as text).
    Q_INVOKABLE QString toString() const;

    friend IPMBQT_EXPORT bool operator==(const IpmbLabel &lhs, const IpmbLabel &rhs);
    friend bool operator!=(const IpmbLabel &lhs, const IpmbLabel &rhs) { return !(lhs == rhs); }

private:
    QSharedDataPointer<IpmbLabelData> d;
};

Q_DECLARE_SHARED(IpmbLabel)

IPMBQT_EXPORT size_t qHash(const IpmbLabel &label, size_t seed = 0) noexcept;

#ifndef QT_NO_DEBUG_STREAM
IPMBQT_EXPORT QDebug operator<<(QDebug debug, const IpmbLabel &label);
#endif

#ifndef QT_NO_DATASTREAM
IPMBQT_EXPORT QDataStream &operator<<(QDataStream &out, const IpmbLabel &label);
IPMBQT_EXPORT QDataStream &operator>>(QDataStream &in, IpmbLabel &label);
#endif

Q_DECLARE_METATYPE(IpmbLabel)

#endif // IPMBLABEL_H
