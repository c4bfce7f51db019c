#!/usr/bin/env bash
# shellcheck disable=SC2016  # apt --format strings are literal
# deploy/build-mbedtls.sh: build Mbed TLS 3.6 from Debian's trixie `mbedtls` source package into
# a private prefix, with healthagg's trimmed configuration (deploy/mbedtls_config.h).
#
# Used by CMake at configure time (dev, sanitizer and static builds alike, each with its own
# compiler and flags) and by tests/fuzz/run.sh. The source comes through a deb-src list private to
# the build directory, as deploy/build-static.sh fetches libuv and cJSON: the machine's Debian
# repositories with the suite replaced by trixie (and trixie-security), because bookworm only has
# Mbed TLS 2.28 (no TLS 1.3, past upstream support). The machine's apt configuration is never
# edited; nothing third-party is written into the source tree.
#
# Cached: the source is fetched once per DIR; the library is rebuilt only when the source version,
# compiler, flags or the configuration header change (a stamp file records them), so a rerun
# costs well under a second.
#
# Usage: deploy/build-mbedtls.sh --dir DIR [--cc CC] [--cflags FLAGS] [--jobs N] [--no-apt]
#   --dir DIR      work directory: DIR/src (sources), DIR/apt (private lists), DIR/prefix
#   --cc CC        C compiler (default: cc)
#   --cflags S     compiler flags for the library (default: -O2)
#   --jobs N       parallel jobs (default 2)
#   --no-apt       do not install missing packages
# Output: DIR/prefix/{include,lib} with libmbedtls.a, libmbedx509.a, libmbedcrypto.a; the
# installed include/mbedtls/mbedtls_config.h IS healthagg's configuration, so every consumer of the
# prefix sees the same structure layouts. The last line printed is the prefix.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
config_h=$here/mbedtls_config.h
dir=""
cc=cc
cflags="-O2"
jobs=2
use_apt=1
suite=trixie

die() { echo "build-mbedtls: error: $*" >&2; exit 1; }
say() { echo "build-mbedtls: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || die "--dir needs a value"; dir=$2; shift ;;
    --cc) [ $# -ge 2 ] || die "--cc needs a value"; cc=$2; shift ;;
    --cflags) [ $# -ge 2 ] || die "--cflags needs a value"; cflags=$2; shift ;;
    --jobs) [ $# -ge 2 ] || die "--jobs needs a value"; jobs=$2; shift ;;
    --no-apt) use_apt=0 ;;
    -h|--help) sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
[ -n "$dir" ] || die "--dir is required"
[ -f "$config_h" ] || die "$config_h not found"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
aptdir=$dir/apt
srcdir=$dir/src
prefix=$dir/prefix

# ---------------------------------------------------------------------------------------------
# 1. Tools: dpkg-source (and bzip2 for the .orig tarball), apt's keyring, cmake.
# ---------------------------------------------------------------------------------------------
packages=(dpkg-dev bzip2 xz-utils debian-archive-keyring gpgv cmake make)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  [ $use_apt = 1 ] || die "missing packages: ${missing[*]} (run without --no-apt, as root)"
  [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]}; run as root or install them"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# ---------------------------------------------------------------------------------------------
# 2. The source, through a private deb-src list naming the trixie suites.
# ---------------------------------------------------------------------------------------------
debian_uris() { # "URI SECURITY(0|1)" for each Debian repository the machine uses
  apt-get indextargets 'Origin: Debian' 'Identifier: Packages' \
      --format '$(REPO_URI) $(CODENAME)' 2>/dev/null | sort -u |
    awk '{ print $1, ($2 ~ /-security$/) ? 1 : 0 }' | sort -u
}
write_private_sources() {
  mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
  local keyring="" lines
  if [ -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
    keyring=" [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
  fi
  lines=$(debian_uris)
  if [ -z "$lines" ] && [ $use_apt = 1 ] && [ "$(id -u)" = 0 ]; then
    apt-get update -q >/dev/null # a fresh container knows its repositories only after this
    lines=$(debian_uris)
  fi
  [ -n "$lines" ] ||
    die "no Debian repository found in the machine's apt configuration (run 'apt-get update')"
  printf '%s\n' "$lines" | awk -v k="$keyring" -v s="$suite" \
    '$2 == 1 { print "deb-src" k, $1, s "-security", "main"; next }
     { print "deb-src" k, $1, s, "main" }' > "$aptdir/sources.list"
}
apt_private() {
  apt-get -q -o Dir::Etc::SourceList="$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache" \
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
    -o APT::Sandbox::User=root "$@"
}

if [ ! -d "$srcdir/mbedtls/" ] || [ ! -s "$srcdir/mbedtls.version" ]; then
  write_private_sources
  say "private apt-get update ($aptdir/sources.list)"
  apt_private update >"$dir/apt-update.log" 2>&1 ||
    { cat "$dir/apt-update.log" >&2; die "apt-get update with the $suite deb-src list failed"; }
  mkdir -p "$srcdir"
  work=$(mktemp -d "$srcdir/.fetch.XXXXXX")
  say "apt-get source mbedtls ($suite)"
  (cd "$work" && apt_private source mbedtls) >"$dir/apt-source.log" 2>&1 ||
    { cat "$dir/apt-source.log" >&2; die "could not fetch the source of mbedtls from $suite"; }
  tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)
  [ -n "$tree" ] || die "apt-get source mbedtls unpacked nothing (see $dir/apt-source.log)"
  version=$(sed -n 's/^Version: //p' "$work"/mbedtls_*.dsc | head -n1)
  case "$version" in
    3.6.*) ;;
    *) die "$suite has mbedtls $version, expected 3.6.x" ;;
  esac
  name=$(basename "$tree")
  rm -rf "${srcdir:?}/$name"
  mv "$tree" "$srcdir/$name"
  ln -sfn "$name" "$srcdir/mbedtls"
  printf '%s\n' "$version" > "$srcdir/mbedtls.version"
  rm -rf "$work"
fi

# ---------------------------------------------------------------------------------------------
# 3. The library, with healthagg's configuration, unless already built exactly so.
# ---------------------------------------------------------------------------------------------
stamp=$prefix/.stamp
want="$(cat "$srcdir/mbedtls.version") | $cc $("$cc" -dumpversion 2>/dev/null || true) | $cflags"
want="$want | $(cksum < "$config_h")"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$prefix/lib/libmbedtls.a" ]; then
  say "mbedtls $(cat "$srcdir/mbedtls.version"): up to date"
  echo "$prefix"
  exit 0
fi
say "building mbedtls $(cat "$srcdir/mbedtls.version") with $cc"
b=$dir/build
rm -rf "$b" "$prefix"
cmake -S "$srcdir/mbedtls/" -B "$b" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_C_FLAGS="$cflags" -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
  -DMBEDTLS_CONFIG_FILE="$config_h" -DENABLE_PROGRAMS=OFF -DENABLE_TESTING=OFF \
  -DUSE_SHARED_MBEDTLS_LIBRARY=OFF -DUSE_STATIC_MBEDTLS_LIBRARY=ON -DMBEDTLS_FATAL_WARNINGS=OFF \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON >"$dir/configure.log" 2>&1 ||
  { cat "$dir/configure.log" >&2; die "configuring mbedtls failed"; }
cmake --build "$b" -j "$jobs" >"$dir/build.log" 2>&1 ||
  { tail -n 50 "$dir/build.log" >&2; die "building mbedtls failed"; }
cmake --install "$b" >"$dir/install.log" 2>&1 ||
  { cat "$dir/install.log" >&2; die "installing mbedtls failed"; }
# Consumers compile against this prefix without any -D: its configuration header is ours.
cp "$config_h" "$prefix/include/mbedtls/mbedtls_config.h"
printf '%s\n' "$want" > "$stamp"
say "mbedtls $(cat "$srcdir/mbedtls.version") installed in $prefix"
echo "$prefix"
