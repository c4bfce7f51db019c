#!/bin/sh
# tests/deploy/arm64_integration.sh - deploy.arm64_integration: integration tests of the static
# arm64 (Graviton) build, run on this amd64 machine under qemu-aarch64-static (Debian
# qemu-user-static): the harness starts `healthagg` and the test app through two-line wrappers
# that exec the emulator. A subset, for time: state transitions, the endpoints, and the ECS
# operator features, mirroring in a PID namespace, and the task metadata client.
#
#   arm64_integration.sh STATIC_ARM64_DIR SOURCE_DIR
#
# Prints the binary's size and architecture first. Exit 77 (ctest: skipped) without the emulator;
# tests/deploy/deps.sh installs it.
set -eu
dir=$(cd "$1" && pwd)
src=$2
if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  echo "SKIPPED: qemu-aarch64-static not found (Debian qemu-user-static; run tests/deploy/deps.sh)"
  exit 77
fi
for b in healthagg testapp; do
  [ -x "$dir/$b" ] || { echo "FAIL: $dir/$b missing (deploy/build-static.sh --arch arm64 --testapp)"; exit 1; }
done
echo "arm64 healthagg: $(stat -c %s "$dir/healthagg") bytes; $(file -b "$dir/healthagg")"
echo "under qemu: $(qemu-aarch64-static "$dir/healthagg" version)"
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
for b in healthagg testapp; do
  printf '#!/bin/sh\nexec qemu-aarch64-static %s "$@"\n' "$dir/$b" > "$w/$b"
  chmod +x "$w/$b"
done
rc=0
for t in transitions endpoints operator pidns metadata; do
  echo "== test_$t.py (arm64 under qemu)"
  /usr/bin/python3 "$src/tests/integration/test_$t.py" --healthagg "$w/healthagg" \
    --testapp "$w/testapp" || { r=$?; [ "$r" = 77 ] || rc=1; }
done
exit $rc
