# SPDX-License-Identifier: BSD-3-Clause
# CPack: a Debian package of everything `cmake --install` puts in place (`./dev.sh package`,
# doc/install.md). Configure with -DCMAKE_INSTALL_PREFIX=/usr: GNUInstallDirs picks the multiarch
# libdir (lib/x86_64-linux-gnu), and with it the QML module lands in Debian's Qt QML path, only
# when the prefix is /usr at configure time.
#
# One package, `ipmbqt`, holds the library, its development files, the QML module, the tools and
# the documentation. Debian would split it (libipmbqt0, libipmbqt-dev, qml6-module-ipmbqt,
# ipmbqt-tools, ipmbqt-doc) so that an application's users get the runtime pieces alone; that
# pays off once the ABI is stable and someone ships applications built on it. At 0.x every user is
# a developer who wants all of it, and one package keeps the install rules free of components.

if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    message(STATUS "IpmbQt: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}; configure with "
                   "-DCMAKE_INSTALL_PREFIX=/usr to make a .deb with Debian's directories (./dev.sh package)")
endif()

set(IPMBQT_PACKAGE_MAINTAINER "IpmbQt maintainers <maintainers@ipmbqt.invalid>" CACHE STRING
    "The Maintainer field of the .deb")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ipmbqt)
set(CPACK_PACKAGE_VENDOR "IpmbQt")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "${IPMBQT_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# A sanitizer or fuzzer tree must never end up in a package by accident.
if(IPMBQT_SANITIZE OR IPMBQT_TSAN OR IPMBQT_BUILD_FUZZERS)
    set(CPACK_PACKAGE_NAME ipmbqt-instrumented-do-not-ship)
endif()

set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${IPMBQT_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # ipmbqt_<version>_<arch>.deb
# The long description; its synopsis line is CPACK_PACKAGE_DESCRIPTION_SUMMARY.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"Processes of a multi-process Qt application join a bus by name, describe
themselves with a label and send typed messages (QVariant) to whoever matches
a selector; messages arrive as Qt signals, and shared memory and file
descriptors travel with them. No daemon: the first process becomes the router.
This package holds the library and its headers, CMake package and pkg-config
file, the QML module (import IpmbQt), the ipmbqt command and the Qt Help (.qch)
reference.")
# Runtime libraries from dpkg-shlibdeps (needs dpkg-dev); a shlibs file and the ldconfig trigger
# for libIpmbQt.so.0.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# What building against it needs: the installed IpmbQtConfig.cmake finds Qt6 Core (and Gui, Qml,
# Quick with the QML module), ipmbqt.pc requires Qt6Core; `import IpmbQt` depends on QtQuick;
# ipmbqt-inspector runs on Qt Quick Controls and Layouts.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "qt6-base-dev (>= 6.4)")
if(IPMBQT_BUILD_QML)
    string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", qt6-declarative-dev (>= 6.4), qml6-module-qtquick, "
                  "qml6-module-qtquick-controls, qml6-module-qtquick-layouts, qml6-module-qtquick-templates, "
                  "qml6-module-qtquick-window, qml6-module-qtqml-workerscript")
endif()
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "qtcreator")

# `cmake --build <dir> --target package_source`: the sources without build trees.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/\\\\.cache/")

include(CPack)
