#!/bin/sh
# deploy/deps.sh - install what building healthagg (and, with --tests, testing it) needs, from
# Debian's packages. Idempotent: installs only what is missing and runs `apt-get update` only
# then. Needs root (or sudo) when something is missing.
#   build:  gcc, cmake, pkg-config, libuv1-dev, libcjson-dev, libnghttp2-dev, libc-ares-dev,
#           node-llhttp (llhttp's C sources), and what deploy/build-mbedtls.sh needs to fetch
#           Debian trixie's mbedtls source package through a private deb-src list (dpkg-dev,
#           bzip2, the keyring, gpgv)
#   tests:  python3 (Debian's, for the integration tests), curl, valgrind, wrk (soak), nodejs + npm
#           (the gRPC test server, tests/grpc/; skipped when `node` and `npm` are already on PATH,
#           e.g. from another distribution of Node.js), openssl and nginx (the TLS peers),
#           clang-14 + libclang-rt-14-dev (libFuzzer), redis-server and postgresql (the tcp://
#           send/expect peers), prometheus (promtool checks /metrics), plus the deploy checks' packages
#           (tests/deploy/deps.sh); bench/run.sh installs the benchmark peers itself
#   --only "PKG ...": exactly these packages (how tests/deploy/deps.sh installs its own)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pkgs="gcc make cmake pkg-config libuv1-dev libcjson-dev libnghttp2-dev libc-ares-dev node-llhttp
      dpkg-dev bzip2 xz-utils debian-archive-keyring gpgv"
if [ "${1:-}" = "--only" ]; then
  pkgs=$2
elif [ "${1:-}" = "--tests" ]; then
  pkgs="$pkgs python3 curl valgrind wrk clang-14 libclang-rt-14-dev openssl nginx redis-server
        postgresql prometheus"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    pkgs="$pkgs nodejs npm"
  fi
elif [ "${1:-}" = "--demo" ]; then
  pkgs="$pkgs curl"
fi
missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing="$missing $p"
  fi
done
if [ -n "$missing" ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "deps: missing:$missing; run as root" >&2; exit 1; }
    sudo=sudo
  fi
  echo "deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  # shellcheck disable=SC2086  # one word per package
  $sudo apt-get install -y -q --no-install-recommends $missing
fi
if [ "${1:-}" = "--tests" ]; then
  sh "$here/../tests/deploy/deps.sh"
fi
