#!/bin/sh
# tests/grpc/setup.sh DIR - install the gRPC test peer's npm packages (tests/grpc/package.json,
# versions pinned by package-lock.json) into DIR/node_modules, from the npm registry with `npm ci`.
# Nothing is installed into the source tree. Idempotent: skips the install when DIR already holds
# exactly this lockfile's packages. Exit 77 (a ctest skip) with "SKIPPED: ..." when node or npm is
# missing: deploy/deps.sh --tests installs them, so CI never skips.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: setup.sh DIR}
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIPPED: $tool not found (deploy/deps.sh --tests installs nodejs and npm)"
    exit 77
  fi
done
mkdir -p "$dir"
if [ -f "$dir/node_modules/.installed-lock.json" ] &&
   cmp -s "$here/package-lock.json" "$dir/node_modules/.installed-lock.json"; then
  echo "grpc peer: $dir/node_modules is up to date"
  exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dir/"
# --ignore-scripts: no package needs a build step (protobufjs's postinstall only prints a notice).
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
cp "$here/package-lock.json" "$dir/node_modules/.installed-lock.json"
echo "grpc peer: installed into $dir/node_modules ($(node --version))"
