#!/usr/bin/env bash
# Developer entry point. On a fresh Debian 12 machine:
#   ./dev.sh demo    install what is missing, build, run the demo
#   ./dev.sh test    install what is missing, build, run every test with ctest
#   ./dev.sh asan    the same tests in an AddressSanitizer/UBSan build (build-asan/)
#   ./dev.sh tsan    the same tests in a ThreadSanitizer build (build-tsan/, Qt false positives: tests/tsan.supp)
#   ./dev.sh build   install what is missing and build only
#   ./dev.sh bench [--quick]   build (RelWithDebInfo) and run the benchmarks, see doc/performance.md
#   ./dev.sh fuzz [seconds]    run each libFuzzer target (tests/fuzz) that long, default 60 (build-fuzz/, clang)
#   ./dev.sh soak [minutes]    build, then 6 processes of mixed traffic, a controller kill a minute, RSS/fds sampled (default 10)
#   ./dev.sh docs    the API reference with qdoc (build-docs/doc/html, build-docs/doc/ipmbqt.qch); fails on any qdoc warning
#   ./dev.sh package a Release .deb with the docs (build-package/ipmbqt_<version>_<arch>.deb), then
#                    tests/package/checkdeb.sh unpacks it and builds and runs programs against it
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(cmake ninja-build g++ qt6-base-dev util-linux qt6-remoteobjects-dev
          # Qt Quick: the QML module, its tests (qml6-module-qttest) and the examples with windows
          qt6-declarative-dev qt6-declarative-dev-tools qml6-module-qtquick qml6-module-qtquick-window
          qml6-module-qtquick-controls qml6-module-qtquick-templates qml6-module-qtquick-layouts
          qml6-module-qtqml qml6-module-qtqml-models qml6-module-qtqml-workerscript qml6-module-qttest
          # `ipmbqt bridge` (libmosquitto) and its test (a broker on loopback)
          libmosquitto-dev mosquitto
          # install_check builds a one-file program with `pkg-config --cflags --libs ipmbqt`
          # (Debian 12: pkgconf provides the pkg-config command)
          pkgconf)
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

# ./dev.sh fuzz: clang with libFuzzer, ASan and UBSan (not needed by the other commands).
FUZZ_PACKAGES=(clang libclang-rt-14-dev)
FUZZ_TARGETS=(frame selector labelop payload)

# Runs each fuzz target for $1 seconds over a working copy of its seed corpus (build-fuzz/corpus);
# fails if any of them crashes, and says where the crashing input is.
fuzz() {
    local seconds=${1:-60} dir=build-fuzz failed=0 t
    PACKAGES+=("${FUZZ_PACKAGES[@]}")
    install_missing
    log "configuring $dir (clang, libFuzzer, ASan, UBSan)"
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
          -DIPMBQT_BUILD_FUZZERS=ON -DIPMBQT_BUILD_EXAMPLES=OFF >/dev/null
    log "building the fuzz targets"
    cmake --build "$dir" -j"$JOBS" --target "${FUZZ_TARGETS[@]/#/fuzz_}"
    local summary
    summary=$(printf '%-9s %12s %7s %7s  %s' target executions cov ft crashes)
    for t in "${FUZZ_TARGETS[@]}"; do
        local corpus=$dir/corpus/$t artifacts=$dir/crashes/$t/ out=$dir/fuzz-$t.log rc=0 dirs
        mkdir -p "$corpus" "$artifacts"
        cp -n tests/fuzz/corpus/$t/* "$corpus"/
        dirs=("$corpus") # new inputs go to the first
        [ -d tests/fuzz/regressions/$t ] && dirs+=(tests/fuzz/regressions/$t)
        log "fuzzing $t for ${seconds}s (log: $out)"
        # Low memory limits: an allocation sized by an unchecked count is a failure, not a slow run.
        # ASan keeps the allocation stack of every malloc in a depot that never shrinks, and the
        # recursive decoders make a new stack at every depth: at 30 frames fuzz_selector reached the
        # 512 MiB RSS limit after two million runs with 24 MiB live (4 frames: 127 MiB flat). Its
        # 256 MiB quarantine is cut for the same reason. Neither hides a leak or a large allocation.
        ASAN_OPTIONS="malloc_context_size=4:quarantine_size_mb=32:${ASAN_OPTIONS:-}" \
        "$dir/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=256 \
            -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts" \
            "${dirs[@]}" >"$out" 2>&1 || rc=$?
        local execs cov ft crash=0
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n1)
        cov=$(grep -o 'cov: [0-9]*' "$out" | tail -n1 | cut -d' ' -f2)
        ft=$(grep -o 'ft: [0-9]*' "$out" | tail -n1 | cut -d' ' -f2)
        if [ "$rc" -ne 0 ]; then
            crash=1 failed=1
            tail -n 60 "$out" >&2
            grep 'Test unit written to' "$out" >&2 || echo "$t: exit code $rc, no input written" >&2
        fi
        summary+=$(printf '\n%-9s %12s %7s %7s  %s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$crash")
    done
    log "fuzzing summary (${seconds}s per target)"
    echo "$summary"
    [ "$failed" -eq 0 ] || { echo "a fuzz target crashed: add the input to tests/fuzz/regressions/<target>/" >&2; return 1; }
}

# ./dev.sh docs: qdoc and qhelpgenerator (qt6-documentation-tools; qdoc parses C++ with libclang),
# cmark-gfm for the guides of doc/*.md (not needed by the other commands).
DOCS_PACKAGES=(qt6-documentation-tools cmark-gfm)

# The docs need no build of the library, only a configured tree (generated headers, include
# paths) and the small doctool; the docs target fails on any qdoc warning and on any public
# symbol without documentation (doc/reference/CMakeLists.txt).
docs() {
    local dir=build-docs
    PACKAGES+=("${DOCS_PACKAGES[@]}")
    install_missing
    log "configuring $dir (IPMBQT_BUILD_DOCS=ON)"
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} \
          -DIPMBQT_BUILD_DOCS=ON -DIPMBQT_BUILD_TESTS=OFF -DIPMBQT_BUILD_EXAMPLES=OFF >/dev/null
    log "building the API reference"
    cmake --build "$dir" -j"$JOBS" --target docs
    log "HTML: $dir/doc/html/index.html"
    log "Qt Help: $dir/doc/ipmbqt.qch (Qt Creator: Preferences > Help > Documentation > Add)"
}

# ./dev.sh package: dpkg-shlibdeps (dpkg-dev) fills the package's Depends; the docs' tools put the
# .qch in it.
PACKAGE_PACKAGES=(dpkg-dev)

# A Release tree configured for /usr (GNUInstallDirs then picks Debian's multiarch libdir, which
# puts the QML module in Qt's QML path), with the API reference built before CPack installs it.
package() {
    local dir=build-package started=$SECONDS
    PACKAGES+=("${DOCS_PACKAGES[@]}" "${PACKAGE_PACKAGES[@]}")
    install_missing
    log "configuring $dir (Release, prefix /usr, IPMBQT_BUILD_DOCS=ON, no tests or examples)"
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
          -DIPMBQT_BUILD_DOCS=ON -DIPMBQT_BUILD_TESTS=OFF -DIPMBQT_BUILD_EXAMPLES=OFF >/dev/null
    log "building $dir"
    cmake --build "$dir" -j"$JOBS"
    log "building the API reference"
    cmake --build "$dir" -j"$JOBS" --target docs
    log "making the .deb"
    rm -f "$dir"/*.deb
    (cd "$dir" && cpack -G DEB)
    local debs=("$dir"/*.deb)
    [ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || { echo "expected one .deb in $dir" >&2; return 1; }
    log "checking ${debs[0]} (tests/package/checkdeb.sh)"
    tests/package/checkdeb.sh "${debs[0]}" "$dir/checkdeb"
    log "${debs[0]}: built and checked in $((SECONDS - started)) s"
}

run_tests() {
    local dir=$1; shift
    log "testing $dir"
    # Tests start helper processes; give each its own bounded time (see tests/CMakeLists.txt).
    ctest --test-dir "$dir" --output-on-failure -j"$JOBS" "$@"
}

case "${1:-}" in
    build) build "$BUILD_DIR" ;;
    test)  build "$BUILD_DIR"; run_tests "$BUILD_DIR" ;;
    asan)  BUILD_TYPE=Debug build build-asan -DIPMBQT_SANITIZE=ON; run_tests build-asan ;;
    tsan)  BUILD_TYPE=RelWithDebInfo build build-tsan -DIPMBQT_TSAN=ON -DIPMBQT_BUILD_EXAMPLES=ON
           # Any report fails its test; helper processes inherit TSAN_OPTIONS from the environment.
           # Not the Qt Quick processes (tst_qml, tst_chat, tst_sharedframes, tst_workerpool, install_check): Qt Qml,
           # Quick and Gui start threads of their own (QQmlThread, thread pools) whose locks are
           # inside Debian's uninstrumented libraries, and every one of them reports. Those tests
           # add no thread of ours that the others do not already run under TSan.
           # Not tst_requests either: its futures' continuations and its QtConcurrent tasks are
           # handed between threads under mutexes inside libQt6Core, which TSan cannot see, and it
           # reports Qt's own QFuture and QThreadPool code. Its bus paths (a reply read by the I/O
           # thread and handed to a promise) run under ASan and in the plain build.
           # max_allocation_size_mb: a hostile payload of a careless user type (tst_ipmbpayloadcodec's
           # TestGadget reads a QList<double>, which Qt reserves from its count) asks for GiBs that
           # the codec's allocation-failure path handles; TSan would grant them, and freeing
           # 7 GiB under TSan took minutes. Refused here, as on a machine without that much memory.
           # die_after_fork=0: tests that hold a joined endpoint (its threads) start helpers with
           # QProcess, whose child only calls exec(); TSan would kill that child.
           TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1 exitcode=66 second_deadlock_stack=1 history_size=4 allocator_may_return_null=1 max_allocation_size_mb=1024 die_after_fork=0 ${TSAN_OPTIONS:-}" \
               run_tests build-tsan -E '^(tst_qml|tst_chat|tst_sharedframes|tst_workerpool|tst_requests|install_check)$' ;;
    demo)  build "$BUILD_DIR"; log "running the demo"; "$BUILD_DIR/examples/solar/solar" ;;
    bench) shift
           BUILD_TYPE=RelWithDebInfo build "$BUILD_DIR" -DIPMBQT_BUILD_BENCHMARKS=ON
           log "benchmarking; results go to $BUILD_DIR/bench/results.json"
           "$BUILD_DIR/tests/benchmarks/ipmbqt_bench" --output "$BUILD_DIR/bench/results.json" "$@" ;;
    fuzz)  fuzz "${2:-60}" ;;
    docs)  docs ;;
    package) package ;;
    soak)  build "$BUILD_DIR"
           log "soak run, ${2:-10} minutes; results go to $BUILD_DIR/soak/results.json"
           "$BUILD_DIR/tests/soak/ipmbqt_soak" --minutes "${2:-10}" --output "$BUILD_DIR/soak/results.json" ;;
    *) echo "usage: $0 demo|test|asan|tsan|build|bench [--quick]|fuzz [seconds]|soak [minutes]|docs|package" >&2; exit 2 ;;
esac
