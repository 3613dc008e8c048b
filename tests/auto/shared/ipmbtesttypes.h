// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBTESTTYPES_H
#define IPMBTESTTYPES_H

#include <QtCore/qdatastream.h>
#include <QtCore/qmetatype.h>
#include <QtCore/qobjectdefs.h>
#include <QtCore/qstring.h>

// A user type as an application would declare it: a gadget with QDataStream operators.
struct TestPoint
{
    Q_GADGET
    Q_PROPERTY(int x MEMBER x)
    Q_PROPERTY(int y MEMBER y)
    Q_PROPERTY(QString name MEMBER name)
public:
    int x = 0;
    int y = 0;
    QString name;

    friend bool operator==(const TestPoint &a, const TestPoint &b)
    {
        return a.x == b.x && a.y == b.y && a.name == b.name;
    }
    friend QDataStream &operator<<(QDataStream &s, const TestPoint &p) { return s << p.x << p.y << p.name; }
    friend QDataStream &operator>>(QDataStream &s, TestPoint &p) { return s >> p.x >> p.y >> p.name; }
};
Q_DECLARE_METATYPE(TestPoint)

#endif // IPMBTESTTYPES_H
