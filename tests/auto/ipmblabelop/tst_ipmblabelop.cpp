// SPDX-License-Identifier: BSD-3-Clause
#include <IpmbQt/ipmblabel.h>
#include <IpmbQt/ipmblabelop.h>

#include "ipmbtestvalue.h"

#include <QtCore/qdatastream.h>
#include <QtCore/qdebug.h>
#include <QtCore/qset.h>
#include <QtCore/qvariant.h>
#include <QtTest/qtest.h>

#include <functional>

using namespace Qt::StringLiterals;

Q_DECLARE_METATYPE(IpmbLabelOp::Kind)

// Lets QCOMPARE print ops on failure.
char *toString(const IpmbLabelOp &op)
{
    return qstrdup(op.toString().toUtf8().constData());
}

namespace {

IpmbLabelOp leaf(const char *name)
{
    return IpmbLabelOp(name);
}

IpmbLabel label(std::initializer_list<const char *> names)
{
    IpmbLabel result;
    for (const char *name : names)
        result.insert(QString::fromUtf8(name));
    return result;
}

// The obvious recursive evaluator, to check matches() against.
bool reference(const IpmbLabelOp &op, const IpmbLabel &l)
{
    const QList<IpmbLabelOp> operands = op.operands();
    switch (op.kind()) {
    case IpmbLabelOp::Kind::False:
        return false;
    case IpmbLabelOp::Kind::True:
        return true;
    case IpmbLabelOp::Kind::Leaf:
        return l.contains(op.name());
    case IpmbLabelOp::Kind::Not:
        return !reference(operands.at(0), l);
    case IpmbLabelOp::Kind::And:
        return reference(operands.at(0), l) && reference(operands.at(1), l);
    case IpmbLabelOp::Kind::Or:
        return reference(operands.at(0), l) || reference(operands.at(1), l);
    }
    return false;
}

// Every op of exactly `size` nodes over the leaves a and b and the constants.
QList<IpmbLabelOp> opsOfSize(int size)
{
    static QList<QList<IpmbLabelOp>> cache;
    if (cache.isEmpty())
        cache.append(QList<IpmbLabelOp>()); // size 0: none
    while (cache.size() <= size) {
        const int n = int(cache.size());
        QList<IpmbLabelOp> ops;
        if (n == 1) {
            ops = {IpmbLabelOp::matchAll(), IpmbLabelOp::matchNone(), leaf("a"), leaf("b")};
        } else {
            for (const IpmbLabelOp &op : std::as_const(cache[n - 1]))
                ops.append(!op);
            for (int left = 1; left < n - 1; ++left) {
                for (const IpmbLabelOp &l : std::as_const(cache[left])) {
                    for (const IpmbLabelOp &r : std::as_const(cache[n - 1 - left])) {
                        ops.append(l && r);
                        ops.append(l || r);
                    }
                }
            }
        }
        cache.append(ops);
    }
    return cache.at(size);
}

IpmbLabelOp notChain(int nots, const IpmbLabelOp &inner)
{
    IpmbLabelOp op = inner;
    for (int i = 0; i < nots; ++i)
        op = !op;
    return op;
}

} // namespace

class tst_IpmbLabelOp : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void defaults();
    void accessors_data();
    void accessors();
    void constCharConstructor();
    void valueSemantics();
    void matches_data();
    void matches();
    void matchesExhaustive();
    void equality_data();
    void equality();
    void hashContainers();
    void toString_data();
    void toString();
    void roundTrip_data();
    void roundTrip();
    void roundTripExhaustiveWithMinimalParentheses();
    void fromString_data();
    void fromString();
    void fromStringErrors_data();
    void fromStringErrors();
    void fromStringLimits_data();
    void fromStringLimits();
    void deepOps();
    void dataStream_data();
    void dataStream();
    void dataStreamHostile();
    void debugOutput();
};

void tst_IpmbLabelOp::defaults()
{
    const IpmbLabelOp op;
    QCOMPARE(op.kind(), IpmbLabelOp::Kind::True);
    QVERIFY(op.name().isEmpty());
    QVERIFY(op.operands().isEmpty());
    QCOMPARE(op, IpmbLabelOp::matchAll());
    QCOMPARE(IpmbLabelOp::matchAll().kind(), IpmbLabelOp::Kind::True);
    QCOMPARE(IpmbLabelOp::matchNone().kind(), IpmbLabelOp::Kind::False);
    QVERIFY(IpmbLabelOp::matchAll() != IpmbLabelOp::matchNone());
    QVERIFY(op.matches(IpmbLabel()));
    QVERIFY(!IpmbLabelOp::matchNone().matches(label({"a"})));
}

void tst_IpmbLabelOp::accessors_data()
{
    QTest::addColumn<IpmbLabelOp>("op");
    QTest::addColumn<IpmbLabelOp::Kind>("kind");
    QTest::addColumn<QString>("name");
    QTest::addColumn<QList<IpmbLabelOp>>("operands");

    QTest::newRow("true") << IpmbLabelOp::matchAll() << IpmbLabelOp::Kind::True << QString()
                          << QList<IpmbLabelOp>();
    QTest::newRow("false") << IpmbLabelOp::matchNone() << IpmbLabelOp::Kind::False << QString()
                           << QList<IpmbLabelOp>();
    QTest::newRow("leaf") << leaf("earth") << IpmbLabelOp::Kind::Leaf << u"earth"_s
                          << QList<IpmbLabelOp>();
    QTest::newRow("leaf-empty") << IpmbLabelOp(QString()) << IpmbLabelOp::Kind::Leaf << QString()
                                << QList<IpmbLabelOp>();
    QTest::newRow("not") << !leaf("a") << IpmbLabelOp::Kind::Not << QString()
                         << QList<IpmbLabelOp>{leaf("a")};
    QTest::newRow("and") << (leaf("a") && !leaf("b")) << IpmbLabelOp::Kind::And << QString()
                         << QList<IpmbLabelOp>{leaf("a"), !leaf("b")};
    QTest::newRow("or") << (leaf("a") || IpmbLabelOp::matchNone()) << IpmbLabelOp::Kind::Or
                        << QString() << QList<IpmbLabelOp>{leaf("a"), IpmbLabelOp::matchNone()};
}

void tst_IpmbLabelOp::accessors()
{
    QFETCH(IpmbLabelOp, op);
    QFETCH(IpmbLabelOp::Kind, kind);
    QFETCH(QString, name);
    QFETCH(QList<IpmbLabelOp>, operands);

    QCOMPARE(op.kind(), kind);
    QCOMPARE(op.name(), name);
    QCOMPARE(op.operands(), operands);
}

void tst_IpmbLabelOp::constCharConstructor()
{
    QCOMPARE(IpmbLabelOp("earth"), IpmbLabelOp(u"earth"_s));
    QCOMPARE(IpmbLabelOp("gr\xc3\xbc\xc3\x9f").name(), u"grüß"_s); // UTF-8
    QCOMPARE(IpmbLabelOp("").kind(), IpmbLabelOp::Kind::Leaf);
    QVERIFY(IpmbLabelOp("").name().isEmpty());
}

void tst_IpmbLabelOp::valueSemantics()
{
    IpmbLabelOp a = leaf("a");
    const IpmbLabelOp b = leaf("b");
    const IpmbLabelOp combined = a && !b;

    // Ops are immutable values: reassigning a part does not change what was built from it.
    a = leaf("z");
    QCOMPARE(combined.operands().at(0), leaf("a"));
    QCOMPARE(combined.toString(), u"a && !b"_s);

    IpmbLabelOp copy = combined;
    copy = b;
    QCOMPARE(combined.toString(), u"a && !b"_s);

    // Sharing a subtree on both sides is allowed.
    const IpmbLabelOp twice = combined || combined;
    QCOMPARE(twice.toString(), u"a && !b || a && !b"_s);
    QVERIFY(twice.matches(label({"a"})));

    // Ops have no setters: assignment is their only write.
    IpmbTest::checkValueSemantics(combined, leaf("y") || leaf("w"),
                                  [](IpmbLabelOp &op) { op = IpmbLabelOp::matchNone(); });
}

void tst_IpmbLabelOp::matches_data()
{
    QTest::addColumn<IpmbLabelOp>("op");
    QTest::addColumn<IpmbLabel>("label");
    QTest::addColumn<bool>("expected");

    const IpmbLabelOp t = IpmbLabelOp::matchAll();
    const IpmbLabelOp f = IpmbLabelOp::matchNone();
    const IpmbLabelOp a = leaf("a");
    const IpmbLabelOp b = leaf("b");

    QTest::newRow("true/empty") << t << IpmbLabel() << true;
    QTest::newRow("true/a") << t << label({"a"}) << true;
    QTest::newRow("false/empty") << f << IpmbLabel() << false;
    QTest::newRow("false/a") << f << label({"a"}) << false;

    QTest::newRow("a/empty") << a << IpmbLabel() << false;
    QTest::newRow("a/a") << a << label({"a"}) << true;
    QTest::newRow("a/b") << a << label({"b"}) << false;
    QTest::newRow("a/ab") << a << label({"a", "b"}) << true;
    QTest::newRow("a/A") << a << label({"A"}) << false;
    QTest::newRow("a/aa") << a << label({"aa"}) << false;

    QTest::newRow("!a/empty") << !a << IpmbLabel() << true;
    QTest::newRow("!a/a") << !a << label({"a"}) << false;
    QTest::newRow("!!a/a") << !!a << label({"a"}) << true;
    QTest::newRow("!true") << !t << IpmbLabel() << false;
    QTest::newRow("!false") << !f << IpmbLabel() << true;

    QTest::newRow("a&&b/empty") << (a && b) << IpmbLabel() << false;
    QTest::newRow("a&&b/a") << (a && b) << label({"a"}) << false;
    QTest::newRow("a&&b/b") << (a && b) << label({"b"}) << false;
    QTest::newRow("a&&b/ab") << (a && b) << label({"a", "b"}) << true;
    QTest::newRow("a||b/empty") << (a || b) << IpmbLabel() << false;
    QTest::newRow("a||b/a") << (a || b) << label({"a"}) << true;
    QTest::newRow("a||b/b") << (a || b) << label({"b"}) << true;
    QTest::newRow("a||b/ab") << (a || b) << label({"a", "b"}) << true;
    QTest::newRow("true&&false") << (t && f) << IpmbLabel() << false;
    QTest::newRow("true||false") << (t || f) << IpmbLabel() << true;
    QTest::newRow("false||false") << (f || f) << label({"a"}) << false;

    const IpmbLabelOp xorAB = (a || b) && !(a && b);
    QTest::newRow("xor/empty") << xorAB << IpmbLabel() << false;
    QTest::newRow("xor/a") << xorAB << label({"a"}) << true;
    QTest::newRow("xor/b") << xorAB << label({"b"}) << true;
    QTest::newRow("xor/ab") << xorAB << label({"a", "b"}) << false;

    const IpmbLabelOp renderer = leaf("renderer") && !leaf("gpu0");
    QTest::newRow("renderer/gpu1") << renderer << label({"renderer", "gpu1"}) << true;
    QTest::newRow("renderer/gpu0") << renderer << label({"renderer", "gpu0"}) << false;
    QTest::newRow("renderer/none") << renderer << label({"gpu1"}) << false;

    const IpmbLabelOp nested = a && (b || (leaf("c") && !leaf("d")));
    QTest::newRow("nested/ac") << nested << label({"a", "c"}) << true;
    QTest::newRow("nested/acd") << nested << label({"a", "c", "d"}) << false;
    QTest::newRow("nested/abd") << nested << label({"a", "b", "d"}) << true;
    QTest::newRow("nested/c") << nested << label({"c"}) << false;

    QTest::newRow("empty-name/has") << IpmbLabelOp(QString()) << IpmbLabel{QString()} << true;
    QTest::newRow("empty-name/not") << IpmbLabelOp(QString()) << label({"a"}) << false;
    QTest::newRow("unicode") << leaf("\xf0\x9d\x84\x9e") << IpmbLabel{u"𝄞"_s} << true;
    QTest::newRow("keyword-name") << IpmbLabelOp(u"true"_s) << IpmbLabel() << false;
}

void tst_IpmbLabelOp::matches()
{
    QFETCH(IpmbLabelOp, op);
    QFETCH(IpmbLabel, label);
    QFETCH(bool, expected);

    QCOMPARE(op.matches(label), expected);
    QCOMPARE(reference(op, label), expected);
    QCOMPARE((!op).matches(label), !expected);
}

void tst_IpmbLabelOp::matchesExhaustive()
{
    const QList<IpmbLabel> labels{IpmbLabel(), label({"a"}), label({"b"}), label({"a", "b"})};
    int checked = 0;
    for (int size = 1; size <= 6; ++size) {
        for (const IpmbLabelOp &op : opsOfSize(size)) {
            for (const IpmbLabel &l : labels) {
                QVERIFY2(op.matches(l) == reference(op, l), qPrintable(op.toString()));
                ++checked;
            }
        }
    }
    QVERIFY(checked > 10000);
}

void tst_IpmbLabelOp::equality_data()
{
    QTest::addColumn<IpmbLabelOp>("lhs");
    QTest::addColumn<IpmbLabelOp>("rhs");
    QTest::addColumn<bool>("equal");

    const IpmbLabelOp a = leaf("a");
    const IpmbLabelOp b = leaf("b");
    const IpmbLabelOp c = leaf("c");

    QTest::newRow("default/matchAll") << IpmbLabelOp() << IpmbLabelOp::matchAll() << true;
    QTest::newRow("true/false") << IpmbLabelOp::matchAll() << IpmbLabelOp::matchNone() << false;
    QTest::newRow("leaf/leaf") << leaf("a") << IpmbLabelOp(u"a"_s) << true;
    QTest::newRow("leaf/other") << a << b << false;
    QTest::newRow("null/empty-name") << IpmbLabelOp(QString()) << IpmbLabelOp(u""_s) << true;
    QTest::newRow("leaf-true/true") << IpmbLabelOp(u"true"_s) << IpmbLabelOp::matchAll() << false;
    QTest::newRow("not/leaf") << !a << a << false;
    QTest::newRow("not/not") << !a << !leaf("a") << true;
    QTest::newRow("double-not") << !!a << a << false;
    QTest::newRow("and/and") << (a && b) << (leaf("a") && leaf("b")) << true;
    QTest::newRow("and/commuted") << (a && b) << (b && a) << false;
    QTest::newRow("and/or") << (a && b) << (a || b) << false;
    QTest::newRow("associativity") << ((a && b) && c) << (a && (b && c)) << false;
    QTest::newRow("deep-equal") << ((a || !b) && !(c || a)) << ((a || !b) && !(c || a)) << true;
    QTest::newRow("deep-differ-at-leaf") << ((a || !b) && !(c || a)) << ((a || !b) && !(c || b))
                                         << false;
    QTest::newRow("shared/unshared") << ((a && b) || (a && b))
                                     << ((leaf("a") && leaf("b")) || (leaf("a") && leaf("b")))
                                     << true;
}

void tst_IpmbLabelOp::equality()
{
    QFETCH(IpmbLabelOp, lhs);
    QFETCH(IpmbLabelOp, rhs);
    QFETCH(bool, equal);
    IpmbTest::checkEquality(lhs, rhs, equal);
}

void tst_IpmbLabelOp::hashContainers()
{
    QSet<IpmbLabelOp> set;
    for (int size = 1; size <= 4; ++size) {
        for (const IpmbLabelOp &op : opsOfSize(size))
            set.insert(op);
    }
    const qsizetype distinct = set.size();
    QCOMPARE(distinct, qsizetype(opsOfSize(1).size() + opsOfSize(2).size() + opsOfSize(3).size()
                                 + opsOfSize(4).size()));
    // Structurally equal ops built independently are found.
    QVERIFY(set.contains(leaf("a") && !leaf("b")));
    QVERIFY(set.contains(!(leaf("a") || leaf("b"))));
    set.insert(leaf("a") && !leaf("b"));
    QCOMPARE(set.size(), distinct);
}

void tst_IpmbLabelOp::toString_data()
{
    QTest::addColumn<IpmbLabelOp>("op");
    QTest::addColumn<QString>("text");

    const IpmbLabelOp a = leaf("a");
    const IpmbLabelOp b = leaf("b");
    const IpmbLabelOp c = leaf("c");
    const IpmbLabelOp d = leaf("d");

    QTest::newRow("true") << IpmbLabelOp::matchAll() << u"true"_s;
    QTest::newRow("false") << IpmbLabelOp::matchNone() << u"false"_s;
    QTest::newRow("leaf") << leaf("renderer") << u"renderer"_s;
    QTest::newRow("not") << !a << u"!a"_s;
    QTest::newRow("not-not") << !!a << u"!!a"_s;
    QTest::newRow("not-true") << !IpmbLabelOp::matchAll() << u"!true"_s;
    QTest::newRow("not-and") << !(a && b) << u"!(a && b)"_s;
    QTest::newRow("not-or") << !(a || b) << u"!(a || b)"_s;
    QTest::newRow("and") << (a && b) << u"a && b"_s;
    QTest::newRow("or") << (a || b) << u"a || b"_s;
    QTest::newRow("example") << (leaf("renderer") && !leaf("gpu0")) << u"renderer && !gpu0"_s;
    QTest::newRow("and-left") << ((a && b) && c) << u"a && b && c"_s;
    QTest::newRow("and-right") << (a && (b && c)) << u"a && (b && c)"_s;
    QTest::newRow("or-left") << ((a || b) || c) << u"a || b || c"_s;
    QTest::newRow("or-right") << (a || (b || c)) << u"a || (b || c)"_s;
    QTest::newRow("and-right-deep") << (a && (b && (c && d))) << u"a && (b && (c && d))"_s;
    QTest::newRow("or-right-deep") << (a || (b || (c || d))) << u"a || (b || (c || d))"_s;
    QTest::newRow("or-in-and-left") << ((a || b) && c) << u"(a || b) && c"_s;
    QTest::newRow("or-in-and-right") << (a && (b || c)) << u"a && (b || c)"_s;
    QTest::newRow("and-in-or-right") << (a || (b && c)) << u"a || b && c"_s;
    QTest::newRow("and-in-or-left") << ((a && b) || c) << u"a && b || c"_s;
    QTest::newRow("nots-in-and") << (!a && !b) << u"!a && !b"_s;
    QTest::newRow("not-chain-in-and") << (a && !b && c) << u"a && !b && c"_s;
    QTest::newRow("mixed") << (!(a && b) || ((c || d) && !a)) << u"!(a && b) || (c || d) && !a"_s;
    QTest::newRow("or-of-ors-right-and") << ((a || b) || (c && d)) << u"a || b || c && d"_s;
    QTest::newRow("and-of-ors") << ((a || b) && (c || d)) << u"(a || b) && (c || d)"_s;

    // Quoting: anything that is not a plain name is a string.
    QTest::newRow("name-chars") << leaf("a.b:c/d@e+f-g_h9") << u"a.b:c/d@e+f-g_h9"_s;
    QTest::newRow("digits") << leaf("123") << u"123"_s;
    QTest::newRow("dash") << leaf("-") << u"-"_s;
    QTest::newRow("capital-true") << leaf("True") << u"True"_s;
    QTest::newRow("empty-name") << IpmbLabelOp(QString()) << u"\"\""_s;
    QTest::newRow("keyword-true") << leaf("true") << u"\"true\""_s;
    QTest::newRow("keyword-false") << leaf("false") << u"\"false\""_s;
    QTest::newRow("truex") << leaf("truex") << u"truex"_s;
    QTest::newRow("space") << leaf("with space") << u"\"with space\""_s;
    QTest::newRow("quote") << leaf("quo\"te") << u"\"quo\\\"te\""_s;
    QTest::newRow("backslash") << leaf("back\\slash") << u"\"back\\\\slash\""_s;
    QTest::newRow("operators") << leaf("a&&b") << u"\"a&&b\""_s;
    QTest::newRow("parens") << leaf("(x)") << u"\"(x)\""_s;
    QTest::newRow("bang") << leaf("!x") << u"\"!x\""_s;
    QTest::newRow("unicode") << leaf("\xc3\xbc") << u"\"ü\""_s;
    QTest::newRow("tab") << leaf("tab\there") << u"\"tab\there\""_s;
    QTest::newRow("quoted-in-expr") << (leaf("a b") && !leaf("true")) << u"\"a b\" && !\"true\""_s;
}

void tst_IpmbLabelOp::toString()
{
    QFETCH(IpmbLabelOp, op);
    QFETCH(QString, text);
    QCOMPARE(op.toString(), text);
}

void tst_IpmbLabelOp::roundTrip_data()
{
    toString_data();
}

void tst_IpmbLabelOp::roundTrip()
{
    QFETCH(IpmbLabelOp, op);
    QString error = u"stale"_s;
    const std::optional<IpmbLabelOp> parsed = IpmbLabelOp::fromString(op.toString(), &error);
    QVERIFY2(parsed, qPrintable(error));
    QVERIFY(error.isEmpty());
    QCOMPARE(*parsed, op);
    QCOMPARE(parsed->toString(), op.toString());
}

void tst_IpmbLabelOp::roundTripExhaustiveWithMinimalParentheses()
{
    // For every op up to 7 nodes: fromString(toString(op)) == op, and removing any one pair
    // of parentheses from toString(op) gives text that fails to parse or means another op,
    // so no parenthesis is redundant.
    int checked = 0;
    for (int size = 1; size <= 7; ++size) {
        for (const IpmbLabelOp &op : opsOfSize(size)) {
            const QString text = op.toString();
            QString error;
            const std::optional<IpmbLabelOp> parsed = IpmbLabelOp::fromString(text, &error);
            QVERIFY2(parsed, qPrintable(text + u": "_s + error));
            QVERIFY2(*parsed == op, qPrintable(text));

            QList<qsizetype> open;
            for (qsizetype i = 0; i < text.size(); ++i) {
                if (text.at(i) == u'(') {
                    open.append(i);
                } else if (text.at(i) == u')') {
                    const qsizetype from = open.takeLast();
                    QString without = text;
                    without.remove(i, 1);
                    without.remove(from, 1);
                    const std::optional<IpmbLabelOp> other = IpmbLabelOp::fromString(without);
                    QVERIFY2(!other || *other != op,
                             qPrintable(u"redundant parentheses in "_s + text));
                }
            }
            QVERIFY(open.isEmpty());
            ++checked;
        }
    }
    QCOMPARE(checked, 4 + 4 + 36 + 100 + 708 + 2884 + 18404);
}

void tst_IpmbLabelOp::fromString_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<IpmbLabelOp>("op");

    const IpmbLabelOp a = leaf("a");
    const IpmbLabelOp b = leaf("b");
    const IpmbLabelOp c = leaf("c");

    QTest::newRow("leaf") << u"a"_s << a;
    QTest::newRow("whitespace") << u" \t a \n"_s << a;
    QTest::newRow("no-spaces") << u"a&&b||!c"_s << ((a && b) || !c);
    QTest::newRow("spaces-everywhere") << u"( a )&&! b"_s << (a && !b);
    QTest::newRow("precedence-1") << u"a && b || c"_s << ((a && b) || c);
    QTest::newRow("precedence-2") << u"a || b && c"_s << (a || (b && c));
    QTest::newRow("left-assoc-and") << u"a && b && c"_s << ((a && b) && c);
    QTest::newRow("left-assoc-or") << u"a || b || c"_s << ((a || b) || c);
    QTest::newRow("redundant-parens") << u"((a)) && ((b))"_s << (a && b);
    QTest::newRow("parens-left") << u"(a && b) && c"_s << ((a && b) && c);
    QTest::newRow("parens-right") << u"a && (b && c)"_s << (a && (b && c));
    QTest::newRow("not-binds-tight") << u"!a && b"_s << (!a && b);
    QTest::newRow("not-parens") << u"!(a && b)"_s << !(a && b);
    QTest::newRow("not-not") << u"! ! a"_s << !!a;
    QTest::newRow("true") << u"true"_s << IpmbLabelOp::matchAll();
    QTest::newRow("false") << u"false"_s << IpmbLabelOp::matchNone();
    QTest::newRow("true-and") << u"true&&false"_s
                              << (IpmbLabelOp::matchAll() && IpmbLabelOp::matchNone());
    QTest::newRow("capital-True") << u"True"_s << leaf("True");
    QTest::newRow("keyword-prefix") << u"falsey"_s << leaf("falsey");
    QTest::newRow("quoted-keyword") << u"\"true\""_s << leaf("true");
    QTest::newRow("quoted-plain") << u"\"a\""_s << a;
    QTest::newRow("empty-string") << u"\"\""_s << IpmbLabelOp(QString());
    QTest::newRow("escapes") << u"\"a\\\\b\\\"c\""_s << leaf("a\\b\"c");
    QTest::newRow("string-keeps-spaces") << u"\" x  y \""_s << leaf(" x  y ");
    QTest::newRow("string-unicode") << u"\"grüß 𝄞\""_s << IpmbLabelOp(u"grüß 𝄞"_s);
    QTest::newRow("string-then-op") << u"\"a b\"&&c"_s << (leaf("a b") && c);
    QTest::newRow("name-chars") << u"x-1 && y.2:z/w@v+u_t"_s << (leaf("x-1") && leaf("y.2:z/w@v+u_t"));
}

void tst_IpmbLabelOp::fromString()
{
    QFETCH(QString, text);
    QFETCH(IpmbLabelOp, op);

    QString error = u"stale"_s;
    const std::optional<IpmbLabelOp> parsed = IpmbLabelOp::fromString(text, &error);
    QVERIFY2(parsed, qPrintable(error));
    QVERIFY(error.isEmpty()); // cleared on success
    QCOMPARE(*parsed, op);
    QVERIFY(IpmbLabelOp::fromString(text)); // errorString may be null
}

void tst_IpmbLabelOp::fromStringErrors_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<QString>("error");

    QTest::newRow("empty") << QString() << u"empty expression"_s;
    QTest::newRow("blank") << u" \t\n"_s << u"empty expression"_s;
    QTest::newRow("unclosed") << u"(a && b"_s
                              << u"expected ')' at position 7 to close '(' at position 0"_s;
    QTest::newRow("unclosed-inner") << u"((a) || b"_s
                                    << u"expected ')' at position 9 to close '(' at position 0"_s;
    QTest::newRow("unclosed-before-name") << u"(a b)"_s
                                          << u"expected ')' at position 3 to close '(' at position 0"_s;
    QTest::newRow("unopened") << u"a && b)"_s << u"unexpected ')' at position 6"_s;
    QTest::newRow("close-first") << u")"_s << u"unexpected ')' at position 0"_s;
    QTest::newRow("empty-parens") << u"()"_s << u"unexpected ')' at position 1"_s;
    QTest::newRow("dangling-and") << u"a &&"_s
                                  << u"expected an operand at position 4 (end of input)"_s;
    QTest::newRow("dangling-or") << u"a ||  "_s
                                 << u"expected an operand at position 6 (end of input)"_s;
    QTest::newRow("dangling-not") << u"!"_s << u"expected an operand at position 1 (end of input)"_s;
    QTest::newRow("leading-and") << u"&& a"_s << u"expected an operand at position 0"_s;
    QTest::newRow("double-operator") << u"a && || b"_s << u"expected an operand at position 5"_s;
    QTest::newRow("not-before-operator") << u"a && !|| b"_s << u"expected an operand at position 6"_s;
    QTest::newRow("single-ampersand") << u"a & b"_s << u"expected '&&' at position 2"_s;
    QTest::newRow("single-pipe") << u"a | b"_s << u"expected '||' at position 2"_s;
    QTest::newRow("missing-operator") << u"a b"_s
                                      << u"expected '&&', '||' or end of input at position 2"_s;
    QTest::newRow("missing-operator-paren") << u"a (b)"_s
                                            << u"expected '&&', '||' or end of input at position 2"_s;
    QTest::newRow("bad-escape") << u"\"a\\nb\""_s
                                << u"invalid escape sequence \\n at position 2 (only \\\" and \\\\ are allowed)"_s;
    QTest::newRow("unterminated-string") << u"a && \"abc"_s
                                         << u"unterminated string starting at position 5"_s;
    QTest::newRow("unterminated-escape") << u"\"abc\\"_s
                                         << u"unterminated string starting at position 0"_s;
    QTest::newRow("bad-character") << u"a # b"_s << u"unexpected character '#' at position 2"_s;
    QTest::newRow("unquoted-unicode") << u"ü"_s << u"unexpected character 'ü' at position 0"_s;
    QTest::newRow("control-character") << u"a\u0001"_s
                                       << u"unexpected character U+0001 at position 1"_s;
    QTest::newRow("single-quotes") << u"'a'"_s << u"unexpected character ''' at position 0"_s;
}

void tst_IpmbLabelOp::fromStringErrors()
{
    QFETCH(QString, text);
    QFETCH(QString, error);

    QString actual;
    QVERIFY(!IpmbLabelOp::fromString(text, &actual));
    QCOMPARE(actual, error);
    QVERIFY(!IpmbLabelOp::fromString(text)); // errorString may be null
}

void tst_IpmbLabelOp::fromStringLimits_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<QString>("error"); // empty: must parse

    const auto repeat = [](const QString &s, int n) { return s.repeated(n); };
    const QString depthError = u"nesting depth exceeds 64 at position %1"_s;

    // A leaf is one level; each '!', '&&', '||' adds one; 64 levels are allowed.
    QTest::newRow("63-nots") << repeat(u"!"_s, 63) + u"a"_s << QString();
    QTest::newRow("64-nots") << repeat(u"!"_s, 64) + u"a"_s << depthError.arg(63);
    QTest::newRow("10000-nots") << repeat(u"!"_s, 10000) + u"a"_s << depthError.arg(63);
    QTest::newRow("nots-over-deep-operand") << repeat(u"!"_s, 62) + u"(a && b && c)"_s
                                            << depthError.arg(0);
    QTest::newRow("64-parens") << repeat(u"("_s, 64) + u"a"_s + repeat(u")"_s, 64) << QString();
    QTest::newRow("65-parens") << repeat(u"("_s, 65) + u"a"_s + repeat(u")"_s, 65)
                               << depthError.arg(64);
    QTest::newRow("10000-parens") << repeat(u"("_s, 10000) << depthError.arg(64);
    // a && a && ... with n operands is n levels deep (left-leaning).
    QTest::newRow("and-chain-64") << repeat(u"a && "_s, 63) + u"a"_s << QString();
    QTest::newRow("and-chain-65") << repeat(u"a && "_s, 64) + u"a"_s << depthError.arg(63 * 5 + 2);
    QTest::newRow("or-chain-65") << repeat(u"a||"_s, 64) + u"a"_s << depthError.arg(63 * 3 + 1);
    QTest::newRow("nested-right-65") << repeat(u"a && ("_s, 63) + u"a && a"_s + repeat(u")"_s, 63)
                                     << depthError.arg(0 + 2);
    QTest::newRow("max-length") << QString(64 * 1024, u'a') << QString();
    QTest::newRow("too-long") << QString(64 * 1024 + 1, u'a')
                              << u"expression is 65537 characters long, more than the limit of 65536"_s;
}

void tst_IpmbLabelOp::fromStringLimits()
{
    QFETCH(QString, text);
    QFETCH(QString, error);

    QString actual;
    const std::optional<IpmbLabelOp> parsed = IpmbLabelOp::fromString(text, &actual);
    QCOMPARE(actual, error);
    QCOMPARE(bool(parsed), error.isEmpty());
    if (parsed)
        QCOMPARE(IpmbLabelOp::fromString(parsed->toString()), parsed);
}

void tst_IpmbLabelOp::deepOps()
{
    // Ops built with operators have no depth limit; matching, comparing, hashing, printing
    // and destroying them must not recurse.
    constexpr int Depth = 200000;
    const IpmbLabelOp deepNot = notChain(Depth, leaf("a"));
    QVERIFY(deepNot.matches(label({"a"}))); // even number of nots
    QVERIFY(!deepNot.matches(IpmbLabel()));
    QVERIFY(!(!deepNot).matches(label({"a"})));

    const IpmbLabelOp other = notChain(Depth, leaf("a"));
    QCOMPARE(deepNot, other);
    QCOMPARE(qHash(deepNot), qHash(other));
    QVERIFY(deepNot != notChain(Depth, leaf("b")));

    const QString text = deepNot.toString();
    QCOMPARE(text.size(), Depth + 1);
    QString error;
    QVERIFY(!IpmbLabelOp::fromString(text, &error)); // over the text limits, cleanly rejected
    QVERIFY(!error.isEmpty());

    IpmbLabelOp rightAnd = leaf("x");
    IpmbLabelOp leftOr = leaf("x");
    for (int i = 0; i < Depth; ++i) {
        rightAnd = leaf("a") && rightAnd;
        leftOr = leftOr || leaf("b");
    }
    QVERIFY(rightAnd.matches(label({"a", "x"})));
    QVERIFY(!rightAnd.matches(label({"a"})));
    QVERIFY(leftOr.matches(label({"b"})));
    QVERIFY(!leftOr.matches(label({"c"})));
    QCOMPARE(rightAnd.toString().count(u'('), Depth - 1);
    QVERIFY(rightAnd != leftOr);
    // All of these are released at the end of scope without recursion.
}

void tst_IpmbLabelOp::dataStream_data()
{
    toString_data();
}

void tst_IpmbLabelOp::dataStream()
{
    QFETCH(IpmbLabelOp, op);
    IpmbTest::checkDataStreamRoundTrip(op, leaf("stale"));
    IPMBTEST_RETURN_IF_FAILED();

    // Every truncation fails cleanly.
    QByteArray bytes;
    {
        QDataStream out(&bytes, QIODevice::WriteOnly);
        out << op << op;
    }
    for (qsizetype size = 0; size < bytes.size() / 2; ++size) {
        QDataStream truncated(bytes.left(size));
        IpmbLabelOp read = leaf("stale");
        truncated >> read;
        QVERIFY(truncated.status() != QDataStream::Ok);
        QCOMPARE(read, IpmbLabelOp());
    }
}

void tst_IpmbLabelOp::dataStreamHostile()
{
    // Unknown kind byte.
    {
        QByteArray bytes;
        QDataStream out(&bytes, QIODevice::WriteOnly);
        out << quint8(4) << quint8(2) << u"a"_s << quint8(9);
        QDataStream in(bytes);
        IpmbLabelOp op = leaf("stale");
        in >> op;
        QCOMPARE(in.status(), QDataStream::ReadCorruptData);
        QCOMPARE(op, IpmbLabelOp());
    }
    // A very deep op written to a stream reads back without recursion.
    {
        const IpmbLabelOp deep = notChain(100000, leaf("a") || IpmbLabelOp::matchNone());
        QByteArray bytes;
        QDataStream out(&bytes, QIODevice::WriteOnly);
        out << deep;
        QDataStream in(bytes);
        IpmbLabelOp op;
        in >> op;
        QCOMPARE(in.status(), QDataStream::Ok);
        QCOMPARE(op, deep);
    }
    // A stream of only operators ends without a complete op.
    {
        QDataStream in(QByteArray(100000, char(IpmbLabelOp::Kind::And)));
        IpmbLabelOp op = leaf("stale");
        in >> op;
        QCOMPARE(in.status(), QDataStream::ReadPastEnd);
        QCOMPARE(op, IpmbLabelOp());
    }
}

void tst_IpmbLabelOp::debugOutput()
{
    IpmbTest::checkDebugOutput(leaf("renderer") && !leaf("gpu0"), u"IpmbLabelOp(renderer && !gpu0)"_s);
    IPMBTEST_RETURN_IF_FAILED();
    IpmbTest::checkDebugOutput(leaf("a b") || IpmbLabelOp::matchAll(), u"IpmbLabelOp(\"a b\" || true)"_s);
}

QTEST_MAIN(tst_IpmbLabelOp)
#include "tst_ipmblabelop.moc"
