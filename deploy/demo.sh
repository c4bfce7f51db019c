#!/bin/sh
# deploy/demo.sh - see healthagg work on this machine the way it works in an ECS task: a demo
# app (tests/testapp, a small C server with no shell tricks) on 127.0.0.1:8080, the sidecar on
# 127.0.0.1:8099 probing it, and `healthagg probe` - the task's healthCheck - answering.
# The tour: healthy, then the app starts answering 503 and the probe turns unhealthy (with the
# log line that says why), then it recovers. Afterwards both keep running until Ctrl-C when
# run from a terminal; with --no-wait (or without a terminal) they are stopped at the end.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
wait_forever=1
[ "${1:-}" = "--no-wait" ] && wait_forever=0
[ -t 0 ] || wait_forever=0
app_port=${DEMO_APP_PORT:-8080}
listen=${DEMO_LISTEN:-127.0.0.1:8099}

sh deploy/deps.sh --demo
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target healthagg testapp >/dev/null
out=build/demo
mkdir -p "$out"
ha=build/healthagg

pids=""
cleanup() {
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to $1 seconds for a command to succeed, polling every 100 ms.
wait_for() {
  limit=$1; shift
  i=0
  while ! "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -ge $((limit * 10)) ] && return 1
    sleep 0.1
  done
}

build/tests/testapp/testapp --port "$app_port" >"$out/app.ports" 2>"$out/app.err" &
pids="$pids $!"
wait_for 5 grep -q PORTS "$out/app.ports" || { echo "demo app did not start:"; cat "$out/app.err"; exit 1; }
ctl=$(awk '/PORTS/ {print $3}' "$out/app.ports")

$ha serve --listen "$listen" --check "app=http://127.0.0.1:$app_port/healthz" \
  --interval 1s --timeout 500ms --failure-threshold 2 --success-threshold 2 \
  >"$out/healthagg.log" 2>"$out/healthagg.err" &
pids="$pids $!"
export HEALTHAGG_LISTEN="$listen"

say() { printf '\n== %s\n' "$*"; }
probe() { printf '$ healthagg probe  ->  '; $ha probe; rc=$?; echo "   (exit $rc)"; return $rc; }

say "sidecar starting: waiting for the first passing probe of the app"
if ! wait_for 10 $ha probe; then
  echo "healthagg did not become healthy; its log:"; cat "$out/healthagg.log" "$out/healthagg.err"; exit 1
fi
probe || true
say "the app starts answering 503"
curl -fsS "http://127.0.0.1:$ctl/mode/status:503" >/dev/null
wait_for 10 sh -c "! $ha probe" || { echo "probe never turned unhealthy"; exit 1; }
probe || true
echo "the transition, as logged (stdout of healthagg serve):"
grep '"event":"transition"' "$out/healthagg.log" | tail -n 1
say "the app recovers (2 passing probes bring it back)"
curl -fsS "http://127.0.0.1:$ctl/mode/ok" >/dev/null
wait_for 10 $ha probe || { echo "probe never recovered"; exit 1; }
probe || true

cat <<MSG

Where to look:
  curl -s http://$listen/readyz      the cached verdict (200 ok / 503 and why)
  curl -s http://$listen/health      details, application/health+json
  curl -s http://$listen/metrics     Prometheus metrics
  $ha probe                          the ECS healthCheck (exit 0 healthy, 1 not)
  $out/healthagg.log                 JSON-lines log: startup, every transition, shutdown
  make the app fail:  curl http://127.0.0.1:$ctl/mode/status:503   (or mode/hang, mode/ok)
MSG
if [ "$wait_forever" = 1 ]; then
  echo "Running; Ctrl-C stops both."
  wait
fi
