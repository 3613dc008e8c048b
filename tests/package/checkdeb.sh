#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tests/package/checkdeb.sh DEB WORK_DIR   (run by `./dev.sh package`)
# Unpacks the .deb with `dpkg -x` into WORK_DIR/root (no root rights, no container), checks its
# control fields and that every installed piece is in Debian's place, then uses the root as a
# user would: an example built alone with find_package(IpmbQt), a one-file program built with
# pkg-config, `import IpmbQt` from the root's QML directory, and the `ipmbqt` command.
set -euo pipefail
deb=$(realpath "$1")
work=$2
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")
root=$work/root

fail() { echo "checkdeb: $*" >&2; exit 1; }
step() { printf '\033[1m-- %s\033[0m\n' "$*"; }

step "control fields ($deb)"
dpkg-deb --info "$deb"
field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = ipmbqt ] || fail "Package is '$(field Package)'"
version=$(field Version)
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || fail "Version is '$version'"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is '$(field Architecture)'"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
[ -n "$(field Section)" ] || fail "no Section"
depends=$(field Depends)
for dep in libqt6core6 libc6 qt6-base-dev; do   # the first two from dpkg-shlibdeps
    [[ $depends == *"$dep"* ]] || fail "Depends lacks $dep: $depends"
done
# (No `| grep -q` in this script: grep leaves at the first match, the writer gets SIGPIPE, and
# pipefail turns a match into a failure.)
control_files=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)
[[ $'\n'$control_files$'\n' == *$'\n./shlibs\n'* ]] || fail "no shlibs control file: $control_files"
shlibs=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./shlibs)
[[ $shlibs == "libIpmbQt 0 ipmbqt"* ]] || fail "shlibs: $shlibs"

step "files"
dpkg -x "$deb" "$root"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=usr/lib/$multiarch
qmldir=$(qtpaths6 --query QT_INSTALL_QML)        # where Debian's Qt looks for `import IpmbQt`
docdir=$(qtpaths6 --query QT_INSTALL_DOCS)       # where Qt Creator looks for .qch files
soversion=${version%%.*}
expected=(
    "$libdir/libIpmbQt.so.$version"
    "$libdir/libIpmbQtQml.so.$version"
    "$libdir/cmake/IpmbQt/IpmbQtConfig.cmake"
    "$libdir/cmake/IpmbQt/IpmbQtConfigVersion.cmake"
    "$libdir/cmake/IpmbQt/IpmbQtTargets.cmake"
    "$libdir/pkgconfig/ipmbqt.pc"
    "${qmldir#/}/IpmbQt/qmldir"
    "${qmldir#/}/IpmbQt/IpmbQtQml.qmltypes"
    "${qmldir#/}/IpmbQt/libIpmbQtQmlplugin.so"
    usr/include/IpmbQt/IpmbEndpoint
    usr/include/IpmbQt/ipmbendpoint.h
    usr/include/IpmbQt/ipmbqtglobal.h
    usr/include/IpmbQt/ipmbqt_export.h
    usr/include/IpmbQt/ipmbqtversion.h
    usr/bin/ipmbqt
    usr/bin/ipmbqt-inspector
    "${docdir#/}/ipmbqt.qch"
    "${docdir#/}/ipmbqt/index.html"
    usr/share/doc/ipmbqt/README.md
)
for f in "${expected[@]}"; do
    [ -f "$root/$f" ] && [ ! -L "$root/$f" ] || fail "missing: /$f"
done
for lib in IpmbQt IpmbQtQml; do
    [ "$(readlink "$root/$libdir/lib$lib.so.$soversion")" = "lib$lib.so.$version" ] || fail "lib$lib.so.$soversion is not a link to lib$lib.so.$version"
    [ "$(readlink "$root/$libdir/lib$lib.so")" = "lib$lib.so.$soversion" ] || fail "lib$lib.so is not a link to lib$lib.so.$soversion"
done
dynamic=$(readelf -d "$root/$libdir/libIpmbQt.so.$version")
[[ $dynamic == *"Library soname: [libIpmbQt.so.$soversion]"* ]] || fail "SONAME of libIpmbQt is not libIpmbQt.so.$soversion"
leftovers=$(cd "$root" && find . -path '*/build*' -o -name '*.qhp' -o -name '*.qhp.sha1' -o -name '*.a' -o -name '*_autogen*')
[ -z "$leftovers" ] || fail "build leftovers in the package: $leftovers"

step "find_package(IpmbQt) from $root/usr: examples/shared-frames built alone"
cmake -S "$source_dir/examples/shared-frames" -B "$work/example" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$root/usr" >"$work/example-configure.log" \
    || { cat "$work/example-configure.log"; fail "configuring the example"; }
found=$(sed -n 's/^IpmbQt_DIR:PATH=//p' "$work/example/CMakeCache.txt")
[ "$found" = "$root/$libdir/cmake/IpmbQt" ] || fail "find_package(IpmbQt) found '$found'"
cmake --build "$work/example" -j"${JOBS:-2}" >"$work/example-build.log" \
    || { cat "$work/example-build.log"; fail "building the example"; }
LD_LIBRARY_PATH=$root/$libdir QT_QPA_PLATFORM=offscreen "$work/example/shared-frames-producer" --help >/dev/null \
    || fail "shared-frames-producer --help"
loaded=$(LD_LIBRARY_PATH=$root/$libdir ldd "$work/example/shared-frames-producer")
[[ $loaded == *"libIpmbQt.so.$soversion => $root/"* ]] || fail "the example does not load the package's library: $loaded"

step "pkg-config: a one-file program"
export PKG_CONFIG_PATH=$root/$libdir/pkgconfig
[ "$(pkg-config --modversion ipmbqt)" = "$version" ] || fail "pkg-config --modversion ipmbqt"
flags=$(pkg-config --cflags --libs ipmbqt)
echo "$flags"
# shellcheck disable=SC2086 # the flags are words
g++ -o "$work/pkgconfig_main" "$source_dir/tests/auto/install/pkgconfig_main.cpp" $flags
out=$(LD_LIBRARY_PATH=$root/$libdir "$work/pkgconfig_main" "ipmbqt.checkdeb.$$.$RANDOM")
echo "$out"
[[ $out == *"received hello"* ]] || fail "the pkg-config program printed: $out"

step "import IpmbQt from ${qmldir} in the root (the plugin finds its libraries by RUNPATH)"
# shellcheck disable=SC2046
g++ -o "$work/qmlcheck" "$source_dir/tests/auto/install/qmlcheck.cpp" -fPIC $(pkg-config --cflags --libs Qt6Gui Qt6Qml)
QML_IMPORT_PATH=$root$qmldir QT_QPA_PLATFORM=offscreen \
    "$work/qmlcheck" "$source_dir/tests/auto/install/installed.qml" "checkdeb.$$.$RANDOM" \
    || fail "import IpmbQt from the root"

step "$root/usr/bin/ipmbqt --help"
help=$(LD_LIBRARY_PATH=$root/$libdir "$root/usr/bin/ipmbqt" --help 2>&1) || fail "ipmbqt --help: $help"
[[ $help == *ipmbqt* ]] || fail "ipmbqt --help printed: $help"
echo "${help%%$'\n'*}"

step "installed files ($(basename "$deb"))"
dpkg-deb --contents "$deb" | awk '{ $1=$2=$3=$4=$5=""; sub(/^ +/, ""); print }' \
    | grep -v '/$' | grep -v "^\.$docdir/ipmbqt/" | sed 's|^\./|/|'
echo "(and $(dpkg-deb --contents "$deb" | grep -c "\.$docdir/ipmbqt/.*[^/]$") files of the HTML reference under $docdir/ipmbqt/)"
echo "checkdeb: ok"
