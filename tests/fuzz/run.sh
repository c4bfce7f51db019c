#!/bin/sh
# tests/fuzz/run.sh - build the libFuzzer targets with clang (ASan + UBSan + LSan) into
# build-fuzz/ and run each for a fixed time. Fails on any crash, leak, UB, timeout or
# out-of-memory; prints the executions per target.
#
#   tests/fuzz/run.sh [--seconds N | --total-seconds N] [--build-only] [TARGET...]
#
#   --seconds N   run time per target (default 60; a longer local run: 3600)
#   --total-seconds N  share N seconds equally among the targets (CI: a fixed stage budget
#                 however many targets there are; at least 10 s each)
#   --build-only  compile, don't run
#   TARGET        fuzz_request, fuzz_http_response, fuzz_config, fuzz_quote, fuzz_grpc,
#                 fuzz_image, fuzz_tls, fuzz_metadata,
#                 fuzz_json_cond, fuzz_tcp_answer (default: all)
#
# Needs clang-14 with libclang-rt-14-dev (libFuzzer), libuv1-dev, libcjson-dev, libnghttp2-dev,
# zlib1g-dev and Debian's node-llhttp sources in /usr/share/llhttp; Mbed TLS is built by
# deploy/build-mbedtls.sh into build-fuzz/mbedtls with the same instrumentation. Seeds are read
# from tests/fuzz/corpus/<target>/
# (never written); inputs the fuzzer finds go to build-fuzz/corpus/<target>/, crash
# reproducers to build-fuzz/artifacts/<target>/ (rerun one with build-fuzz/<target> FILE).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/build-fuzz"
seconds=60
total=""
build_only=0
targets=""
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    --total-seconds) total="$2"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    fuzz_*) targets="$targets $1"; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$targets" ] || targets="fuzz_request fuzz_http_response fuzz_config fuzz_quote fuzz_grpc fuzz_image fuzz_tls fuzz_metadata fuzz_json_cond fuzz_tcp_answer"
if [ -n "$total" ]; then
    n=$(echo $targets | wc -w)
    seconds=$((total / n))
    [ "$seconds" -ge 10 ] || seconds=10
fi

CC=${CC:-}
if [ -z "$CC" ]; then
    for c in clang-14 clang; do
        if command -v "$c" >/dev/null 2>&1; then CC=$c; break; fi
    done
fi
[ -n "$CC" ] || { echo "run.sh: clang not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }
llhttp_src=${LLHTTP_SOURCE_DIR:-/usr/share/llhttp}
llhttp_inc=${LLHTTP_INCLUDE_DIR:-/usr/share/include/llhttp}
for f in llhttp.c api.c http.c; do
    [ -f "$llhttp_src/$f" ] || { echo "run.sh: $llhttp_src/$f missing (apt-get install node-llhttp)" >&2; exit 1; }
done
version=$(sed -n 's/^project(healthagg VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
[ -n "$version" ] || version=0.0.0

mkdir -p "$out/obj"
probe="$out/obj/probe.c"
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$probe"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$probe" -o "$out/obj/probe" 2>"$out/obj/probe.log"; then
    cat "$out/obj/probe.log" >&2
    echo "run.sh: $CC cannot build libFuzzer targets (apt-get install libclang-rt-14-dev)" >&2
    exit 1
fi

san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# Mbed TLS instrumented like the project code, so coverage guides the fuzzer into its parsers.
# Except one UBSan check: Mbed TLS 3.6 calls memcmp(NULL, NULL, 0) when it compares two empty
# distinguished names (x509_name_cmp), undefined by the letter of C and harmless in practice.
mbedtls=$("$root/deploy/build-mbedtls.sh" --dir "$out/mbedtls" --cc "$CC" \
    --cflags "-g -O1 $san -fno-sanitize=nonnull-attribute -fsanitize=fuzzer-no-link")
cflags="-std=c11 -g -O1 $san -fsanitize=fuzzer-no-link -Wall -Wextra -Wno-unused-parameter
        -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DHEALTHAGG_VERSION=\"$version\"
        -I$root/include -I$llhttp_inc -isystem $mbedtls/include
        $(pkg-config --cflags libuv libcjson libnghttp2 zlib libcares)"
libs="$(pkg-config --libs libuv libcjson libnghttp2 zlib libcares) $mbedtls/lib/libmbedtls.a
      $mbedtls/lib/libmbedx509.a $mbedtls/lib/libmbedcrypto.a -lpthread -ldl -lrt -lm"

# Project sources (everything but main.c) and llhttp, compiled once for all targets.
objs=""
compile() { # compile SRC OBJ
    if [ ! -f "$2" ] || [ "$1" -nt "$2" ] || [ "$0" -nt "$2" ] || \
       [ -n "$(find "$root/include" -newer "$2" -name '*.h' 2>/dev/null | head -1)" ]; then
        # shellcheck disable=SC2086
        "$CC" $cflags -c "$1" -o "$2"
    fi
}
echo "== building fuzz targets with $CC into $out"
for src in $(find "$root/src" -name '*.c' | sort); do
    rel=${src#"$root/src/"}
    name=$(echo "${rel%.c}" | tr / _)
    [ "$name" = main ] && continue
    compile "$src" "$out/obj/$name.o" &
    objs="$objs $out/obj/$name.o"
done
for f in llhttp api http; do
    compile "$llhttp_src/$f.c" "$out/obj/llhttp_$f.o" &
    objs="$objs $out/obj/llhttp_$f.o"
done
wait
for o in $objs; do [ -f "$o" ] || { echo "run.sh: failed to compile $o" >&2; exit 1; }; done
for t in $targets; do
    [ -f "$here/$t.c" ] || { echo "run.sh: no such target $t" >&2; exit 2; }
    # shellcheck disable=SC2086
    "$CC" $cflags -fsanitize=fuzzer "$here/$t.c" $objs $libs -o "$out/$t"
done
[ "$build_only" = 1 ] && { echo "built:$targets"; exit 0; }

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
status=0
summary=""
for t in $targets; do
    mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
    log="$out/$t.log"
    echo "== $t for ${seconds}s (log: $log)"
    set +e
    (cd "$out" && "./$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" \
        "$out/corpus/$t" "$here/corpus/$t") >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    [ -n "$execs" ] || execs="?"
    if [ "$rc" -ne 0 ] || grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: ' "$log"; then
        status=1
        echo "FAIL $t (exit $rc, $execs executions); the report:"
        grep -n -E -A 30 'ERROR: |runtime error:|==[0-9]+== ' "$log" | head -60
        ls "$out/artifacts/$t" | sed 's/^/  artifact: /'
        summary="$summary
  $t: FAIL after $execs executions"
    else
        echo "PASS $t: $execs executions in ${seconds}s, coverage ${cov:-?} edges, corpus $(ls "$out/corpus/$t" | wc -l) inputs"
        summary="$summary
  $t: $execs executions, ${cov:-?} edges"
    fi
done
echo "== fuzz summary (${seconds}s per target):$summary"
exit $status
