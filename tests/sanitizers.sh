#!/bin/sh
# tests/sanitizers.sh - the memory-safety gate (issue 4, item 1).
#
#   tests/sanitizers.sh [--asan-only | --valgrind-only] [--ctest-args "ARGS"]
#
# 1. ASan + UBSan: builds build-asan/ with -DHEALTHAGG_SANITIZE=address,undefined (gcc by
#    default; CC=clang to switch) and runs the whole ctest suite against it (--ctest-args to
#    narrow it, e.g. "-LE deploy") with leak detection on and UBSan halting on the first error. Sanitizer reports are written to files (log_path), so a
#    report from a process the harness killed, or one whose stderr nobody checked, is still
#    seen; any report fails the run. Then the integration tests that exercise every endpoint
#    and check type run once more with healthagg behind tests/sanitizers-wrap.py, so that every
#    healthagg exits through SIGTERM and LeakSanitizer checks it at exit.
# 2. valgrind: a representative set of integration tests (every endpoint, http and tcp checks,
#    the CLI, shutdown, and the grpc:// and grpcs:// checks of tests/grpc/test_grpc_check.py
#    against the real Node gRPC server) with build/healthagg under
#      valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect
#    via the same wrapper (harness.py is given the wrapper as --healthagg). Any valgrind error
#    or definite/indirect leak in any process fails the run.
# Exit 0 only if every test passed and no report was produced. Loopback only; bounded in time.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
do_asan=1
do_vg=1
ctest_args=""
while [ $# -gt 0 ]; do
    case "$1" in
    --asan-only) do_vg=0; shift ;;
    --valgrind-only) do_asan=0; shift ;;
    --ctest-args) ctest_args="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "sanitizers.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

failures=""
fail() { failures="$failures
  - $1"; echo "FAILED: $1"; }

# Integration tests that between them hit /livez /readyz /health /metrics, GET and HEAD, http
# and tcp checks, probe/check/validate, SIGTERM draining and every misbehaving target (faults;
# behind the wrapper its fd/RSS figures are the wrapper's, so there it is a memcheck run only).
VG_TESTS="endpoints transitions lifecycle cli odd_responses faults tls"
# Tests that assert wall-clock bounds on a process start: valgrind's ~1 s startup breaks them
# by design, not by a bug, so they are left out of the valgrind run (ASan runs them).
VG_SKIP="probe_bounded_by_timeout_on_a_hanging_sidecar probe_no_sidecar_is_fast_and_clear"
LEAK_TESTS="endpoints transitions lifecycle odd_responses faults"

# wait_children PIDDIR: orphans (wrapper SIGKILLed, child got SIGTERM) finish their leak check.
wait_children() {
    [ -d "$1" ] || return 0
    deadline=$(( $(date +%s) + 60 ))
    for f in "$1"/*; do
        [ -e "$f" ] || continue
        pid=$(basename "$f")
        while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            fail "process $pid ($(cat "$f")) did not exit within 60s of SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null
        fi
    done
}

# make_wrapper OUT PIDDIR COMMAND...: an executable that runs COMMAND "$@" behind the wrapper.
make_wrapper() {
    out=$1 piddir=$2
    shift 2
    {
        echo '#!/bin/sh'
        printf 'exec %s %s %s --' "$py" "$root/tests/sanitizers-wrap.py" "$piddir"
        for a in "$@"; do printf " '%s'" "$a"; done
        echo ' "$@"'
    } > "$out"
    chmod +x "$out"
}

# run_integration NAME HEALTHAGG TESTAPP LOG LABEL [SKIP...]: one integration test file,
# bounded; with SKIP names, its tests are run one by one (-k) except those.
run_integration() {
    name=$1 ha=$2 app=$3 log=$4 label=$5
    shift 5
    file="$root/tests/integration/test_$name.py"
    case $name in */*) file="$root/tests/$name.py" ;; esac # another directory's test file
    echo "-- integration.$name with $ha"
    if [ $# -eq 0 ]; then
        timeout 900 "$py" "$file" --healthagg "$ha" --testapp "$app" > "$log" 2>&1
        rc=$?
    else
        rc=0
        : > "$log"
        for t in $(grep -A1 '^@test' "$file" | sed -n 's/^def \([A-Za-z0-9_]*\).*/\1/p'); do
            case " $* " in *" $t "*) echo "SKIP $t (timing assertion)" >> "$log"; continue ;; esac
            timeout 300 "$py" "$file" --healthagg "$ha" --testapp "$app" -k "$t" >> "$log" 2>&1 || rc=1
        done
    fi
    grep -E '^(PASS|SKIP|all tests|[0-9]+ test)' "$log" | tail -n 3 | sed 's/^/   /'
    [ "$rc" -eq 0 ] || { grep -E '^(FAIL|  )' "$log" | head -40; fail "integration.$name under $label (exit $rc, log $log)"; }
}

if [ "$do_asan" = 1 ]; then
    echo "== ASan + UBSan build (build-asan/)"
    # gcc by default: the compiler the project ships with (CC=clang works too once the
    # sources build warning-free with clang's -Wformat=2).
    cc=${CC:-gcc}
    asan="$root/build-asan"
    want=$(command -v "$cc" || echo "$cc")
    if [ -f "$asan/CMakeCache.txt" ] &&
       ! grep -q "^CMAKE_C_COMPILER:[A-Z]*=$want\$" "$asan/CMakeCache.txt"; then
        rm -rf "$asan" # configured with another compiler: CMake won't switch in place
    fi
    reports="$asan/sanitizer-reports"
    rm -rf "$reports"
    mkdir -p "$reports"
    blog="$asan/build"
    if ! CC=$cc cmake -S "$root" -B "$asan" -DHEALTHAGG_SANITIZE=address,undefined \
            -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$blog.configure.log" 2>&1 ||
       ! cmake --build "$asan" -j "$(nproc)" > "$blog.log" 2>&1; then
        tail -n 30 "$blog.configure.log" "$blog.log" 2>/dev/null
        echo "sanitizers.sh: the ASan build failed" >&2
        exit 1
    fi
    export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:log_path=$reports/asan"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
    export LSAN_OPTIONS="log_path=$reports/lsan"
    echo "== ctest against build-asan (reports in $reports)"
    # shellcheck disable=SC2086
    (cd "$asan" && timeout 3600 ctest --output-on-failure -j 2 $ctest_args) > "$asan/ctest.log" 2>&1
    rc=$?
    grep -E '^ *[0-9]+/[0-9]+ Test|tests passed|tests failed|\*\*\*' "$asan/ctest.log" | tail -n 40
    [ "$rc" -eq 0 ] || fail "ctest under ASan/UBSan (exit $rc, log $asan/ctest.log)"

    echo "== leak check at exit: integration tests with every healthagg exiting via SIGTERM"
    piddir="$asan/wrapped-pids"
    rm -rf "$piddir"
    make_wrapper "$asan/healthagg-wrapped" "$piddir" "$asan/healthagg"
    for t in $LEAK_TESTS; do
        run_integration "$t" "$asan/healthagg-wrapped" "$asan/tests/testapp/testapp" \
            "$asan/leak-$t.log" "ASan (wrapped)"
    done
    wait_children "$piddir"
    unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

    n=$(find "$reports" -type f | wc -l)
    if [ "$n" -gt 0 ]; then
        fail "$n sanitizer report(s) in $reports"
        for f in $(find "$reports" -type f | head -5); do
            echo "--- $f"; head -n 40 "$f"
        done
    else
        echo "ASan/UBSan/LSan: no reports"
    fi
fi

if [ "$do_vg" = 1 ]; then
    echo "== valgrind (build/healthagg)"
    command -v valgrind >/dev/null 2>&1 || { echo "sanitizers.sh: valgrind not installed (apt-get install valgrind)" >&2; exit 1; }
    build="$root/build"
    vg="$root/build-valgrind"
    rm -rf "$vg"
    mkdir -p "$vg/logs"
    if ! { cmake -S "$root" -B "$build" > "$vg/build.log" 2>&1 &&
           cmake --build "$build" -j "$(nproc)" >> "$vg/build.log" 2>&1; }; then
        tail -n 30 "$vg/build.log"; echo "sanitizers.sh: the build failed" >&2; exit 1
    fi
    make_wrapper "$vg/healthagg" "$vg/pids" valgrind -q --error-exitcode=1 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        --track-fds=no --log-file="$vg/logs/vg.%p.log" "$build/healthagg"
    # test_tls.py stretches its intervals and timeouts by this: a full TLS handshake under
    # valgrind takes about a second.
    export HEALTHAGG_TEST_SLOW=20
    for t in $VG_TESTS; do
        # shellcheck disable=SC2086
        run_integration "$t" "$vg/healthagg" "$build/tests/testapp/testapp" "$vg/test-$t.log" \
            valgrind $([ "$t" = cli ] && echo $VG_SKIP)
    done
    # grpc:// and grpcs:// checks against the real Node gRPC server (its npm packages installed
    # by tests/grpc/setup.sh into the build directory, as ctest's grpc.npm_install does).
    if sh "$root/tests/grpc/setup.sh" "$build/tests/grpc/peer" > "$vg/grpc-setup.log" 2>&1; then
        HA_GRPC_PEER="$build/tests/grpc/peer"
        export HA_GRPC_PEER
        run_integration grpc/test_grpc_check "$vg/healthagg" "$build/tests/testapp/testapp" \
            "$vg/test-grpc.log" valgrind
    else
        echo "   SKIPPED: grpc checks under valgrind: $(tail -n 1 "$vg/grpc-setup.log")"
    fi
    wait_children "$vg/pids"
    nlogs=$(ls "$vg/logs" | wc -l)
    bad=$(grep -l -E 'Invalid (read|write|free)|uninitialised|Conditional jump|definitely lost|indirectly lost|Mismatched|Syscall param|overlap|Process terminating|ERROR SUMMARY: [1-9]' "$vg"/logs/* 2>/dev/null)
    if [ -n "$bad" ]; then
        fail "valgrind reported errors in $(echo "$bad" | wc -l) of $nlogs processes"
        for f in $(echo "$bad" | head -3); do echo "--- $f"; head -n 60 "$f"; done
    else
        echo "valgrind: $nlogs healthagg processes, no errors, no definite/indirect leaks"
    fi
fi

if [ -n "$failures" ]; then
    echo "sanitizers.sh: FAILED:$failures"
    exit 1
fi
echo "sanitizers.sh: all clean"
