// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBTESTVALUE_H
#define IPMBTESTVALUE_H

// What every value class promises, checked in one place: copy, move, assignment (self-assignment
// too), swap, equality and inequality, qHash consistent with ==, detach on write, the metatype,
// QVariant, QDataStream (where the type has stream operators), QDebug and the gadget properties.
// A test calls checkValueSemantics() with two different values of its class, and checkEquality()
// for its own pairs of equal and different values; both are QtTest checks (they fail the current
// test function and return), so call them last or check QTest::currentTestFailed() after them.

#include <QtCore/qdatastream.h>
#include <QtCore/qdebug.h>
#include <QtCore/qhash.h>
#include <QtCore/qmetaobject.h>
#include <QtCore/qmetatype.h>
#include <QtCore/qset.h>
#include <QtCore/qvariant.h>
#include <QtTest/qtest.h>

#include <cstddef>
#include <type_traits>
#include <utility>

#define IPMBTEST_RETURN_IF_FAILED() \
    do { \
        if (QTest::currentTestFailed()) \
            return; \
    } while (false)

namespace IpmbTest {

// Implicitly shared classes (QSharedDataPointer) detach when a copy is written to; explicitly
// shared ones (IpmbNativeHandle, IpmbMemoryRegion) show the change through every copy.
enum class Sharing { Implicit, Explicit };

namespace Detail {
template <typename T, typename = void>
struct HasQHash : std::false_type { };
template <typename T>
struct HasQHash<T, std::void_t<decltype(qHash(std::declval<const T &>(), size_t(0)))>> : std::true_type { };
} // namespace Detail

template <typename T>
constexpr bool isHashable = Detail::HasQHash<T>::value;
template <typename T>
constexpr bool isStreamable = QTypeTraits::has_stream_operator_v<QDataStream, T>;

// lhs == rhs is `equal`, both ways round, != agrees, equal values hash alike (with any seed) and
// count once in a QSet, and QVariants of them compare the same way.
template <typename T>
void checkEquality(const T &lhs, const T &rhs, bool equal)
{
    QCOMPARE(lhs == rhs, equal);
    QCOMPARE(rhs == lhs, equal);
    QCOMPARE(lhs != rhs, !equal);
    QCOMPARE(rhs != lhs, !equal);
    QVERIFY(lhs == lhs);
    QVERIFY(!(lhs != lhs));
    if constexpr (isHashable<T>) {
        if (equal) {
            QCOMPARE(qHash(lhs), qHash(rhs));
            QCOMPARE(qHash(lhs, 42), qHash(rhs, 42));
            QCOMPARE(qHash(lhs, ~size_t(0)), qHash(rhs, ~size_t(0)));
        }
        const QSet<T> set {lhs, rhs};
        QCOMPARE(set.size(), equal ? 1 : 2);
    }
    QCOMPARE(QVariant::fromValue(lhs) == QVariant::fromValue(rhs), equal);
}

// `value` written to a QDataStream twice and as a QVariant reads back equal, over `stale` and a
// default-constructed value, and the stream ends there.
template <typename T>
void checkDataStreamRoundTrip(const T &value, const T &stale = T())
{
    static_assert(isStreamable<T>, "no QDataStream operators");
    QByteArray bytes;
    {
        QDataStream out(&bytes, QIODevice::WriteOnly);
        out << value << value << QVariant::fromValue(value);
        QCOMPARE(out.status(), QDataStream::Ok);
    }
    QDataStream in(bytes);
    T first = stale;
    T second;
    QVariant third;
    in >> first >> second >> third;
    QCOMPARE(in.status(), QDataStream::Ok);
    QVERIFY(in.atEnd());
    QCOMPARE(first, value);
    QCOMPARE(second, value);
    QCOMPARE(third.metaType(), QMetaType::fromType<T>());
    QCOMPARE(third.value<T>(), value);
}

// `value` in QDebug is `expected`, through qDebug() and on a QDebug of a string, and the stream's
// own settings survive it (QDebugStateSaver): spaces resume afterwards.
template <typename T>
void checkDebugOutput(const T &value, const QString &expected)
{
    QTest::ignoreMessage(QtDebugMsg, qPrintable(expected));
    qDebug() << value;
    QString text;
    QDebug(&text) << value << 1;
    QCOMPARE(text, expected + QLatin1String(" 1 "));
}

// A copy of `value` changed by `write(T &)`: with Sharing::Implicit it detaches (it differs
// afterwards, `value` does not change); with Sharing::Explicit the change shows through every copy,
// `value` included.
template <typename T, typename Write>
void checkWrite(const T &value, Write write, Sharing sharing = Sharing::Implicit)
{
    const T before = value;
    T copy = value;
    write(copy);
    if (sharing == Sharing::Implicit) {
        QVERIFY2(copy != value, "the write changed nothing, or changed the original too");
        QCOMPARE(value, before);
    } else {
        QCOMPARE(copy, value);
        QCOMPARE(before, value);
    }
}

// The value class promises of T, checked with two values that differ. `write` (optional) changes
// a value through its setters; see checkWrite(), which runs last (with Sharing::Explicit it
// changes `a` as well).
template <typename T, typename Write = std::nullptr_t>
void checkValueSemantics(const T &a, const T &b, Write write = nullptr, Sharing sharing = Sharing::Implicit)
{
    static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T>);
    static_assert(std::is_nothrow_swappable_v<T>);
    static_assert(QTypeInfo<T>::isRelocatable, "Q_DECLARE_SHARED is missing");

    QVERIFY2(a != b, "checkValueSemantics() needs two different values");
    checkEquality(a, b, false);
    IPMBTEST_RETURN_IF_FAILED();
    checkEquality(T(), T(), true);
    IPMBTEST_RETURN_IF_FAILED();

    // Copies.
    T copy(a);
    checkEquality(copy, a, true);
    IPMBTEST_RETURN_IF_FAILED();
    T assigned(b);
    assigned = a;
    QCOMPARE(assigned, a);
    QCOMPARE(b, T(b));
    // Self-assignment, through a reference as a container does it: the value stays.
    T &self = assigned;
    assigned = self;
    QCOMPARE(assigned, a);
    // Self-move leaves a value that can be assigned again and destroyed.
    assigned = std::move(self);
    assigned = b;
    QCOMPARE(assigned, b);

    // Moves; a moved-from value can be assigned again.
    T moved(std::move(copy));
    QCOMPARE(moved, a);
    copy = b;
    QCOMPARE(copy, b);
    T target(b);
    target = std::move(moved);
    QCOMPARE(target, a);
    moved = a;
    QCOMPARE(moved, a);

    // Swaps: the member, the ADL one Q_DECLARE_SHARED declares, std::swap and qSwap.
    T x(a);
    T y(b);
    x.swap(y);
    QCOMPARE(x, b);
    QCOMPARE(y, a);
    swap(x, y);
    QCOMPARE(x, a);
    QCOMPARE(y, b);
    std::swap(x, y);
    QCOMPARE(x, b);
    qSwap(x, y);
    QCOMPARE(x, a);
    QCOMPARE(y, b);

    // The metatype: a gadget with T's name, comparable, printable, streamable if T is.
    const QMetaType type = QMetaType::fromType<T>();
    QVERIFY(type.isValid());
    QCOMPARE(type.name(), T::staticMetaObject.className());
    QCOMPARE(type.metaObject(), &T::staticMetaObject);
    QVERIFY(type.flags().testFlag(QMetaType::IsGadget));
    QVERIFY(type.isEqualityComparable());
    QVERIFY(type.hasRegisteredDebugStreamOperator());
    QCOMPARE(type.hasRegisteredDataStreamOperators(), isStreamable<T>);
    QCOMPARE(QMetaType::fromName(type.name()), type);

    // QVariant, built from the value and as moc and QML build one (type and pointer).
    const QVariant variant = QVariant::fromValue(a);
    QCOMPARE(variant.metaType(), type);
    QVERIFY(variant.canConvert<T>());
    QCOMPARE(variant.value<T>(), a);
    QCOMPARE(qvariant_cast<T>(variant), a);
    QCOMPARE(QVariant(type, &a).value<T>(), a);
    QCOMPARE(QVariant(type).value<T>(), T());
    QCOMPARE(variant, QVariant::fromValue(T(a)));
    QVERIFY(variant != QVariant::fromValue(b));

    // Every gadget property reads, with the type it declares (what QML sees); a QVariant property
    // reads as the value it holds.
    const QMetaObject &mo = T::staticMetaObject;
    for (int i = mo.propertyOffset(); i < mo.propertyCount(); ++i) {
        const QMetaProperty property = mo.property(i);
        QVERIFY2(property.isReadable(), property.name());
        const QVariant value = property.readOnGadget(&a);
        if (property.metaType() == QMetaType::fromType<QVariant>())
            continue;
        QVERIFY2(value.isValid(), property.name());
        QVERIFY2(value.metaType() == property.metaType(), property.name());
    }

    if constexpr (isStreamable<T>) {
        checkDataStreamRoundTrip(a, b);
        IPMBTEST_RETURN_IF_FAILED();
        checkDataStreamRoundTrip(b, a);
        IPMBTEST_RETURN_IF_FAILED();
    }

    // QDebug: "ClassName(...)", and the stream's own settings survive (QDebugStateSaver).
    QString alone;
    QDebug(&alone) << a;
    QVERIFY2(alone.startsWith(QLatin1String(mo.className()) + QLatin1Char('(')), qPrintable(alone));
    QString followed;
    QDebug(&followed) << a << 1;
    QCOMPARE(followed, alone + QLatin1String("1 "));

    if constexpr (!std::is_same_v<Write, std::nullptr_t>)
        checkWrite(a, write, sharing);
}

} // namespace IpmbTest

#endif // IPMBTESTVALUE_H
