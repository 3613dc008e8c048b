// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQTGLOBAL_H
#define IPMBQTGLOBAL_H

#include <QtCore/qglobal.h>

#include "ipmbqt_export.h"

// IPMBQT_VERSION_STR and IPMBQT_VERSION (for QT_VERSION_CHECK comparisons), written by CMake from
// the project's version.
#include "ipmbqtversion.h"

// Private classes are exported only for the auto tests (the qtbase Q_AUTOTEST_EXPORT idiom).
#if defined(IPMBQT_BUILD_TESTS)
#  define IPMBQT_AUTOTEST_EXPORT IPMBQT_EXPORT
#else
#  define IPMBQT_AUTOTEST_EXPORT
#endif

#endif // IPMBQTGLOBAL_H
