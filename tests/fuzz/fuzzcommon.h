// SPDX-License-Identifier: BSD-3-Clause
#ifndef FUZZCOMMON_H
#define FUZZCOMMON_H

// Shared by the fuzz targets (tests/fuzz/fuzz_*.cpp) and makecorpus.cpp.

#include "ipmbtesttypes.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qmetatype.h>
#include <QtCore/qvariant.h>

#include <cstdio>
#include <cstdlib>

// A user type whose QVariantMap member takes Qt's own operator>> for QVariant into the payload
// decoder's user-type path. Registered only with IPMBQT_FUZZ_QVARIANT_MEMBERS=1: Qt's readers
// then reserve() whatever count the input claims (tests/fuzz/pending/payload/README.md), which
// stops every fuzzing run within seconds.
struct FuzzBag
{
    QString name;
    QVariantMap extra;

    friend bool operator==(const FuzzBag &a, const FuzzBag &b) { return a.name == b.name && a.extra == b.extra; }
    friend QDataStream &operator<<(QDataStream &s, const FuzzBag &b) { return s << b.name << b.extra; }
    friend QDataStream &operator>>(QDataStream &s, FuzzBag &b) { return s >> b.name >> b.extra; }
};
Q_DECLARE_METATYPE(FuzzBag)

// A broken invariant: say which, and abort so that libFuzzer (or ctest) records the input.
#define FUZZ_CHECK(cond, what)                                                         \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            std::fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", what, __FILE__, __LINE__); \
            std::abort();                                                              \
        }                                                                              \
    } while (false)

// Once per process: a QCoreApplication, the test types, and quiet Qt warnings (malformed input
// makes Qt warn on every run, which would slow the fuzzer down to the speed of stderr).
inline void fuzzInitialize()
{
    static int argc = 1;
    static char name[] = "ipmbqt-fuzz";
    static char *argv[] = {name, nullptr};
    static QCoreApplication app(argc, argv);
    qRegisterMetaType<TestPoint>();
    if (qEnvironmentVariableIntValue("IPMBQT_FUZZ_QVARIANT_MEMBERS") == 1)
        qRegisterMetaType<FuzzBag>();
    qInstallMessageHandler([](QtMsgType type, const QMessageLogContext &, const QString &message) {
        if (type == QtFatalMsg) {
            std::fprintf(stderr, "qFatal: %s\n", qPrintable(message));
            std::abort();
        }
    });
}

#endif // FUZZCOMMON_H
