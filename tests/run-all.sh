#!/bin/sh
# tests/run-all.sh - the whole test suite from a fresh machine: install what is missing, build
# (warnings are errors), run every ctest test. This is the README's test command and what
# .ci/run calls. Extra arguments go to ctest (e.g. -R unit).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sh deploy/deps.sh --tests
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$(nproc)"
cd build
ctest --output-on-failure -j 2 "$@"
