#!/usr/bin/env bash
# shellcheck disable=SC2086,SC2046,SC2016  # flag strings split on purpose; apt --format is literal
# deploy/build-static.sh: build a fully static, stripped healthagg with musl.
#
# libuv, cJSON, c-ares, nghttp2 (library only) and zlib (gzip layers for `healthagg lint --image`)
# are built from Debian *source* packages (apt-get source through a deb-src list private to the
# build directory: the machine's apt configuration is never edited), llhttp from Debian's
# node-llhttp sources. Everything downloaded or built lives under the build directory (default:
# build-static/ at the top of the repository, which git ignores); nothing third-party is ever
# written into the source tree.
#
# --arch arm64 cross-compiles for AWS Graviton (aarch64) on an amd64 machine: Debian's cross gcc
# (gcc-aarch64-linux-gnu) with Debian's own musl for arm64 (the musl-dev:arm64 package, downloaded
# through an arm64 package list private to the build directory and unpacked there, no dpkg
# multiarch setup), driven through that package's musl-gcc specs re-rooted into the build
# directory. Every library build goes through the same variables, so one added later
# cross-compiles too: CMake projects through build_dep (or "${cmake_cc[@]}"), others with $cc and
# the exported CC/AR/RANLIB/STRIP. Programs built for arm64 run under qemu-aarch64-static
# (Debian qemu-user-static) for the script's own checks ($run).
#
# Idempotent: packages already installed are not reinstalled, sources already fetched are not
# fetched again, and dependencies already built for the same source version and flags are reused.
#
# Usage: deploy/build-static.sh [options]
#   --testapp          also build a static tests/testapp (target `testapp`) as <dir>/testapp
#   --toolchain-check  build only the dependencies and a tiny libuv+cJSON+llhttp program, run it,
#                      and check that it is static (proves the toolchain without healthagg's code)
#   --no-apt           do not install packages; fail if something is missing
#   --jobs N           parallel build jobs (default: number of CPUs)
#   --arch ARCH        amd64 or arm64 (aliases x86_64, aarch64); default: this machine's
#   --dir DIR          build directory (default: $HEALTHAGG_STATIC_DIR, else <repo>/build-static,
#                      or <repo>/build-static-arm64 when cross-compiling for arm64)
#   --max-size BYTES   fail if the stripped sidecar binary is larger (default: warn above 655360)
#   -h, --help
#
# Outputs: <dir>/healthagg (the sidecar; `lint` left out for size), <dir>/healthagg-lint (the same
# with `healthagg lint`, for CI), and <dir>/testapp with --testapp. The last line printed is
# "healthagg: <bytes> bytes (<KiB> KiB), statically linked: <path>".
# Run as `sh deploy/build-static.sh` too: Debian's sh (dash) has no pipefail, bash does.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

dir=${HEALTHAGG_STATIC_DIR:-}
host_arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
arch=$host_arch
want_testapp=0
toolchain_only=0
use_apt=1
jobs=$(nproc 2>/dev/null || echo 2)
target_size=655360 # 640 KiB: the budget with TLS and gRPC (issue: TLS)
max_size=""

die() { echo "build-static: error: $*" >&2; exit 1; }
say() { echo "build-static: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --testapp) want_testapp=1 ;;
    --toolchain-check) toolchain_only=1 ;;
    --no-apt) use_apt=0 ;;
    --jobs) [ $# -ge 2 ] || die "--jobs needs a value"; jobs=$2; shift ;;
    --dir) [ $# -ge 2 ] || die "--dir needs a value"; dir=$2; shift ;;
    --arch) [ $# -ge 2 ] || die "--arch needs a value (amd64 or arm64)"; arch=$2; shift ;;
    --max-size) [ $# -ge 2 ] || die "--max-size needs a value"; max_size=$2; shift ;;
    -h|--help) sed -n '3,/^# Run as `sh/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done

case "$arch" in
  amd64|x86_64) arch=amd64; gnu_triplet=x86_64-linux-gnu; musl_triplet=x86_64-linux-musl;
                qemu=qemu-x86_64-static; file_arch="x86-64" ;;
  arm64|aarch64) arch=arm64; gnu_triplet=aarch64-linux-gnu; musl_triplet=aarch64-linux-musl;
                 qemu=qemu-aarch64-static; file_arch="aarch64" ;;
  *) die "--arch $arch: unsupported; use amd64 or arm64" ;;
esac
cross=0
if [ "$arch" != "$host_arch" ]; then cross=1; fi
if [ -z "$dir" ]; then
  if [ $cross = 1 ]; then dir=$repo/build-static-$arch; else dir=$repo/build-static; fi
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
prefix=$dir/prefix
srcdir=$dir/src
aptdir=$dir/apt

# Compiler flags for everything that goes into the binary: small code, one section per function
# and object so the linker can drop what is unused.
size_cflags="-Os -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-ident"
size_ldflags="-Wl,--gc-sections -Wl,-O1 -Wl,--build-id=none"

# ---------------------------------------------------------------------------------------------
# 1. Tools, from the distribution.
# ---------------------------------------------------------------------------------------------
packages=(musl-tools gcc make cmake pkg-config dpkg-dev xz-utils node-llhttp file
          debian-archive-keyring gpgv)
if [ $cross = 1 ]; then
  packages+=("gcc-$gnu_triplet" "binutils-$gnu_triplet" qemu-user-static)
fi
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
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
for t in musl-gcc cmake pkg-config dpkg-source file; do
  command -v "$t" >/dev/null || die "$t not found after installing packages"
done
llhttp_src=/usr/share/llhttp
llhttp_inc=/usr/share/include/llhttp
if [ ! -f "$llhttp_src/llhttp.c" ] || [ ! -f "$llhttp_inc/llhttp.h" ]; then
  die "node-llhttp sources not found in $llhttp_src and $llhttp_inc"
fi

# ---------------------------------------------------------------------------------------------
# 2. Sources of libuv1 and cjson, via a deb-src list private to the build directory.
# ---------------------------------------------------------------------------------------------
# The deb-src lines mirror the Debian repositories the machine already uses for binary
# packages (as apt itself reports them), main suite first so that apt fetches from it when
# several suites carry the same version.
debian_repositories() { # "URI CODENAME COMPONENT" lines: main suite, then updates, then security
  apt-get indextargets 'Origin: Debian' 'Identifier: Packages' \
      --format '$(REPO_URI) $(CODENAME) $(COMPONENT)' 2>/dev/null | sort -u |
    awk '{ rank = ($2 ~ /-security$/) ? 2 : (($2 ~ /-/) ? 1 : 0); print rank, $0 }' |
    sort -n -k1,1 -s | cut -d' ' -f2-
}
write_private_sources() {
  mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
  local keyring="" lines
  if [ -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
    keyring=" [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
  fi
  lines=$(debian_repositories)
  if [ -z "$lines" ] && [ $use_apt = 1 ] && [ "$(id -u)" = 0 ]; then
    # A fresh container knows its repositories' origins only after a first update.
    apt-get update -q >/dev/null
    lines=$(debian_repositories)
  fi
  [ -n "$lines" ] ||
    die "no Debian repository found in the machine's apt configuration (run 'apt-get update')"
  printf '%s\n' "$lines" | awk -v k="$keyring" '{ print "deb-src" k, $1, $2, $3 }' \
    > "$aptdir/sources.list"
}
apt_private() {
  apt-get -q -o Dir::Etc::SourceList="$1" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache" \
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
    -o APT::Sandbox::User=root "${@:2}"
}

# fetch_source PKG: leaves the unpacked, patched tree at $srcdir/PKG (a symlink to PKG-VERSION).
fetch_source() {
  local pkg=$1
  if [ -d "$srcdir/$pkg/" ] && [ -f "$srcdir/$pkg.version" ]; then
    return 0
  fi
  if [ ! -f "$aptdir/updated" ]; then
    write_private_sources
    say "private apt-get update ($aptdir/sources.list)"
    apt_private "$aptdir/sources.list" update >/dev/null
    touch "$aptdir/updated"
  fi
  mkdir -p "$srcdir"
  local work
  work=$(mktemp -d "$srcdir/.fetch-$pkg.XXXXXX")
  say "apt-get source $pkg"
  # Whole list first (newest version); if a repository lacks the files, one repository at a time.
  if ! (cd "$work" && apt_private "$aptdir/sources.list" source "$pkg" >"$work.log" 2>&1); then
    local ok=0 line one
    while IFS= read -r line; do
      one=$(mktemp "$aptdir/one.XXXXXX")
      printf '%s\n' "$line" > "$one"
      rm -rf "${work:?}"/*
      if apt_private "$one" update >>"$work.log" 2>&1 &&
         (cd "$work" && apt_private "$one" source "$pkg" >>"$work.log" 2>&1); then
        ok=1
      fi
      rm -f "$one"
      if [ $ok = 1 ]; then break; fi
    done < "$aptdir/sources.list"
    # The one-line updates replaced the private lists: refresh them from the whole list.
    apt_private "$aptdir/sources.list" update >/dev/null 2>&1 || true
    if [ $ok = 0 ]; then
      cat "$work.log" >&2
      die "could not fetch the source of $pkg"
    fi
  fi
  local tree
  tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)
  [ -n "$tree" ] || die "apt-get source $pkg unpacked nothing (see $work.log)"
  local name
  name=$(basename "$tree")
  rm -rf "${srcdir:?}/$name"
  mv "$tree" "$srcdir/$name"
  mv "$work"/*.dsc "$work"/*.tar.* "$srcdir/" 2>/dev/null || true
  ln -sfn "$name" "$srcdir/$pkg"
  sed -n 's/^Version: //p' "$srcdir/${pkg}_"*.dsc 2>/dev/null | head -n1 > "$srcdir/$pkg.version"
  [ -s "$srcdir/$pkg.version" ] || echo "$name" > "$srcdir/$pkg.version"
  rm -rf "$work" "$work.log"
}

# ---------------------------------------------------------------------------------------------
# 2b. The compiler: musl-gcc for this machine's architecture; for another one, Debian's cross gcc
#     with Debian's musl-dev for that architecture, unpacked into the build directory.
# ---------------------------------------------------------------------------------------------
# After this: $cc (the C compiler), "${cmake_cc[@]}" (what every CMake configure gets), $strip,
# "${run[@]}" (prefix to run a program built here), and CC/AR/RANLIB/STRIP exported for builds
# with their own configure scripts.
setup_cross() {
  local tc=$dir/toolchain sysroot=$dir/toolchain/sysroot
  local bin=$tc/bin want
  for t in "$gnu_triplet-gcc" "$gnu_triplet-ar" "$qemu"; do
    command -v "$t" >/dev/null || die "$t not found after installing packages"
  done
  want="$arch | $("$gnu_triplet-gcc" -dumpversion)"
  if [ ! -f "$tc/stamp" ] || [ "$(cat "$tc/stamp")" != "$want" ] ||
     [ ! -f "$sysroot/usr/lib/$musl_triplet/libc.a" ]; then
    rm -rf "$tc"
    mkdir -p "$bin" "$tc/apt/lists/partial" "$tc/apt/cache/archives/partial" "$tc/debs"
    # A binary package list for $arch, private to the build directory, from the same Debian
    # repositories as the machine's (main suite, updates, security).
    local keyring="" lines
    if [ -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
      keyring=" signed-by=/usr/share/keyrings/debian-archive-keyring.gpg"
    fi
    lines=$(debian_repositories)
    [ -n "$lines" ] || { [ $use_apt = 1 ] && apt-get update -q >/dev/null; lines=$(debian_repositories); }
    [ -n "$lines" ] || die "no Debian repository found in the machine's apt configuration"
    printf '%s\n' "$lines" | awk -v a="$arch" -v k="$keyring" \
      '{ print "deb [arch=" a k "]", $1, $2, $3 }' > "$tc/apt/sources.list"
    local aptc=(-o Dir::Etc::SourceList="$tc/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
                -o Dir::State::Lists="$tc/apt/lists" -o Dir::Cache="$tc/apt/cache"
                -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Dir::State::status=/dev/null
                -o APT::Architecture="$arch" -o APT::Architectures="$arch"
                -o APT::Sandbox::User=root)
    say "private apt-get update for $arch ($tc/apt/sources.list)"
    apt-get -q "${aptc[@]}" update >"$tc/apt.log" 2>&1 ||
      { cat "$tc/apt.log" >&2; die "apt-get update for $arch failed"; }
    say "apt-get download musl-dev:$arch"
    (cd "$tc/debs" && apt-get -q "${aptc[@]}" download "musl-dev:$arch" >>"$tc/apt.log" 2>&1) ||
      { cat "$tc/apt.log" >&2; die "could not download musl-dev for $arch"; }
    dpkg-deb -x "$tc"/debs/musl-dev_*.deb "$sysroot"
    local specs=$sysroot/usr/lib/$musl_triplet/musl-gcc.specs
    [ -f "$specs" ] && [ -f "$sysroot/usr/lib/$musl_triplet/libc.a" ] ||
      die "musl-dev:$arch did not contain $musl_triplet/musl-gcc.specs and libc.a"
    # The package's specs name /usr/lib/$musl_triplet and /usr/include/$musl_triplet: point them
    # at the unpacked copy.
    sed -e "s|/usr/lib/$musl_triplet|$sysroot/usr/lib/$musl_triplet|g" \
        -e "s|/usr/include/$musl_triplet|$sysroot/usr/include/$musl_triplet|g" \
        "$specs" > "$tc/musl-gcc.specs"
    printf '#!/bin/sh\n# %s: Debian cross gcc with musl-dev:%s (deploy/build-static.sh)\nexec %s "$@" -specs %s\n' \
      "$musl_triplet-gcc" "$arch" "$gnu_triplet-gcc" "$tc/musl-gcc.specs" > "$bin/$musl_triplet-gcc"
    chmod +x "$bin/$musl_triplet-gcc"
    # Binutils under the compiler's prefix, beside it: CMake looks for <prefix>ar, <prefix>ranlib,
    # ... next to the compiler, so every CMake build (ours, the libraries', Mbed TLS's) archives
    # with the right tools without being told.
    local t
    for t in ar ranlib nm strip objcopy objdump readelf ld as; do
      ln -sf "$(command -v "$gnu_triplet-$t")" "$bin/$musl_triplet-$t"
    done
    printf '%s\n' "$want" > "$tc/stamp"
  fi
  cc=$bin/$musl_triplet-gcc
  strip=$bin/$musl_triplet-strip
  cmake_cc=(-DCMAKE_C_COMPILER="$cc" -DCMAKE_SYSTEM_NAME=Linux
            -DCMAKE_SYSTEM_PROCESSOR="${file_arch/x86-64/x86_64}"
            -DCMAKE_CROSSCOMPILING_EMULATOR="$(command -v "$qemu")")
  run=("$qemu")
  export PATH="$bin:$PATH"
  export CC=$cc AR=$bin/$musl_triplet-ar RANLIB=$bin/$musl_triplet-ranlib STRIP=$strip
}
if [ $cross = 1 ]; then
  setup_cross
else
  cc=musl-gcc
  strip=strip
  cmake_cc=(-DCMAKE_C_COMPILER=musl-gcc)
  run=()
  export CC=musl-gcc
fi
say "target $arch: $cc"

fetch_source libuv1
fetch_source cjson
fetch_source nghttp2
fetch_source zlib
fetch_source c-ares

# ---------------------------------------------------------------------------------------------
# 3. Static libuv, cJSON and nghttp2 with musl-gcc into a private prefix (libraries + .pc files).
# ---------------------------------------------------------------------------------------------
mkdir -p "$prefix"
# build_dep NAME SRC CMAKE-ARGS...: configure, build and install unless already done for the same
# source version and flags (recorded in a stamp file).
build_dep() {
  local name=$1 src=$2; shift 2
  local stamp="$prefix/.$name.stamp"
  local want
  want="$(cat "$srcdir/$name.version") | $arch $cc $("$cc" -dumpversion) | $size_cflags | $*"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "$name $(cat "$srcdir/$name.version"): up to date"
    return 0
  fi
  say "building $name $(cat "$srcdir/$name.version") with $(basename "$cc") ($arch)"
  local b="$dir/deps/$name"
  rm -rf "$b"; mkdir -p "$dir/deps"
  cmake -S "$src" -B "$b" "${cmake_cc[@]}" -DCMAKE_BUILD_TYPE=MinSizeRel \
    -DCMAKE_C_FLAGS="$size_cflags" -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
    "$@" >"$b.configure.log" 2>&1 || { cat "$b.configure.log" >&2; die "configuring $name failed"; }
  cmake --build "$b" -j "$jobs" >"$b.build.log" 2>&1 ||
    { tail -n 50 "$b.build.log" >&2; die "building $name failed"; }
  cmake --install "$b" >"$b.install.log" 2>&1 ||
    { cat "$b.install.log" >&2; die "installing $name failed"; }
  printf '%s\n' "$want" > "$stamp"
}

# libuv's CMake build always makes the shared library too; it is removed from the prefix below so
# that nothing can link against it by accident.
build_dep libuv1 "$srcdir/libuv1/" -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF
build_dep cjson "$srcdir/cjson/" -DBUILD_SHARED_LIBS=OFF -DENABLE_CJSON_TEST=OFF \
  -DENABLE_CJSON_UTILS=OFF -DENABLE_TARGET_EXPORT=OFF
# nghttp2: the library alone (no tools, examples, docs, HTTP/3 or threads), static only. Its server
# half is compiled too (the library has no client-only switch); --gc-sections drops every function
# healthagg does not call, so the binary carries only the client path.
build_dep nghttp2 "$srcdir/nghttp2/" -DENABLE_LIB_ONLY=ON -DENABLE_STATIC_LIB=ON \
  -DENABLE_SHARED_LIB=OFF -DENABLE_THREADS=OFF -DENABLE_DOC=OFF -DENABLE_HTTP3=OFF \
  -DENABLE_FAILMALLOC=OFF -DWITH_JEMALLOC=OFF -DWITH_LIBXML2=OFF
# zlib: its own configure script (static only), run on a copy of the source tree because it
# writes its Makefile and zconf.h in place.
build_zlib() {
  local stamp="$prefix/.zlib.stamp" want
  want="$(cat "$srcdir/zlib.version") | $arch $cc $("$cc" -dumpversion) | $size_cflags"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "zlib $(cat "$srcdir/zlib.version"): up to date"
    return 0
  fi
  say "building zlib $(cat "$srcdir/zlib.version") with $(basename "$cc") ($arch)"
  local b="$dir/deps/zlib"
  rm -rf "$b"; mkdir -p "$dir/deps"
  cp -a "$srcdir/zlib/." "$b"
  (cd "$b" && CC=$cc CFLAGS="$size_cflags" ./configure --static --prefix="$prefix" \
     --libdir="$prefix/lib" >"$b.configure.log" 2>&1) ||
    { cat "$b.configure.log" >&2; die "configuring zlib failed"; }
  make -C "$b" -j "$jobs" libz.a >"$b.build.log" 2>&1 ||
    { tail -n 50 "$b.build.log" >&2; die "building zlib failed"; }
  make -C "$b" install >"$b.install.log" 2>&1 ||
    { cat "$b.install.log" >&2; die "installing zlib failed"; }
  printf '%s\n' "$want" > "$stamp"
}
build_zlib
# c-ares: the asynchronous resolver (library only, static).
build_dep c-ares "$srcdir/c-ares/" -DCARES_STATIC=ON -DCARES_SHARED=OFF -DCARES_BUILD_TOOLS=OFF \
  -DCARES_BUILD_TESTS=OFF -DCARES_STATIC_PIC=OFF
rm -f "$prefix"/lib/*.so "$prefix"/lib/*.so.*

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
export PKG_CONFIG_LIBDIR="$prefix/lib/pkgconfig"
for m in libuv-static libcjson libnghttp2 zlib libcares; do
  pkg-config --exists "$m" || die "pkg-config cannot find $m in $PKG_CONFIG_LIBDIR"
done

check_static() { # FILE: must be an ELF executable for $arch that `file` calls statically linked
  local desc
  desc=$(file -b "$1")
  case "$desc" in
    *"statically linked"*) ;;
    *) die "$1 is not statically linked: $desc" ;;
  esac
  case "$desc" in
    *"$file_arch"*) ;;
    *) die "$1 is not an $arch executable: $desc" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# 3b. Toolchain check: a tiny program using all three libraries, linked like healthagg.
# ---------------------------------------------------------------------------------------------
if [ $toolchain_only = 1 ]; then
  tc=$dir/toolchain-check
  mkdir -p "$tc"
  cat > "$tc/hello.c" <<'EOF'
/* Toolchain check for deploy/build-static.sh: libuv + cJSON + llhttp in one static musl binary. */
#include <stdio.h>
#include <string.h>
#include <cJSON.h>
#include <llhttp.h>
#include <uv.h>

static int fired;
static void on_timer(uv_timer_t *t) { fired = 1; uv_close((uv_handle_t *)t, NULL); }

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  uv_timer_t timer;
  uv_timer_init(loop, &timer);
  uv_timer_start(&timer, on_timer, 1, 0);
  uv_run(loop, UV_RUN_DEFAULT);

  llhttp_t parser;
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  const char req[] = "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
  enum llhttp_errno err = llhttp_execute(&parser, req, sizeof req - 1);

  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "libuv", uv_version_string());
  cJSON_AddStringToObject(o, "cjson", cJSON_Version());
  cJSON_AddBoolToObject(o, "timer", fired);
  cJSON_AddStringToObject(o, "llhttp", llhttp_errno_name(err));
  char *s = cJSON_PrintUnformatted(o);
  puts(s);
  int ok = fired && err == HPE_OK && strstr(s, "\"libuv\"") != NULL;
  cJSON_free(s);
  cJSON_Delete(o);
  return ok ? 0 : 1;
}
EOF
  "$cc" -std=c11 -D_POSIX_C_SOURCE=200809L $size_cflags -I"$llhttp_inc" \
    $(pkg-config --static --cflags libuv-static libcjson) \
    "$tc/hello.c" "$llhttp_src/llhttp.c" "$llhttp_src/api.c" "$llhttp_src/http.c" \
    -static -s $size_ldflags $(pkg-config --static --libs libuv-static libcjson) -o "$tc/hello"
  check_static "$tc/hello"
  "${run[@]}" "$tc/hello" || die "toolchain check program failed"
  size=$(stat -c %s "$tc/hello")
  say "toolchain check: $(file -b "$tc/hello")"
  echo "hello: $size bytes ($(( (size + 1023) / 1024 )) KiB), statically linked"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# 4. healthagg itself.
# ---------------------------------------------------------------------------------------------
# configure_build BUILD-DIR TESTS(ON|OFF) [EXTRA-LDFLAGS]
configure_build() {
  cmake -S "$repo" -B "$1" "${cmake_cc[@]}" \
    -DCMAKE_BUILD_TYPE=MinSizeRel -DCMAKE_C_FLAGS="$size_cflags" \
    -DCMAKE_EXE_LINKER_FLAGS="$size_ldflags${3:+ $3}" \
    -DHEALTHAGG_STATIC=ON -DHEALTHAGG_TESTS="$2" -DHEALTHAGG_SIDECAR_LINT=OFF \
    -DLLHTTP_SOURCE_DIR="$llhttp_src" -DLLHTTP_INCLUDE_DIR="$llhttp_inc" >"$1.configure.log" 2>&1 ||
    { cat "$1.configure.log" >&2; die "configuring healthagg ($1) failed"; }
}

say "building healthagg ($(basename "$cc"), static, $arch)"
configure_build "$dir/cmake" OFF
# Two binaries from one build: the sidecar (what the image ships, lint left out for size) and
# healthagg-lint (the same code with `lint`, for CI next to ko build).
cmake --build "$dir/cmake" -j "$jobs" --target healthagg healthagg-lint
for b in healthagg healthagg-lint; do
  cp "$dir/cmake/$b" "$dir/$b.tmp"
  mv -f "$dir/$b.tmp" "$dir/$b"
  check_static "$dir/$b"
  "${run[@]}" "$dir/$b" version >/dev/null || die "$dir/$b version failed"
done
# The split is real: the sidecar refuses `lint` (exit 2, naming healthagg-lint), the other runs it.
if "${run[@]}" "$dir/healthagg" lint --help >/dev/null 2>&1; then
  die "$dir/healthagg still carries lint"
fi
"${run[@]}" "$dir/healthagg-lint" lint --help >/dev/null || die "$dir/healthagg-lint lint --help failed"

if [ $want_testapp = 1 ]; then
  # The test app's target exists only with the test suite configured: a second build directory,
  # of which only `testapp` is built. If the rest of the suite does not configure (it is not this
  # script's business), the app's sources are compiled directly, as its CMakeLists.txt does.
  say "building testapp ($(basename "$cc"), static, $arch)"
  [ -f "$repo/tests/testapp/testapp.c" ] || die "tests/testapp/testapp.c not found"
  ta=""
  if (configure_build "$dir/cmake-testapp" ON "-static") 2>/dev/null &&
     cmake --build "$dir/cmake-testapp" -j "$jobs" --target testapp; then
    ta=$(find "$dir/cmake-testapp" -type f -name testapp -perm -u+x | head -n1)
  else
    say "the test suite does not configure (see $dir/cmake-testapp.configure.log):" \
        "compiling tests/testapp/*.c directly"
    mkdir -p "$dir/testapp-direct"
    "$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra $size_cflags \
      $(pkg-config --static --cflags libuv-static) "$repo"/tests/testapp/*.c \
      -static $size_ldflags $(pkg-config --static --libs libuv-static) \
      -o "$dir/testapp-direct/testapp"
    ta=$dir/testapp-direct/testapp
  fi
  if [ -z "$ta" ] || [ ! -f "$ta" ]; then die "testapp binary not found"; fi
  cp "$ta" "$dir/testapp.tmp"
  "$strip" "$dir/testapp.tmp"
  mv -f "$dir/testapp.tmp" "$dir/testapp"
  check_static "$dir/testapp"
  say "testapp: $(stat -c %s "$dir/testapp") bytes: $dir/testapp"
fi

lsize=$(stat -c %s "$dir/healthagg-lint")
say "healthagg-lint: $lsize bytes ($(( (lsize + 1023) / 1024 )) KiB): $dir/healthagg-lint"
size=$(stat -c %s "$dir/healthagg")
say "$arch: $(file -b "$dir/healthagg")"
echo "healthagg: $size bytes ($(( (size + 1023) / 1024 )) KiB), statically linked: $dir/healthagg"
if [ -n "$max_size" ] && [ "$size" -gt "$max_size" ]; then
  die "healthagg is $size bytes, over --max-size $max_size"
elif [ "$size" -gt "$target_size" ]; then
  echo "build-static: warning: healthagg is over the $target_size-byte target" >&2
fi
