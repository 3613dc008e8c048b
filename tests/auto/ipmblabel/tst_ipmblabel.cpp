// SPDX-License-Identifier: BSD-3-Clause
#include <IpmbQt/ipmblabel.h>

#include "ipmbtestvalue.h"

#include <QtCore/qbuffer.h>
#include <QtCore/qdatastream.h>
#include <QtCore/qdebug.h>
#include <QtCore/qhash.h>
#include <QtCore/qset.h>
#include <QtCore/qvariant.h>
#include <QtTest/qtest.h>

using namespace Qt::StringLiterals;

// Lets QCOMPARE print labels on failure.
char *toString(const IpmbLabel &label)
{
    QString text;
    QDebug(&text).nospace() << label;
    return qstrdup(text.toUtf8().constData());
}

class tst_IpmbLabel : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void defaultConstructed();
    void construct_data();
    void construct();
    void initializerList();
    void insertAndRemove_data();
    void insertAndRemove();
    void contains_data();
    void contains();
    void valueSemantics();
    void copyAndDetach();
    void equality_data();
    void equality();
    void hashContainers();
    void dataStream_data();
    void dataStream();
    void dataStreamTruncated();
    void debugOutput_data();
    void debugOutput();
};

void tst_IpmbLabel::defaultConstructed()
{
    const IpmbLabel label;
    QVERIFY(label.isEmpty());
    QCOMPARE(label.size(), 0);
    QVERIFY(label.toStringList().isEmpty());
    QVERIFY(!label.contains(QString()));
    QCOMPARE(label, IpmbLabel());
    QCOMPARE(label, IpmbLabel(QStringList()));
    QCOMPARE(label, IpmbLabel({}));
}

void tst_IpmbLabel::construct_data()
{
    QTest::addColumn<QStringList>("names");
    QTest::addColumn<QStringList>("expected"); // sorted, unique

    QTest::newRow("empty") << QStringList() << QStringList();
    QTest::newRow("one") << QStringList{u"renderer"_s} << QStringList{u"renderer"_s};
    QTest::newRow("sorted") << QStringList{u"a"_s, u"b"_s, u"c"_s}
                            << QStringList{u"a"_s, u"b"_s, u"c"_s};
    QTest::newRow("unsorted") << QStringList{u"renderer"_s, u"gpu0"_s, u"earth"_s}
                              << QStringList{u"earth"_s, u"gpu0"_s, u"renderer"_s};
    QTest::newRow("duplicates") << QStringList{u"b"_s, u"a"_s, u"b"_s, u"a"_s, u"b"_s}
                                << QStringList{u"a"_s, u"b"_s};
    QTest::newRow("case-sensitive") << QStringList{u"a"_s, u"A"_s, u"a"_s}
                                    << QStringList{u"A"_s, u"a"_s};
    QTest::newRow("empty-name") << QStringList{u"x"_s, QString(), u""_s}
                                << QStringList{QString(), u"x"_s};
    QTest::newRow("unicode") << QStringList{u"ü"_s, u"z"_s, u"ä"_s, u"𝄞"_s, u"\uFFFD"_s}
                             << QStringList{u"z"_s, u"ä"_s, u"ü"_s, u"𝄞"_s, u"\uFFFD"_s};
    QTest::newRow("spaces-and-quotes") << QStringList{u"with space"_s, u"quo\"te"_s}
                                       << QStringList{u"quo\"te"_s, u"with space"_s};
}

void tst_IpmbLabel::construct()
{
    QFETCH(QStringList, names);
    QFETCH(QStringList, expected);

    const IpmbLabel label(names);
    QCOMPARE(label.toStringList(), expected);
    QCOMPARE(label.size(), expected.size());
    QCOMPARE(label.isEmpty(), expected.isEmpty());
    for (const QString &name : names)
        QVERIFY(label.contains(name));

    // Inserting one by one, in any order, gives the same label.
    IpmbLabel inserted;
    for (auto it = names.crbegin(); it != names.crend(); ++it)
        inserted.insert(*it);
    QCOMPARE(inserted, label);
    QCOMPARE(inserted.toStringList(), expected);
}

void tst_IpmbLabel::initializerList()
{
    const IpmbLabel label{u"renderer"_s, u"gpu0"_s, u"renderer"_s};
    QCOMPARE(label.size(), 2);
    QCOMPARE(label.toStringList(), (QStringList{u"gpu0"_s, u"renderer"_s}));
    QCOMPARE(label, IpmbLabel(QStringList{u"gpu0"_s, u"renderer"_s}));
}

void tst_IpmbLabel::insertAndRemove_data()
{
    QTest::addColumn<QStringList>("initial");
    QTest::addColumn<QStringList>("operations"); // "+name" inserts, "-name" removes
    QTest::addColumn<QStringList>("expected");

    QTest::newRow("insert-into-empty") << QStringList() << QStringList{u"+a"_s}
                                       << QStringList{u"a"_s};
    QTest::newRow("insert-keeps-order") << QStringList{u"b"_s, u"d"_s}
                                        << QStringList{u"+c"_s, u"+a"_s, u"+e"_s}
                                        << QStringList{u"a"_s, u"b"_s, u"c"_s, u"d"_s, u"e"_s};
    QTest::newRow("insert-duplicate") << QStringList{u"a"_s} << QStringList{u"+a"_s, u"+a"_s}
                                      << QStringList{u"a"_s};
    QTest::newRow("remove") << QStringList{u"a"_s, u"b"_s, u"c"_s} << QStringList{u"-b"_s}
                            << QStringList{u"a"_s, u"c"_s};
    QTest::newRow("remove-missing") << QStringList{u"a"_s} << QStringList{u"-z"_s, u"-"_s}
                                    << QStringList{u"a"_s};
    QTest::newRow("remove-all") << QStringList{u"a"_s, u"b"_s}
                                << QStringList{u"-a"_s, u"-b"_s, u"-a"_s} << QStringList();
    QTest::newRow("remove-then-insert") << QStringList{u"a"_s}
                                        << QStringList{u"-a"_s, u"+a"_s, u"+"_s}
                                        << QStringList{QString(), u"a"_s};
}

void tst_IpmbLabel::insertAndRemove()
{
    QFETCH(QStringList, initial);
    QFETCH(QStringList, operations);
    QFETCH(QStringList, expected);

    IpmbLabel label(initial);
    for (const QString &operation : operations) {
        const QString name = operation.mid(1);
        if (operation.startsWith(u'+')) {
            label.insert(name);
            QVERIFY(label.contains(name));
        } else {
            label.remove(name);
            QVERIFY(!label.contains(name));
        }
    }
    QCOMPARE(label.toStringList(), expected);
    QCOMPARE(label, IpmbLabel(expected));
}

void tst_IpmbLabel::contains_data()
{
    QTest::addColumn<IpmbLabel>("label");
    QTest::addColumn<QString>("name");
    QTest::addColumn<bool>("expected");

    const IpmbLabel label{u"earth"_s, u"gpu0"_s, u"renderer"_s, u"ü"_s, QString()};
    QTest::newRow("first") << label << u"earth"_s << true;
    QTest::newRow("middle") << label << u"gpu0"_s << true;
    QTest::newRow("last") << label << u"ü"_s << true;
    QTest::newRow("empty-name") << label << u""_s << true;
    QTest::newRow("missing") << label << u"gpu1"_s << false;
    QTest::newRow("prefix") << label << u"gpu"_s << false;
    QTest::newRow("case") << label << u"Earth"_s << false;
    QTest::newRow("before-all") << label << u"a"_s << false;
    QTest::newRow("after-all") << label << u"\uFFFF"_s << false;
    QTest::newRow("empty-label") << IpmbLabel() << u"earth"_s << false;
}

void tst_IpmbLabel::contains()
{
    QFETCH(IpmbLabel, label);
    QFETCH(QString, name);
    QFETCH(bool, expected);
    QCOMPARE(label.contains(name), expected);
}

void tst_IpmbLabel::valueSemantics()
{
    IpmbTest::checkValueSemantics(IpmbLabel{u"a"_s, u"b"_s}, IpmbLabel{u"b"_s, u"c"_s},
                                  [](IpmbLabel &label) { label.insert(u"c"_s); });
    IPMBTEST_RETURN_IF_FAILED();
    IpmbTest::checkWrite(IpmbLabel{u"a"_s, u"b"_s}, [](IpmbLabel &label) { label.remove(u"a"_s); });
    IPMBTEST_RETURN_IF_FAILED();
    // Default-constructed labels share storage too, and detach on first insert.
    IpmbTest::checkWrite(IpmbLabel(), [](IpmbLabel &label) { label.insert(u"x"_s); });
}

void tst_IpmbLabel::copyAndDetach()
{
    IpmbLabel original{u"a"_s, u"b"_s};
    IpmbLabel copy = original;
    // Implicitly shared: the copy uses the same list until one side changes.
    QCOMPARE(copy.toStringList().constData(), original.toStringList().constData());

    // Inserting a name that is already there, or removing a missing one, does not detach.
    copy.insert(u"a"_s);
    copy.remove(u"zzz"_s);
    QCOMPARE(copy.toStringList().constData(), original.toStringList().constData());

    copy.insert(u"c"_s);
    QCOMPARE(copy.toStringList(), (QStringList{u"a"_s, u"b"_s, u"c"_s}));
    QCOMPARE(original.toStringList(), (QStringList{u"a"_s, u"b"_s}));
}

void tst_IpmbLabel::equality_data()
{
    QTest::addColumn<IpmbLabel>("lhs");
    QTest::addColumn<IpmbLabel>("rhs");
    QTest::addColumn<bool>("equal");

    QTest::newRow("empty") << IpmbLabel() << IpmbLabel(QStringList()) << true;
    QTest::newRow("same") << IpmbLabel{u"a"_s, u"b"_s} << IpmbLabel{u"a"_s, u"b"_s} << true;
    QTest::newRow("order-ignored") << IpmbLabel{u"a"_s, u"b"_s} << IpmbLabel{u"b"_s, u"a"_s}
                                   << true;
    QTest::newRow("duplicates-ignored") << IpmbLabel{u"a"_s, u"a"_s, u"b"_s}
                                        << IpmbLabel{u"b"_s, u"a"_s} << true;
    QTest::newRow("null-vs-empty-name") << IpmbLabel{QString()} << IpmbLabel{u""_s} << true;
    QTest::newRow("subset") << IpmbLabel{u"a"_s} << IpmbLabel{u"a"_s, u"b"_s} << false;
    QTest::newRow("different") << IpmbLabel{u"a"_s} << IpmbLabel{u"b"_s} << false;
    QTest::newRow("case") << IpmbLabel{u"a"_s} << IpmbLabel{u"A"_s} << false;
    QTest::newRow("empty-vs-empty-name") << IpmbLabel() << IpmbLabel{QString()} << false;
}

void tst_IpmbLabel::equality()
{
    QFETCH(IpmbLabel, lhs);
    QFETCH(IpmbLabel, rhs);
    QFETCH(bool, equal);
    IpmbTest::checkEquality(lhs, rhs, equal);
}

void tst_IpmbLabel::hashContainers()
{
    QSet<IpmbLabel> set;
    set.insert(IpmbLabel{u"a"_s, u"b"_s});
    set.insert(IpmbLabel{u"b"_s, u"a"_s});
    set.insert(IpmbLabel{u"a"_s, u"b"_s, u"a"_s});
    QCOMPARE(set.size(), 1);
    set.insert(IpmbLabel{u"a"_s});
    set.insert(IpmbLabel());
    QCOMPARE(set.size(), 3);
    QVERIFY(set.contains(IpmbLabel(QStringList{u"b"_s, u"a"_s})));

    QHash<IpmbLabel, int> hash;
    hash[IpmbLabel{u"x"_s}] = 1;
    hash[IpmbLabel{u"x"_s, u"x"_s}] += 1;
    QCOMPARE(hash.value(IpmbLabel{u"x"_s}), 2);
}

void tst_IpmbLabel::dataStream_data()
{
    QTest::addColumn<IpmbLabel>("label");

    QTest::newRow("empty") << IpmbLabel();
    QTest::newRow("one") << IpmbLabel{u"renderer"_s};
    QTest::newRow("several") << IpmbLabel{u"renderer"_s, u"gpu0"_s, u"earth"_s};
    QTest::newRow("empty-name") << IpmbLabel{QString()};
    QTest::newRow("unicode") << IpmbLabel{u"ü"_s, u"𝄞"_s, u"\uFEFFbom"_s, u"nul\0in"_s};
}

void tst_IpmbLabel::dataStream()
{
    QFETCH(IpmbLabel, label);
    IpmbTest::checkDataStreamRoundTrip(label, IpmbLabel{u"garbage"_s});
    IPMBTEST_RETURN_IF_FAILED();

    // The stream form is a sorted QStringList.
    QByteArray bytes;
    {
        QDataStream out(&bytes, QIODevice::WriteOnly);
        out << label;
    }
    QDataStream asList(bytes);
    QStringList names;
    asList >> names;
    QCOMPARE(names, label.toStringList());
    QVERIFY(asList.atEnd());
}

void tst_IpmbLabel::dataStreamTruncated()
{
    QByteArray bytes;
    {
        QDataStream out(&bytes, QIODevice::WriteOnly);
        out << IpmbLabel{u"renderer"_s, u"gpu0"_s};
    }
    for (qsizetype size = 0; size < bytes.size(); ++size) {
        QDataStream in(bytes.left(size));
        IpmbLabel label{u"previous"_s};
        in >> label;
        QVERIFY2(in.status() != QDataStream::Ok, qPrintable(QString::number(size)));
        QVERIFY(label.isEmpty());
    }
}

void tst_IpmbLabel::debugOutput_data()
{
    QTest::addColumn<IpmbLabel>("label");
    QTest::addColumn<QString>("expected");

    QTest::newRow("empty") << IpmbLabel() << u"IpmbLabel()"_s;
    QTest::newRow("one") << IpmbLabel{u"renderer"_s} << u"IpmbLabel(\"renderer\")"_s;
    QTest::newRow("sorted") << IpmbLabel{u"renderer"_s, u"gpu0"_s}
                            << u"IpmbLabel(\"gpu0\", \"renderer\")"_s;
    QTest::newRow("escaped") << IpmbLabel{u"say \"hi\""_s}
                             << u"IpmbLabel(\"say \\\"hi\\\"\")"_s;
}

void tst_IpmbLabel::debugOutput()
{
    QFETCH(IpmbLabel, label);
    QFETCH(QString, expected);
    IpmbTest::checkDebugOutput(label, expected);
}

QTEST_MAIN(tst_IpmbLabel)
#include "tst_ipmblabel.moc"
