#!/usr/bin/env bash
# Developer entry point. On a fresh Debian 12 machine:
#   ./dev.sh demo    install what is missing, build, run the demo
#   ./dev.sh test    install what is missing, build, run every test with ctest
#   ./dev.sh asan    the same tests in an AddressSanitizer/UBSan build (build-asan/)
#   ./dev.sh build   install what is missing and build only
#   ./dev.sh bench [--quick]   build (RelWithDebInfo) and run the benchmarks, see doc/performance.md
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(cmake ninja-build g++ qt6-base-dev util-linux qt6-remoteobjects-dev)
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-2}

log() { printf '\033[1m== %s\033[0m\n' "$*"; }

install_missing() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
    local dir=$1; shift
    install_missing
    log "configuring $dir"
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
    log "building $dir"
    cmake --build "$dir" -j"$JOBS"
}

run_tests() {
    local dir=$1
    log "testing $dir"
    # Tests start helper processes; give each its own bounded time (see tests/CMakeLists.txt).
    ctest --test-dir "$dir" --output-on-failure -j"$JOBS"
}

case "${1:-}" in
    build) build "$BUILD_DIR" ;;
    test)  build "$BUILD_DIR"; run_tests "$BUILD_DIR" ;;
    asan)  BUILD_TYPE=Debug build build-asan -DIPMBQT_SANITIZE=ON; run_tests build-asan ;;
    demo)  build "$BUILD_DIR"; log "running the demo"; "$BUILD_DIR/examples/solar/solar" ;;
    bench) shift
           BUILD_TYPE=RelWithDebInfo build "$BUILD_DIR" -DIPMBQT_BUILD_BENCHMARKS=ON
           log "benchmarking; results go to $BUILD_DIR/bench/results.json"
           "$BUILD_DIR/tests/benchmarks/ipmbqt_bench" --output "$BUILD_DIR/bench/results.json" "$@" ;;
    *) echo "usage: $0 demo|test|asan|build|bench [--quick]" >&2; exit 2 ;;
esac
