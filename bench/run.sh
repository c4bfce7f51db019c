#!/usr/bin/env bash
# bench/run.sh - the one entry point of healthagg's benchmarks (issue 5).
#
# Installs the peers from Debian (nginx-light, wrk, hyperfine, curl, busybox-static,
# prometheus-blackbox-exporter, valgrind, musl-tools, time, strace), builds healthagg (Release)
# and bench/minprobe.c (static, musl), then runs every comparison side by side in one run on
# 127.0.0.1 (bench/bench.py) and writes the table.
#
# Usage: bench/run.sh [--quick] [--no-apt] [--only SECTIONS]
#   (default)        full run, about 15 minutes; writes bench/RESULTS.md
#   --quick          smoke run for CI, under 2 minutes once the peers are installed; fewer and
#                    shorter rounds; writes bench/out/quick/RESULTS.md (never bench/RESULTS.md)
#   --no-apt         do not install anything; fail if a tool is missing
#   --only LIST      comma-separated subset of endpoint,probe,footprint,engine,detect
#                    (writes under bench/out/ like --quick)
#
# The static binary is deploy/build-static.sh's build-static/healthagg: if it exists, a snapshot
# of it is measured for the probe cost, footprint and binary size (the shipped artifact), and
# alongside the Release build elsewhere; each row of the table says which binary it measured.
# Everything this script starts is stopped before it exits; every step is bounded in time.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
out=$here/out

quick=0
use_apt=1
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-apt) use_apt=0 ;;
    --only) [ $# -ge 2 ] || { echo "run.sh: --only needs a value" >&2; exit 2; }; only=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

start=$(date +%s)
say() { echo "bench: $*" >&2; }

# 1. Tools, from the distribution. -----------------------------------------------------------
packages=(nginx-light wrk hyperfine curl busybox-static prometheus-blackbox-exporter valgrind
          musl-tools time strace python3 cmake gcc make pkg-config libuv1-dev libcjson-dev
          libnghttp2-dev node-llhttp binutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ $use_apt = 1 ] || { echo "run.sh: missing packages: ${missing[*]}" >&2; exit 1; }
  [ "$(id -u)" = 0 ] || { echo "run.sh: missing ${missing[*]}; run as root or install them" >&2; exit 1; }
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 900 apt-get -o DPkg::Lock::Timeout=600 update -qq
  timeout 900 apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Binaries. -------------------------------------------------------------------------------
mkdir -p "$out"
build=$out/build-release
if [ ! -f "$build/CMakeCache.txt" ]; then
  say "configuring a Release build in $build"
  timeout 300 cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
say "building healthagg and tests/testapp (Release)"
timeout 600 cmake --build "$build" -j"$(nproc)" --target healthagg testapp >/dev/null
# The binaries run under names that contain no "healthagg": other jobs on a shared machine
# clean up after themselves with `pkill -f 'healthagg serve'`, which must not end this run's daemons.
mkdir -p "$out/bin"
cp "$build/healthagg" "$out/bin/ha-release"
cp "$build/tests/testapp/testapp" "$out/bin/ha-testapp"
ha=$out/bin/ha-release
testapp=$out/bin/ha-testapp

# The floor: bench/minprobe.c, static with musl (like the shipped binary), stripped; an unstripped
# copy for profiles; and a static glibc build, the kind of floor the issue's ~37 k figure came from.
timeout 120 musl-gcc -static -Os -Wall -Wextra -o "$out/minprobe-dbg" "$here/minprobe.c"
strip -o "$out/minprobe" "$out/minprobe-dbg"
extra_args=(--minprobe "$out/minprobe" --minprobe-dbg "$out/minprobe-dbg")
if timeout 120 gcc -static -O2 -Wall -Wextra -o "$out/minprobe-glibc" "$here/minprobe.c" 2>/dev/null; then
  strip "$out/minprobe-glibc"
  extra_args+=(--minprobe-glibc "$out/minprobe-glibc")
fi

if [ -x "$repo/build-static/healthagg" ]; then
  cp -p "$repo/build-static/healthagg" "$out/bin/ha-static"   # a snapshot (with its build time): it may be rebuilt meanwhile
  extra_args+=(--ha-static "$out/bin/ha-static")
  say "static binary: build-static/healthagg ($(stat -c %s "$out/bin/ha-static") bytes)"
  # The same static musl build with symbols, for profiles: deploy/build-static.sh's flags and its
  # private prefix of libuv and cJSON, plus -g, linked without -s. Best effort.
  pc=$repo/build-static/prefix/lib/pkgconfig
  syms=$out/build-musl-syms
  if [ -d "$pc" ] && (
       set -e
       flags="-Os -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-ident"
       if [ ! -f "$syms/CMakeCache.txt" ]; then
         PKG_CONFIG_PATH=$pc PKG_CONFIG_LIBDIR=$pc CC=musl-gcc timeout 300 cmake -S "$repo" -B "$syms" \
           -DCMAKE_C_COMPILER=musl-gcc -DCMAKE_BUILD_TYPE=MinSizeRel -DCMAKE_C_FLAGS="$flags -g" \
           -DCMAKE_EXE_LINKER_FLAGS="-Wl,--gc-sections -Wl,-O1 -Wl,--build-id=none" \
           -DHEALTHAGG_STATIC=ON -DHEALTHAGG_TESTS=OFF >/dev/null
       fi
       timeout 600 cmake --build "$syms" -j"$(nproc)" --target healthagg >/dev/null
       cd "$syms"
       sed -e 's/ -s / /' -e 's/-o healthagg /-o healthagg-syms /' CMakeFiles/healthagg.dir/link.txt >relink.sh
       timeout 120 sh relink.sh
     ) >/dev/null 2>&1 && [ -x "$syms/healthagg-syms" ]; then
    cp "$syms/healthagg-syms" "$out/bin/ha-static-syms"
    extra_args+=(--ha-static-syms "$out/bin/ha-static-syms")
  else
    say "could not build an unstripped static binary for profiles; profiles use the Release build"
  fi
else
  say "no build-static/healthagg (deploy/build-static.sh makes it): static rows will say n/a"
fi

# 3. The run. --------------------------------------------------------------------------------
if [ $quick = 1 ]; then
  dir=$out/quick; results=$dir/RESULTS.md; limit=170; mode=(--quick)
elif [ -n "$only" ]; then
  dir=$out/only; results=$dir/RESULTS.md; limit=1800; mode=()
else
  dir=$out/full; results=$here/RESULTS.md; limit=2400; mode=()
fi
[ -n "$only" ] && mode+=(--only "$only")
rm -rf "$dir"   # bench/out/... only: last run's logs and callgrind dumps
mkdir -p "$dir"
ulimit -n 16384 2>/dev/null || true
say "running (${mode[*]:-full}); log: $dir/bench.log"
rc=0
timeout -k 15 "$limit" /usr/bin/python3 "$here/bench.py" "${mode[@]}" --out "$dir" --results "$results" \
  --ha "$ha" "${extra_args[@]}" --testapp "$testapp" || rc=$?
say "total $(( $(date +%s) - start )) s; results: $results (exit $rc)"
exit $rc
