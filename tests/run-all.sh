#!/bin/sh
# tests/run-all.sh - the whole test suite from a fresh machine. This is the README's test command
# and exactly what .ci/run calls. Stages, each must pass:
#   1. ctest: build (warnings are errors) and run every unit, integration and deploy test
#   2. sanitizers: the suite again under ASan+UBSan, and integration tests under valgrind
#   3. fuzz: the libFuzzer targets sharing 360 s (tests/fuzz/run.sh --total-seconds)
#   4. soak: 45 s of load, idle connections and a flapping app (bench/soak.sh)
#   5. bench: the benchmark smoke run (bench/run.sh --quick; figures go to bench/out/quick)
# `tests/run-all.sh --ctest-only [ctest args]` runs stage 1 alone (e.g. -R unit).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
only_ctest=0
if [ "${1:-}" = "--ctest-only" ]; then
  only_ctest=1
  shift
fi
sh deploy/deps.sh --tests
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$(nproc)"

passed=0
failed=0
failed_names=""
stage() { # stage NAME COMMAND...
  name=$1
  shift
  echo
  echo "==== stage: $name ($(date -u +%H:%M:%S))"
  start=$(date +%s)
  if "$@"; then
    passed=$((passed + 1))
    echo "==== stage $name: PASSED in $(( $(date +%s) - start )) s"
  else
    failed=$((failed + 1))
    failed_names="$failed_names $name"
    echo "==== stage $name: FAILED in $(( $(date +%s) - start )) s"
  fi
}

run_ctest() {
  status=0
  (cd build && ctest --output-on-failure -j 2 "$@") || status=$?
  # ctest hides the output of skipped tests; a skip must never look like a silent pass.
  grep -h '^SKIPPED' build/Testing/Temporary/LastTest.log 2>/dev/null || true
  return $status
}

stage ctest run_ctest "$@"
if [ "$only_ctest" = 0 ]; then
  stage sanitizers sh tests/sanitizers.sh --ctest-args "-LE deploy"
  stage fuzz sh tests/fuzz/run.sh --total-seconds 360
  stage soak sh bench/soak.sh --seconds 45
  stage bench bash bench/run.sh --quick
fi
echo
[ -z "$failed_names" ] || echo "failed stages:$failed_names"
echo "stages: $passed passed, $failed failed"
[ "$failed" = 0 ]
