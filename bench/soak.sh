#!/bin/sh
# bench/soak.sh - soak test of `healthagg serve` (issue 4, item 6). Loopback only, bounded.
#
#   bench/soak.sh [--seconds N] [--connections C] [--idle I] [--flap-ms MS]
#                 [--healthagg PATH] [--testapp PATH] [--out DIR]
#
# For N seconds (default 600; CI runs a short version, e.g. --seconds 45):
#   - wrk hammers /readyz with C connections (default 256, 2 threads);
#   - a holder keeps I idle connections open (default 500): each sends one request, reads the
#     answer and then sits idle; when the sidecar cuts one (idle timeout) it is reopened;
#   - the checked app (the testapp) flaps between 200 and 503 every MS (default 2000), and the
#     sidecar probes it every 1s with thresholds 1/1, so each flip is one transition.
# At the end it prints the maximum RSS (sampled VmRSS and the kernel's VmHWM), the fd count
# before and after, transitions seen vs expected, wrk's figures, and the scheduler lag; it exits
# non-zero if healthagg crashed or wrote to stderr, did not exit 0 on SIGTERM, leaked fds, grew
# its RSS in the second half of the run, or the transition count is off.
# Needs wrk, python3 and a build (cmake --build build). Logs go to bench/out/soak-<time>/.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=600 conns=256 idle=500 flap_ms=2000
healthagg="$root/build/healthagg"
testapp="$root/build/tests/testapp/testapp"
out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --flap-ms) flap_ms=$2; shift 2 ;;
    --healthagg) healthagg=$2; shift 2 ;;
    --testapp) testapp=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null 2>&1 || { echo "soak.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
for b in "$healthagg" "$testapp"; do
    [ -x "$b" ] || { echo "soak.sh: $b not built (cmake -S . -B build && cmake --build build)" >&2; exit 1; }
done
[ -n "$out" ] || out="$root/bench/out/soak-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
exec /usr/bin/python3 - "$seconds" "$conns" "$idle" "$flap_ms" "$healthagg" "$testapp" "$out" <<'PY'
import json, os, re, selectors, signal, socket, subprocess, sys, threading, time

seconds, conns, idle, flap_ms = (int(x) for x in sys.argv[1:5])
healthagg, testapp, out = sys.argv[5:8]
INTERVAL_MS, TIMEOUT_MS = 1000, 800
procs = []
problems = []


def spawn(argv, name, env=None):
    f = open(os.path.join(out, name + ".log"), "wb")
    e = dict(os.environ)
    for k in ("HEALTHAGG_LISTEN", "HEALTHAGG_CONFIG", "HEALTHAGG_CONFIG_FILE"):
        e.pop(k, None)
    e.update(env or {})
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                         stderr=open(os.path.join(out, name + ".err"), "wb"), env=e)
    procs.append(p)
    return p


def wait_line(name, pattern, timeout):
    path = os.path.join(out, name + ".log")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            for line in f:
                m = re.search(pattern, line.decode("utf-8", "replace"))
                if m:
                    return m
        time.sleep(0.02)
    sys.exit(f"soak.sh: {name} did not print {pattern!r} within {timeout}s")


def http_get(port, path, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode("utf-8", "replace")
    finally:
        s.close()


def metrics(port):
    st, body = http_get(port, "/metrics")
    m = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            m[k] = float(v)
    return m


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def settled_fds(pid, window=1.0):
    low, deadline = None, time.monotonic() + window
    while time.monotonic() < deadline:
        n = fds(pid)
        low = n if low is None else min(low, n)
        time.sleep(0.01)
    return low


class Holder(threading.Thread):
    """Keeps `n` idle keep-alive connections open; reopens any the sidecar closes."""

    def __init__(self, port, n):
        super().__init__(daemon=True)
        self.port, self.n = port, n
        self.sel = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.open = self.reopened = self.failed = 0

    def connect(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
            self.open += 1
        except OSError:
            self.failed += 1

    def run(self):
        for _ in range(self.n):
            self.connect()
        while not self.stop.is_set():
            for key, _ in self.sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:  # cut by the sidecar (idle/request timeout): reopen
                    self.sel.unregister(s)
                    s.close()
                    self.open -= 1
                    self.reopened += 1
                    if not self.stop.is_set():
                        self.connect()
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.open = 0


def main():
    t_all = time.monotonic()
    app = spawn([testapp, "--port", "0", "--mode", f"flap:{flap_ms}"], "testapp")
    m = wait_line("testapp", r"PORTS (\d+) (\d+)", 5)
    app_port = int(m.group(1))
    cfg = {"checks": [{"name": "app", "url": f"http://127.0.0.1:{app_port}/healthz",
                       "interval": f"{INTERVAL_MS}ms", "timeout": f"{TIMEOUT_MS}ms",
                       "failure_threshold": 1, "success_threshold": 1}]}
    ha = spawn([healthagg, "serve", "--listen", "127.0.0.1:0"], "healthagg",
               {"HEALTHAGG_CONFIG": json.dumps(cfg)})
    m = wait_line("healthagg", r'"listen":"127\.0\.0\.1:(\d+)"', 5)
    port = int(m.group(1))
    time.sleep(2.5)  # first probes, first renders
    for path in ("/readyz", "/livez", "/health", "/metrics"):
        http_get(port, path)
    fd_before = settled_fds(ha.pid)
    rss_start = status_kb(ha.pid, "VmRSS")
    m0 = metrics(port)
    t0 = time.monotonic()
    tr0 = m0['healthagg_check_transitions_total{check="app"}']
    print(f"soak: {seconds}s, wrk {conns} connections on /readyz, {idle} idle connections, "
          f"app flapping every {flap_ms}ms; healthagg pid {ha.pid} on 127.0.0.1:{port}; "
          f"logs in {out}", flush=True)

    holder = Holder(port, idle)
    holder.start()
    wrk = spawn(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", "--latency",
                 f"http://127.0.0.1:{port}/readyz"], "wrk")
    samples = []  # (elapsed, rss_kb, fds)
    deadline = t0 + seconds + 30
    while wrk.poll() is None and time.monotonic() < deadline:
        if ha.poll() is not None:
            problems.append(f"healthagg exited with {ha.returncode} during the soak")
            break
        try:
            samples.append((time.monotonic() - t0, status_kb(ha.pid, "VmRSS"), fds(ha.pid)))
        except OSError:
            pass
        time.sleep(0.5)
    if wrk.poll() is None:
        wrk.kill()
        problems.append("wrk did not finish in time")
    wrk.wait()
    t1 = time.monotonic()
    alive = ha.poll() is None
    m1 = metrics(port) if alive else {}
    holder.stop.set()
    holder.join(10)

    wrk_out = open(os.path.join(out, "wrk.log")).read()
    def wrk_field(pat, cast=float, default=0):
        mm = re.search(pat, wrk_out)
        return cast(mm.group(1)) if mm else default
    reqs = wrk_field(r"(\d+) requests in", int)
    rps = wrk_field(r"Requests/sec:\s+([\d.]+)")
    non2xx = wrk_field(r"Non-2xx or 3xx responses: (\d+)", int)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", wrk_out)
    errs = tuple(int(x) for x in errs.groups()) if errs else (0, 0, 0, 0)
    p99 = re.search(r"99%\s+(\S+)", wrk_out)

    fd_after = None
    if alive:
        # Idle connections are gone once their peers closed: wait for the count to settle back.
        end = time.monotonic() + 15
        while time.monotonic() < end:
            fd_after = settled_fds(ha.pid, 0.5)
            if fd_after <= fd_before:
                break
        rss_end = status_kb(ha.pid, "VmRSS")
        hwm = status_kb(ha.pid, "VmHWM")
    else:
        rss_end = hwm = 0
    rss_max = max([s[1] for s in samples] + [rss_start, rss_end])
    fd_max = max([s[2] for s in samples] + [fd_before])
    half = [s[1] for s in samples if s[0] >= seconds / 2]
    rss_half = min(half) if half else rss_start
    rss_half_max = max(half) if half else rss_start

    elapsed = t1 - t0
    expected = elapsed * 1000 / flap_ms
    seen = (m1.get('healthagg_check_transitions_total{check="app"}', tr0) - tr0) if alive else 0
    log_lines = 0
    with open(os.path.join(out, "healthagg.log"), "rb") as f:
        for line in f:
            if b'"event":"transition"' in line:
                log_lines += 1
    lag = m1.get("healthagg_scheduler_lag_max_seconds", 0) * 1000
    skipped = m1.get("healthagg_probes_skipped_total", 0)

    exit_rc = None
    if alive:
        ha.send_signal(signal.SIGTERM)
        try:
            exit_rc = ha.wait(10)
        except subprocess.TimeoutExpired:
            problems.append("healthagg did not exit within 10s of SIGTERM")
    err = open(os.path.join(out, "healthagg.err"), "rb").read()

    print(f"wrk:          {reqs} requests in {elapsed:.0f}s, {rps:.0f} req/s, p99 "
          f"{p99.group(1) if p99 else '?'}, non-2xx {non2xx} (the app is down half the time), "
          f"socket errors connect/read/write/timeout {errs}")
    print(f"idle holder:  {idle} connections held, {holder.reopened} reopened after the sidecar "
          f"cut them, {holder.failed} failed to connect")
    print(f"memory:       max RSS {rss_max} kB (sampled), VmHWM {hwm} kB; RSS at start "
          f"{rss_start} kB, second half {rss_half}-{rss_half_max} kB, end {rss_end} kB")
    print(f"fds:          before {fd_before}, max during {fd_max}, after {fd_after}")
    print(f"transitions:  seen {seen:.0f} (log lines {log_lines} incl. startup), expected "
          f"{expected:.1f} ({elapsed:.0f}s / {flap_ms}ms)")
    print(f"scheduler:    max lag {lag:.1f} ms, probes skipped {skipped:.0f}")
    print(f"exit:         {'alive until SIGTERM, exit ' + str(exit_rc) if alive else 'CRASHED'}; "
          f"stderr {len(err)} bytes")

    if not alive:
        problems.append(f"healthagg crashed (exit {ha.returncode})")
    elif exit_rc != 0:
        problems.append(f"exit status {exit_rc} after SIGTERM, expected 0")
    if err:
        problems.append(f"healthagg wrote to stderr: {err[:300]!r}")
    if alive and fd_after is not None and fd_after > fd_before:
        problems.append(f"fd leak: {fd_before} before, {fd_after} after")
    if rss_half_max - rss_half > 1024:
        problems.append(f"RSS grew {rss_half_max - rss_half} kB in the second half of the run")
    if abs(seen - expected) > max(3, 0.05 * expected):
        problems.append(f"transitions: saw {seen:.0f}, expected {expected:.1f}")
    if errs[0] or errs[3]:
        problems.append(f"wrk connect errors {errs[0]} / timeouts {errs[3]}")
    if reqs == 0:
        problems.append("wrk made no requests")
    if holder.failed:
        problems.append(f"{holder.failed} idle connections could not connect")
    print(f"soak: {'FAIL: ' + '; '.join(problems) if problems else 'PASS'} "
          f"({time.monotonic() - t_all:.0f}s)", flush=True)
    return 1 if problems else 0


try:
    rc = main()
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
sys.exit(rc)
PY
