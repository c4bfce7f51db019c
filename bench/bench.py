#!/usr/bin/python3
"""bench/bench.py - the measurements behind bench/RESULTS.md (issue 5).

Run it through bench/run.sh, which installs the peers and builds the binaries first. Every
comparison is made in this one run, side by side, on 127.0.0.1 only, and every process this
script starts is in a process group of its own that is stopped (by its id) before it exits,
whatever happens. Python standard library only (Debian's /usr/bin/python3).

Sections (see issue 5):
  1 endpoint   wrk on /readyz and /health vs nginx `return 200`, A B A B rounds; plus callgrind
               instructions and strace syscalls per request on both servers (the profile)
  2 probe      `healthagg probe` vs curl, busybox wget and bench/minprobe: hyperfine wall time,
               callgrind instructions, peak RSS
  3 footprint  serve RSS with 10 checks idle and after 1M requests; binary sizes;
               blackbox-exporter idle RSS
  4 engine     callgrind instructions per HTTP and per TCP check cycle; 1,000 HTTP checks at 1 s
               for 30 s (CPU %, scheduler lag); blackbox-exporter probes per CPU-second
  5 detect     app down / back (HTTP 503, kill) -> `healthagg probe` exit code flips
"""
import argparse
import collections
import datetime
import json
import os
import platform
import random
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")

FULL = dict(wrk_d=10, wrk_rounds=3, hf_runs=500, hf_warmup=30, hf_rounds=5, cg_runs=3,
            rss_runs=15, idle_wait=5, footprint_requests=1_000_000, cycle_checks=20,
            cycle_warm=3, cycle_window=10, scale_checks=1000, scale_warm=3, scale_window=30,
            scale_cg_window=10, bb_d=10, bb_rounds=3, detect_trials=20, per_req_window=5,
            both_binaries=True, quiet_budget=180)
QUICK = dict(wrk_d=2, wrk_rounds=1, hf_runs=30, hf_warmup=5, hf_rounds=1, cg_runs=1,
             rss_runs=3, idle_wait=2, footprint_requests=100_000, cycle_checks=20,
             cycle_warm=2, cycle_window=2, scale_checks=1000, scale_warm=2, scale_window=5,
             scale_cg_window=2, bb_d=2, bb_rounds=1, detect_trials=2, per_req_window=1,
             both_binaries=False, quiet_budget=0)

T0 = time.monotonic()
LOG = None


def log(msg):
    line = "[%6.1fs] %s" % (time.monotonic() - T0, msg)
    print(line, file=sys.stderr, flush=True)
    if LOG:
        LOG.write(line + "\n")
        LOG.flush()


# --- processes ------------------------------------------------------------------------------

PROCS = []


def spawn(argv, **kw):
    """Starts argv in a new session (its own process group) and remembers it for cleanup."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    PROCS.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    """Stops a process this script started, and its group (nginx's worker, valgrind's child)."""
    if p is None:
        return
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    else:  # the leader is gone; make sure nothing of its group lingers
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if p in PROCS:
        PROCS.remove(p)


def stop_all():
    for p in list(PROCS):
        stop(p, timeout=5)


def run(argv, timeout, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(argv, timeout=timeout, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=3.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return None, ""


def wait_until(pred, timeout, step=0.02, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    raise RuntimeError("timed out after %.1fs waiting for %s" % (timeout, what))


def proc_mem(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])  # kB
    return out


def machine_busy(secs=1.0):
    """Share of all CPUs busy (any process) over `secs`, from /proc/stat: other work's noise."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = snap()
    time.sleep(secs)
    t1, i1 = snap()
    return 100.0 * (1 - (i1 - i0) / max(t1 - t0, 1))


QUIET = {"budget": 0.0, "waited": 0.0, "gave_up": 0}


def wait_quiet(limit=20.0, busy_max=25.0):
    """Before a timed measurement: wait (within the run's budget) until other work leaves the
    CPUs mostly idle. Measurements still alternate; this only avoids starting one in a storm."""
    end = time.monotonic() + min(limit, max(0.0, QUIET["budget"] - QUIET["waited"]))
    t0 = time.monotonic()
    while True:
        b = machine_busy(0.5)
        if b <= busy_max:
            break
        if time.monotonic() >= end:
            QUIET["gave_up"] += 1
            break
    QUIET["waited"] += time.monotonic() - t0
    return b


def proc_cpu(pid):
    """utime+stime of the whole process (all threads), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d))
            except OSError:
                pass
    return kids


def parse_metrics(text):
    m = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        k, _, v = line.rpartition(" ")
        try:
            m[k] = float(v)
        except ValueError:
            pass
    return m


def metric_sum(m, name):
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def hist_window(m0, m1, name):
    """Quantiles of a Prometheus histogram over the window between two scrapes (bucket deltas),
    interpolated inside the bucket as histogram_quantile() does; also the bucket's upper bound."""
    def buckets(m):
        out = {}
        for k, v in m.items():
            mm = re.match(re.escape(name) + r'_bucket\{le="([^"]+)"\}$', k)
            if mm:
                out[float("inf") if mm.group(1) == "+Inf" else float(mm.group(1))] = v
        return out
    b0, b1 = buckets(m0), buckets(m1)
    if not b1:
        return None
    les = sorted(b1)
    cum = [b1[le] - b0.get(le, 0) for le in les]
    total = cum[-1]
    res = {"count": total, "buckets": {("+Inf" if le == float("inf") else "%g" % le): c for le, c in zip(les, cum)}}
    s0, s1 = m0.get(name + "_sum", 0), m1.get(name + "_sum", 0)
    res["mean"] = (s1 - s0) / total if total else float("nan")
    for q in (0.5, 0.9, 0.99, 0.999):
        want = q * total
        for i, le in enumerate(les):
            if cum[i] >= want and total:
                lo = les[i - 1] if i else 0.0
                below = cum[i - 1] if i else 0
                inside = cum[i] - below
                if le == float("inf"):
                    val = lo
                else:
                    val = lo + (le - lo) * ((want - below) / inside if inside else 1.0)
                res["p%g" % (q * 100)] = val
                res["p%g_le" % (q * 100)] = le
                break
        else:
            res["p%g" % (q * 100)] = float("nan")
            res["p%g_le" % (q * 100)] = float("nan")
    return res


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# --- servers --------------------------------------------------------------------------------

class Nginx:
    """nginx with its own prefix, pid, conf and error log in a temp dir; `return 200` for any
    path. master_process off runs a single process (used under callgrind)."""

    def __init__(self, tmp, port, master=True):
        self.dir = tempfile.mkdtemp(prefix="nginx.", dir=tmp)
        self.port = port
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""user root;
worker_processes 1;
%s
daemon off;
pid %s/nginx.pid;
error_log %s/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 10000;
    client_body_temp_path %s/body;
    server {
        listen 127.0.0.1:%d;
        location / { default_type text/plain; return 200 "ok\\n"; }
    }
}
""" % ("" if master else "master_process off;", self.dir, self.dir, self.dir, port))
        self.argv = ["nginx", "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")]
        self.proc = None

    def start(self, wrap=()):
        self.proc = spawn(list(wrap) + self.argv, stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(self.dir, "stderr.log"), "w"))
        wait_until(lambda: http_get("http://127.0.0.1:%d/" % self.port)[0] == 200,
                   60 if wrap else 10, what="nginx on port %d" % self.port)
        return self

    def worker_pid(self):
        kids = children(self.proc.pid)
        return kids[0] if kids else self.proc.pid

    def stop(self):
        stop(self.proc, signal.SIGQUIT if self.proc and self.proc.poll() is None else signal.SIGTERM)


class Serve:
    """healthagg serve; `args` are its flags after --listen."""

    def __init__(self, binary, port, args, logdir, name="serve", wrap=()):
        self.binary, self.port, self.name = binary, port, name
        self.argv = list(wrap) + [binary, "serve", "--listen", "127.0.0.1:%d" % port] + list(args)
        self.logpath = os.path.join(logdir, "%s-%d.log" % (name, port))
        self.proc = None
        self.wrapped = bool(wrap)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def start(self, ready=True):
        self.proc = spawn(self.argv, stdout=open(self.logpath, "w"), stderr=subprocess.STDOUT)
        t = 120 if self.wrapped else 10
        wait_until(lambda: http_get(self.url("/livez"))[0] == 200, t, what=self.name + " /livez")
        if ready:
            wait_until(lambda: http_get(self.url("/readyz"))[0] == 200, t, what=self.name + " /readyz")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def metrics(self):
        code, body = http_get(self.url("/metrics"), timeout=30)
        if code != 200:
            raise RuntimeError("%s /metrics answered %s" % (self.name, code))
        return parse_metrics(body)

    def stop(self):
        stop(self.proc, signal.SIGTERM, timeout=60 if self.wrapped else 10)

    def ensure(self):
        """Restarts the daemon if something outside this script ended it (it has happened: a
        concurrent test's kill by name); the restart is logged and counted in the report."""
        if self.proc and self.proc.poll() is None:
            return
        rc = self.proc.returncode if self.proc else None
        log("  !! %s (pid %s) is gone (exit %s) - not stopped by this script; restarting it" % (
            self.name, self.proc.pid if self.proc else "?", rc))
        RESTARTS.append("%s pid %s exit %s at %.0fs" % (self.name, self.proc.pid if self.proc else "?",
                                                     rc, time.monotonic() - T0))
        if self.proc in PROCS:
            PROCS.remove(self.proc)
        self.start()


RESTARTS = []


class Blackbox:
    def __init__(self, tmp, port):
        self.dir = tempfile.mkdtemp(prefix="blackbox.", dir=tmp)
        self.port = port
        self.conf = os.path.join(self.dir, "blackbox.yml")
        with open(self.conf, "w") as f:
            f.write("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
                    "    http:\n      preferred_ip_protocol: ip4\n")
        self.proc = None

    def start(self):
        self.proc = spawn(["prometheus-blackbox-exporter", "--config.file=" + self.conf,
                           "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
                          stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(self.dir, "stderr.log"), "w"))
        wait_until(lambda: http_get("http://127.0.0.1:%d/-/healthy" % self.port)[0] == 200, 15,
                   what="blackbox exporter")
        return self

    def probe_url(self, target):
        return "http://127.0.0.1:%d/probe?target=%s&module=http_2xx" % (self.port, target)

    def stop(self):
        stop(self.proc)


# --- tools ----------------------------------------------------------------------------------

def wrk(url, threads, conns, secs, script=None):
    argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs, "--latency", "--timeout", "5s"]
    if script:
        argv += ["-s", script]
    argv.append(url)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = run(argv, timeout=secs + 60, capture_output=True, text=True).stdout
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)

    def lat(label):
        m = re.search(r"^\s+%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(label), out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(m.group(1)) if m else 0.0, "p50_ms": lat("50%"), "p99_ms": lat("99%"),
            "requests": int(n.group(1)) if n else 0,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(int(x) for x in errs.groups()) if errs else 0,
            "errors_text": errs.group(0) if errs else "",
            # wrk's own CPU, as a share of the cores its threads can use: near 100 % means the
            # load generator, not the server, set the pace
            "client_cpu_pct": 100.0 * client_cpu / (secs * threads)}


def cg_parse(path):
    """Parses a callgrind output file: total Ir, self and inclusive Ir per function, call counts."""
    names = {}
    self_ir = collections.Counter()
    incl_ir = collections.Counter()
    calls = collections.Counter()
    total = None
    fn = cfn = None
    after_calls = False

    def name(spec):
        spec = spec.strip()
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), "?")

    with open(path, errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if after_calls:
                    incl_ir[fn] += cost
                    after_calls = False
                else:
                    self_ir[fn] += cost
                    incl_ir[fn] += cost
            elif line.startswith("fn="):
                fn = name(line[3:])
            elif line.startswith("cfn="):
                cfn = name(line[4:])
            elif line.startswith("calls="):
                calls[cfn] += int(line[6:].split()[0])
                after_calls = True
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    if total is None:
        total = sum(self_ir.values())
    return {"total": total, "self": self_ir, "incl": incl_ir, "calls": calls}


def cg_top(cg, n=15):
    rows = []
    for f, ir in cg["self"].most_common(n):
        rows.append((f, ir, cg["incl"].get(f, ir), cg["calls"].get(f, 0)))
    return rows


def callgrind_cmd(argv, outfile, timeout=120):
    r = run(["valgrind", "--tool=callgrind", "-q", "--callgrind-out-file=" + outfile] + argv,
            timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return r.returncode, cg_parse(outfile)["total"]


def callgrind_control(pid, what, timeout=60):
    run(["callgrind_control", what, str(pid)], timeout=timeout, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)


def newest_dump(prefix, before):
    """The callgrind dump file written by `callgrind_control -d` (prefix.pid.N)."""
    d = os.path.dirname(prefix)
    base = os.path.basename(prefix)
    cands = [os.path.join(d, f) for f in os.listdir(d) if f.startswith(base)]
    cands = [c for c in cands if c not in before and re.search(r"\.\d+$", c)]
    return max(cands, key=os.path.getmtime) if cands else None


def window_callgrind(proc_pid, prefix, window_fn):
    """Zeroes the counters of a process running under callgrind, runs window_fn(), dumps, and
    returns (parsed dump, window_fn's result)."""
    d = os.path.dirname(prefix)
    before = set(os.path.join(d, f) for f in os.listdir(d))
    callgrind_control(proc_pid, "-z")
    res = window_fn()
    callgrind_control(proc_pid, "-d")
    dump = None
    end = time.monotonic() + 30
    while time.monotonic() < end:
        dump = newest_dump(prefix, before)
        if dump and os.path.getsize(dump) > 0:
            time.sleep(0.3)  # let the write finish
            break
        time.sleep(0.1)
    if not dump:
        raise RuntimeError("callgrind dump not found for " + prefix)
    return cg_parse(dump), res, dump


def strace_count(pid, secs_fn):
    """Counts the syscalls of pid (all threads) while secs_fn() runs: {syscall: calls}."""
    out = tempfile.mktemp(prefix="strace.", dir=OUTDIR)
    p = spawn(["strace", "-c", "-f", "-q", "-o", out, "-p", str(pid)], stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    res = secs_fn()
    stop(p, signal.SIGINT, timeout=20)
    counts = {}
    try:
        with open(out) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                    try:
                        counts[parts[-1]] = int(parts[3])
                    except ValueError:
                        pass
    except OSError:
        pass
    return counts, res


# --- the run --------------------------------------------------------------------------------

OUTDIR = None


class Env:
    pass


def section_endpoint(env, P):
    """1: wrk on /readyz and /health, healthagg vs nginx, alternated."""
    res = {"runs": [], "conf": []}
    contenders = [("nginx", lambda ep: "http://127.0.0.1:%d%s" % (env.nginx.port, ep), env.nginx.worker_pid),
                  ("healthagg", lambda ep: env.serve.url(ep), lambda: env.serve.pid)]
    if env.serve_static:
        contenders.append(("healthagg-static", lambda ep: env.serve_static.url(ep), lambda: env.serve_static.pid))
    for threads, conns in ((1, 50), (2, 200)):
        for ep in ("/readyz", "/health"):
            for r in range(P["wrk_rounds"]):
                for who, urlf, pidf in contenders:
                    if who == "healthagg-static" and not (ep == "/readyz"):
                        continue
                    env.serve.ensure()
                    if env.serve_static:
                        env.serve_static.ensure()
                    busy = wait_quiet()
                    pid = pidf()
                    c0 = proc_cpu(pid)
                    w = wrk(urlf(ep), threads, conns, P["wrk_d"])
                    c1 = proc_cpu(pid)
                    w.update(who=who, ep=ep, threads=threads, conns=conns, round=r + 1, busy_before=busy,
                             cpu_us_per_req=1e6 * (c1 - c0) / max(w["requests"], 1))
                    res["runs"].append(w)
                    w["server_cpu_pct"] = 100.0 * (c1 - c0) / P["wrk_d"]
                    log("  wrk -t%d -c%d %-8s %-16s round %d: %9.0f req/s  p99 %6.2f ms  %5.2f CPU-us/req "
                        "server %3.0f%% wrk %3.0f%% (others %2.0f%% before)%s" % (
                        threads, conns, ep, who, r + 1, w["rps"], w["p99_ms"], w["cpu_us_per_req"],
                        w["server_cpu_pct"], w["client_cpu_pct"], busy,
                        "  (non-2xx %d, socket errors: %s)" % (w["non2xx"], w["errors_text"])
                        if w["non2xx"] or w["socket_errors"] else ""))
    # Per-request cost, the stable numbers: callgrind instructions and strace syscalls per request.
    res["per_request"] = per_request_costs(env, P)
    return res


def per_request_costs(env, P):
    out = {}
    secs = P["per_req_window"]
    # healthagg under callgrind
    port = free_port()
    prefix = os.path.join(OUTDIR, "cg-serve-requests")
    s = Serve(env.ha, port, env.serve_args, OUTDIR, "serve-cg",
              wrap=["valgrind", "--tool=callgrind", "-q", "--callgrind-out-file=%s.%%p" % prefix])
    s.start()
    try:
        vpid = s.pid
        cg, w, dump = window_callgrind(vpid, prefix, lambda: wrk(s.url("/readyz"), 1, 50, secs))
        out["healthagg"] = {"ir_per_req": cg["total"] / max(w["requests"], 1), "requests": w["requests"],
                            "top": cg_top(cg), "dump": dump}
    finally:
        s.stop()
    # nginx under callgrind (single process)
    ng = Nginx(env.tmp, free_port(), master=False)
    prefix = os.path.join(OUTDIR, "cg-nginx-requests")
    ng.start(wrap=["valgrind", "--tool=callgrind", "-q", "--callgrind-out-file=%s.%%p" % prefix])
    try:
        cg, w, dump = window_callgrind(ng.proc.pid, prefix,
                                       lambda: wrk("http://127.0.0.1:%d/readyz" % ng.port, 1, 50, secs))
        out["nginx"] = {"ir_per_req": cg["total"] / max(w["requests"], 1), "requests": w["requests"],
                        "top": cg_top(cg), "dump": dump}
    finally:
        stop(ng.proc, signal.SIGTERM, timeout=60)
    # syscalls per request (strace -c on the running servers)
    for who, pid, url in (("healthagg", env.serve.pid, env.serve.url("/readyz")),
                          ("nginx", env.nginx.worker_pid(), "http://127.0.0.1:%d/readyz" % env.nginx.port)):
        counts, w = strace_count(pid, lambda: wrk(url, 1, 50, secs))
        n = max(w["requests"], 1)
        out[who]["syscalls_per_req"] = sum(counts.values()) / n
        out[who]["syscalls"] = {k: v / n for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:8]}
    for who in ("healthagg", "nginx"):
        log("  per request %-10s %8.0f Ir  %5.2f syscalls  (%s)" % (
            who, out[who]["ir_per_req"], out[who].get("syscalls_per_req", 0),
            ", ".join("%s %.2f" % kv for kv in out[who].get("syscalls", {}).items())))
    return out


def section_probe(env, P):
    """2: probe cost: hyperfine wall time, callgrind instructions, peak RSS."""
    url = env.serve.url("/readyz")
    cmds = []
    if env.ha_static:
        cmds.append(("healthagg probe (static musl)", [env.ha_static, "probe", "--url", url]))
    cmds.append(("healthagg probe (glibc Release)", [env.ha, "probe", "--url", url]))
    cmds.append(("curl -fsS", ["curl", "-fsS", url]))
    cmds.append(("busybox wget -q", ["busybox", "wget", "-q", "-O", "/dev/null", url]))
    cmds.append(("minprobe (static musl)", [env.minprobe, str(env.serve.port), "/readyz"]))
    if env.minprobe_glibc:
        cmds.append(("minprobe (static glibc)", [env.minprobe_glibc, str(env.serve.port), "/readyz"]))
    for label, argv in cmds:
        r = run(argv, timeout=10, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError("%s exited %d against a ready sidecar" % (label, r.returncode))
    res = {label: {"argv": argv, "times": []} for label, argv in cmds}
    order = list(cmds)
    for rnd in range(P["hf_rounds"]):
        wait_quiet()
        js = os.path.join(OUTDIR, "hyperfine-%d.json" % rnd)
        argv = ["hyperfine", "-N", "--style", "none", "--warmup", str(P["hf_warmup"]), "--runs",
                str(max(P["hf_runs"] // P["hf_rounds"], 10)), "--export-json", js]
        argv += [" ".join(a) for _, a in order]
        run(argv, timeout=600, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        with open(js) as f:
            data = json.load(f)
        for (label, _), rr in zip(order, data["results"]):
            res[label]["times"] += rr["times"]
        order = order[1:] + order[:1]  # rotate: each command takes its turn first
    for label, argv in cmds:
        t = res[label]["times"]
        res[label]["mean_ms"] = statistics.mean(t) * 1e3
        res[label]["median_ms"] = median(t) * 1e3
        res[label]["stdev_ms"] = statistics.pstdev(t) * 1e3
        irs = []
        for i in range(P["cg_runs"]):
            rc, ir = callgrind_cmd(argv, os.path.join(OUTDIR, "cg-probe.out"))
            irs.append(ir)
        res[label]["ir"] = median(irs)
        rss = []
        for i in range(P["rss_runs"]):
            tf = os.path.join(OUTDIR, "time.out")
            run(["/usr/bin/time", "-f", "%M %R", "-o", tf] + argv, timeout=10,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(tf) as f:
                kb, faults = f.read().strip().splitlines()[-1].split()
                rss.append((int(kb), int(faults)))
        res[label]["peak_rss_kb"] = median([x[0] for x in rss])
        res[label]["minor_faults"] = median([x[1] for x in rss])
        log("  %-32s mean %6.3f ms  median %6.3f ms  %10.0f Ir  peak RSS %6d kB" % (
            label, res[label]["mean_ms"], res[label]["median_ms"], res[label]["ir"],
            res[label]["peak_rss_kb"]))
        del res[label]["times"]
    # where the probe's instructions go: the static musl code with symbols when bench/run.sh could
    # build it (same sources and flags as deploy/build-static.sh, not stripped), else Release
    if env.ha_static_syms:
        f = os.path.join(OUTDIR, "cg-probe-static-syms.out")
        callgrind_cmd([env.ha_static_syms, "probe", "--url", url], f)
        cg = cg_parse(f)
        res["_profile"] = {"binary": "static musl, unstripped build of the working tree", "total": cg["total"],
                           "top": cg_top(cg, 16)}
    else:
        f = os.path.join(OUTDIR, "cg-probe-release.out")
        callgrind_cmd([env.ha, "probe", "--url", url], f)
        cg = cg_parse(f)
        res["_profile"] = {"binary": "glibc Release (mostly the dynamic loader)", "total": cg["total"],
                           "top": cg_top(cg, 16)}
    res["_strace"] = {}
    for label, argv in cmds:
        if label.startswith("healthagg probe (static") or label.startswith("minprobe (static musl"):
            r = run(["strace", "-f", "-qq"] + argv, timeout=20, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, text=True)
            calls = [ln.split("(")[0] for ln in r.stderr.splitlines() if re.match(r"^[a-z_0-9]+\(", ln)]
            res["_strace"][label] = calls
    f = os.path.join(OUTDIR, "cg-minprobe.out")
    callgrind_cmd([env.minprobe_dbg, str(env.serve.port), "/readyz"], f)
    res["_profile_minprobe"] = cg_top(cg_parse(f), 8)
    return res


def loop_stalls(port, secs, every=0.02):
    """Latency (ms) of GET /livez on one keep-alive connection, every 20 ms for `secs`: how long
    the daemon's loop makes a request wait. A timer due while the loop is busy fires as late, so
    this is an outside proxy for scheduling lag (the daemon exports only the max)."""
    import http.client
    out = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    end = time.monotonic() + secs
    nxt = time.monotonic()
    while time.monotonic() < end:
        t = time.perf_counter()
        try:
            conn.request("GET", "/livez")
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            continue
        out.append((time.perf_counter() - t) * 1e3)
        nxt += every
        time.sleep(max(0.0, nxt - time.monotonic()))
    conn.close()
    return out


def checks_config(path, listen_port, n, url_fn, interval, timeout):
    cfg = {"listen": "127.0.0.1:%d" % listen_port,
           "defaults": {"interval": interval, "timeout": timeout},
           "checks": [{"name": "c%04d" % i, "url": url_fn(i)} for i in range(n)]}
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def section_footprint(env, P):
    """3: RSS of serve with 10 checks idle and after 1M requests; binary sizes; blackbox idle RSS."""
    res = {"serve": {}}
    mix = os.path.join(OUTDIR, "mix.lua")
    with open(mix, "w") as f:
        f.write('local paths = {"/readyz", "/readyz", "/readyz", "/readyz", "/readyz", "/readyz",\n'
                '               "/readyz", "/livez", "/health", "/metrics"}\n'
                "local i = 0\n"
                "request = function()\n"
                "  i = i % #paths + 1\n"
                '  return wrk.format("GET", paths[i])\n'
                "end\n")
    bins = [("static musl", env.ha_static)] if env.ha_static else []
    if P["both_binaries"] or not bins:
        bins.append(("glibc Release", env.ha))
    for label, binary in bins:
        port = free_port()
        cfg = checks_config(os.path.join(env.tmp, "ten.json"), port, 10,
                            lambda i: "http://127.0.0.1:%d/c%d" % (env.nginx.port, i), "1s", "500ms")
        s = Serve(binary, port, ["--config", cfg], OUTDIR, "serve-footprint").start()
        try:
            time.sleep(P["idle_wait"])
            idle = proc_mem(s.pid)
            done, rounds, rate = 0, 0, 0.0
            while done < P["footprint_requests"] and rounds < 20:
                left = P["footprint_requests"] - done
                # a 2 s chunk measures the rate, then chunks sized to land just past the target
                secs = 2 if rate == 0 else max(1, min(30, int(left / rate + 0.999)))
                w = wrk(s.url("/readyz"), 2, 200, secs, script=mix)
                done += w["requests"]
                rate = max(w["rps"], 1000.0)
                rounds += 1
            loaded = proc_mem(s.pid)
            res["serve"][label] = {"idle": idle, "after": loaded, "requests": done}
            log("  serve (%s) 10 checks: idle VmRSS %d kB (HWM %d); after %d requests VmRSS %d kB (HWM %d)" % (
                label, idle["VmRSS"], idle["VmHWM"], done, loaded["VmRSS"], loaded["VmHWM"]))
        finally:
            s.stop()
    res["size"] = {}
    if env.ha_static:
        res["size"]["healthagg (static musl, stripped)"] = os.path.getsize(env.ha_static)
    stripped = os.path.join(OUTDIR, "healthagg-release-stripped")
    shutil.copy(env.ha, stripped)
    run(["strip", stripped], timeout=30)
    res["size"]["healthagg (glibc Release, dynamic, stripped)"] = os.path.getsize(stripped)
    res["size"]["prometheus-blackbox-exporter"] = os.path.getsize(shutil.which("prometheus-blackbox-exporter"))
    res["size"]["nginx (dynamic)"] = os.path.getsize(shutil.which("nginx"))
    # blackbox exporter idle, and nginx's worker for reference
    env.blackbox = Blackbox(env.tmp, free_port()).start()
    time.sleep(P["idle_wait"])
    res["blackbox_idle"] = proc_mem(env.blackbox.proc.pid)
    res["nginx_worker"] = proc_mem(env.nginx.worker_pid())
    log("  blackbox idle VmRSS %d kB; nginx worker VmRSS %d kB" % (
        res["blackbox_idle"]["VmRSS"], res["nginx_worker"]["VmRSS"]))
    return res


def section_engine(env, P):
    """4: per-cycle instructions; 1,000 checks at 1 s; blackbox probes per CPU-second."""
    res = {"cycle": {}}
    n = P["cycle_checks"]
    for kind, url_fn in (("http", lambda i: "http://127.0.0.1:%d/" % env.nginx.port),
                         ("tcp", lambda i: "tcp://127.0.0.1:%d" % env.nginx.port)):
        for label, binary in ([("glibc Release", env.ha)] +
                              ([("static musl", env.ha_static)] if env.ha_static and P["both_binaries"] else [])):
            port = free_port()
            cfg = checks_config(os.path.join(env.tmp, "cycle-%s.json" % kind), port, n, url_fn,
                                "100ms", "90ms")
            prefix = os.path.join(OUTDIR, "cg-cycle-%s-%s" % (kind, label.split()[0]))
            s = Serve(binary, port, ["--config", cfg], OUTDIR, "serve-cycle",
                      wrap=["valgrind", "--tool=callgrind", "-q",
                            "--callgrind-out-file=%s.%%p" % prefix])
            s.start()
            try:
                time.sleep(P["cycle_warm"])
                m0 = s.metrics()

                def window():
                    time.sleep(P["cycle_window"])
                    return None

                cg, _, dump = window_callgrind(s.pid, prefix, window)
                m1 = s.metrics()
            finally:
                s.stop()
            probes = metric_sum(m1, "healthagg_check_probes_total") - metric_sum(m0, "healthagg_check_probes_total")
            fails = metric_sum(m1, "healthagg_check_failures_total") - metric_sum(m0, "healthagg_check_failures_total")
            exact = cg["calls"].get("ha_state_apply", 0)
            cycles = exact if exact else probes
            r = {"ir_total": cg["total"], "cycles": cycles, "cycles_exact": bool(exact),
                 "probes_metric": probes, "failures": fails, "ir_per_cycle": cg["total"] / max(cycles, 1),
                 "dump": dump}
            if exact:
                r["top"] = cg_top(cg, 15)
            res["cycle"]["%s/%s" % (kind, label)] = r
            log("  %s check cycle (%s): %.0f Ir per cycle over %d cycles (%s; %d failed)" % (
                kind, label, r["ir_per_cycle"], cycles,
                "ha_state_apply calls" if exact else "probes_total delta", fails))

    # 1,000 HTTP checks at 1 s against nginx
    binary, label = (env.ha_static, "static musl") if env.ha_static else (env.ha, "glibc Release")
    # the stall proxy's floor on this machine: the same binary with one check
    s = Serve(binary, free_port(), env.serve_args, OUTDIR, "serve-baseline").start()
    try:
        time.sleep(1)
        base = loop_stalls(s.port, min(P["scale_window"], 10))
    finally:
        s.stop()
    nchk = P["scale_checks"]
    bb = env.blackbox
    target = "http://127.0.0.1:%d/" % env.nginx.port
    code, body = http_get(bb.probe_url(target))
    if code != 200 or "probe_success 1" not in body:
        raise RuntimeError("blackbox exporter probe failed: %s %s" % (code, body[:300]))
    # Rounds alternate: healthagg (a fresh serve with 1,000 checks, warm-up, then a window),
    # then blackbox-exporter under wrk; each round's ratio compares two back-to-back runs.
    rounds = P["bb_rounds"]
    win = P["scale_window"] / rounds
    sums = {"m0": collections.Counter(), "m1": collections.Counter()}
    probes = cpu = dt = fails = skipped = ngcpu = 0.0
    stalls, runs, ha_rounds = [], [], []
    lag_start = lag_warm = lag_end = 0.0
    mem = {}
    for r in range(rounds):
        wait_quiet()
        port = free_port()
        cfg = checks_config(os.path.join(env.tmp, "scale.json"), port, nchk,
                            lambda i: "http://127.0.0.1:%d/c%d" % (env.nginx.port, i), "1s", "500ms")
        s = Serve(binary, port, ["--config", cfg], OUTDIR, "serve-scale").start()
        try:
            if r == 0:
                lag_start = 1e3 * metric_sum(s.metrics(), "healthagg_scheduler_lag_max_seconds")
            time.sleep(P["scale_warm"])
            ngw = env.nginx.worker_pid()
            m0, c0, n0, t0 = s.metrics(), proc_cpu(s.pid), proc_cpu(ngw), time.monotonic()
            stalls += loop_stalls(s.port, win)
            m1, c1, n1, t1 = s.metrics(), proc_cpu(s.pid), proc_cpu(ngw), time.monotonic()
            mem = proc_mem(s.pid)
        finally:
            s.stop()
        if r == 0:
            sums["startup"] = m0
        for k in m0:
            if k.startswith("healthagg_scheduler_lag_seconds"):
                sums["m0"][k] += m0[k]
                sums["m1"][k] += m1.get(k, 0)
        lag_warm = max(lag_warm, 1e3 * metric_sum(m0, "healthagg_scheduler_lag_max_seconds"))
        lag_end = max(lag_end, 1e3 * metric_sum(m1, "healthagg_scheduler_lag_max_seconds"))
        p = metric_sum(m1, "healthagg_check_probes_total") - metric_sum(m0, "healthagg_check_probes_total")
        probes += p
        cpu += c1 - c0
        dt += t1 - t0
        ngcpu += n1 - n0
        fails += metric_sum(m1, "healthagg_check_failures_total") - metric_sum(m0, "healthagg_check_failures_total")
        skipped += metric_sum(m1, "healthagg_probes_skipped_total") - metric_sum(m0, "healthagg_probes_skipped_total")
        ha_rounds.append({"probes": p, "cpu_s": c1 - c0, "window_s": t1 - t0,
                          "probes_per_cpu_s": p / (c1 - c0) if c1 > c0 else float("inf")})
        log("  round %d: %d checks @1s (%s): %.0f probes/s, CPU %.2f%%, %.0f probes/CPU-s" % (
            r + 1, nchk, label, p / (t1 - t0), 100 * (c1 - c0) / (t1 - t0), ha_rounds[-1]["probes_per_cpu_s"]))
        wait_quiet()
        b0, bt0 = proc_cpu(bb.proc.pid), time.monotonic()
        w = wrk(bb.probe_url(target), 1, 16, P["bb_d"])
        b1, bt1 = proc_cpu(bb.proc.pid), time.monotonic()
        runs.append({"probes_per_s": w["rps"], "cpu_s": b1 - b0, "probes": w["requests"],
                     "probes_per_cpu_s": w["requests"] / (b1 - b0) if b1 > b0 else float("inf"),
                     "cpu_pct": 100 * (b1 - b0) / (bt1 - bt0), "errors": w["non2xx"] + w["socket_errors"]})
        log("  round %d: blackbox %.0f probes/s, CPU %.0f%%, %.0f probes/CPU-s" % (
            r + 1, runs[-1]["probes_per_s"], runs[-1]["cpu_pct"], runs[-1]["probes_per_cpu_s"]))
    res["scale"] = {
        "binary": label, "checks": nchk, "window_s": dt, "rounds": ha_rounds, "probes": probes,
        "probes_per_s": probes / dt, "cpu_s": cpu, "cpu_pct": 100 * cpu / dt,
        "probes_per_cpu_s": probes / cpu if cpu > 0 else float("inf"),
        "ratio_rounds": [h["probes_per_cpu_s"] / b["probes_per_cpu_s"] for h, b in zip(ha_rounds, runs)],
        "failures": fails, "skipped": skipped,
        "lag_max_ms_start": lag_start, "lag_max_ms_warm": lag_warm, "lag_max_ms_end": lag_end,
        "lag_metrics": sorted(set(re.sub(r"(_bucket)?\{.*", "", k) for k in m1 if "lag" in k)),
        "lag_hist": hist_window(sums["m0"], sums["m1"], "healthagg_scheduler_lag_seconds"),
        "lag_hist_startup": hist_window({}, sums.get("startup", {}), "healthagg_scheduler_lag_seconds"),
        "nginx_cpu_pct": 100 * ngcpu / dt, "rss": mem,
        "livez_ms": {"n": len(stalls), "p50": pct(stalls, 0.5), "p99": pct(stalls, 0.99),
                     "max": max(stalls) if stalls else float("nan")},
        "livez_ms_1check": {"n": len(base), "p50": pct(base, 0.5), "p99": pct(base, 0.99),
                            "max": max(base) if base else float("nan")}}
    res["blackbox"] = {"runs": runs, "probes_per_s": median([x["probes_per_s"] for x in runs]),
                       "probes_per_cpu_s": median([x["probes_per_cpu_s"] for x in runs]),
                       "after_load": proc_mem(bb.proc.pid)}
    bb.stop()
    sc = res["scale"]
    log("  %d checks @1s (%s): %.0f probes/s, CPU %.2f%%, %.0f probes/CPU-s (%.1fx blackbox, median of rounds), "
        "lag max %.1f ms (%.1f once ready), %d failed, %d skipped; /livez p50 %.2f p99 %.2f ms (1 check: %.2f, %.2f)" % (
            nchk, label, sc["probes_per_s"], sc["cpu_pct"], sc["probes_per_cpu_s"], median(sc["ratio_rounds"]),
            sc["lag_max_ms_end"], sc["lag_max_ms_start"], sc["failures"], sc["skipped"],
            sc["livez_ms"]["p50"], sc["livez_ms"]["p99"], sc["livez_ms_1check"]["p50"], sc["livez_ms_1check"]["p99"]))

    # The same load under callgrind (Release, symbols): where the instructions go at scale.
    port = free_port()
    cfg = checks_config(os.path.join(env.tmp, "scale-cg.json"), port, nchk,
                        lambda i: "http://127.0.0.1:%d/c%d" % (env.nginx.port, i), "1s", "500ms")
    prefix = os.path.join(OUTDIR, "cg-scale")
    s = Serve(env.ha, port, ["--config", cfg], OUTDIR, "serve-scale-cg",
              wrap=["valgrind", "--tool=callgrind", "-q", "--callgrind-out-file=%s.%%p" % prefix])
    s.start()
    try:
        time.sleep(P["scale_warm"])
        cg, _, dump = window_callgrind(s.pid, prefix, lambda: time.sleep(P["scale_cg_window"]))
    finally:
        s.stop()
    cyc = cg["calls"].get("ha_state_apply", 0)
    res["scale_profile"] = {"ir_total": cg["total"], "cycles": cyc,
                            "ir_per_cycle": cg["total"] / max(cyc, 1), "top": cg_top(cg, 15), "dump": dump}
    log("  %d checks under callgrind (Release): %.0f Ir per cycle over %d cycles" % (
        nchk, res["scale_profile"]["ir_per_cycle"], cyc))

    return res


class TestApp:
    def __init__(self, binary, port=0):
        self.binary, self.port = binary, port

    def start(self):
        self.proc = spawn([self.binary, "--port", str(self.port)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
        r, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if r else ""
        m = re.match(r"PORTS (\d+) (\d+)", line)
        if not m:
            raise RuntimeError("testapp did not start: %r" % line)
        self.port, self.control = int(m.group(1)), int(m.group(2))
        return self

    def ctl(self, path):
        code, body = http_get("http://127.0.0.1:%d%s" % (self.control, path), timeout=2)
        if code != 200:
            raise RuntimeError("testapp control %s answered %s" % (path, code))
        return body

    def count(self):
        return int(self.ctl("/count").strip())


def section_detect(env, P):
    """5: detection latency, interval 1 s, timeout 500 ms, failure_threshold 1."""
    interval = 1.0
    app = TestApp(env.testapp).start()
    port = free_port()
    binary = env.ha_static or env.ha
    s = Serve(binary, port, ["--check", "app=http://127.0.0.1:%d/" % app.port, "--interval", "1s",
                             "--timeout", "500ms", "--failure-threshold", "1",
                             "--success-threshold", "1"], OUTDIR, "serve-detect").start()
    probe = [binary, "probe", "--url", s.url("/readyz"), "--timeout", "500ms"]
    poll = 0.020

    def probe_rc():
        return run(probe, timeout=5, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

    def until(rc_want, t0, limit=3 * interval):
        nxt = time.monotonic()
        while True:
            rc = probe_rc()
            now = time.monotonic()
            if rc == rc_want:
                return (now - t0) * 1e3
            if now - t0 > limit:
                return None
            nxt += poll
            time.sleep(max(0.0, nxt - time.monotonic()))

    def probe_arrival():
        """The moment a probe reaches the app (its connection count moves)."""
        c0 = app.count()
        end = time.monotonic() + 3 * interval
        while time.monotonic() < end:
            if app.count() != c0:
                return time.monotonic()
            time.sleep(0.003)
        raise RuntimeError("no probe reached the test app for 3 intervals")

    def sleep_until(t):
        time.sleep(max(0.0, t - time.monotonic()))

    n = P["detect_trials"]
    # Stratified phases: trial k fires its event (k+0.5)/n of an interval after a probe, so the
    # median is not at the mercy of a few random phases.
    phases = [(k + 0.5) / n for k in range(n)]
    random.Random(5).shuffle(phases)
    res = {k: [] for k in ("503 (down)", "ok (up)", "kill (down)", "restart (up)")}
    try:
        wait_until(lambda: probe_rc() == 0, 10, what="probe healthy")
        for k, ph in enumerate(phases):
            # HTTP 503 and back
            sleep_until(probe_arrival() + ph * interval)
            app.ctl("/mode/status:503")
            t0 = time.monotonic()
            res["503 (down)"].append(until(1, t0))
            sleep_until(probe_arrival() + ph * interval)
            app.ctl("/mode/ok")
            t0 = time.monotonic()
            res["ok (up)"].append(until(0, t0))
            # kill and restart on the same port
            sleep_until(probe_arrival() + ph * interval)
            app.proc.kill()
            app.proc.wait(5)
            t0 = time.monotonic()
            d = until(1, t0)
            res["kill (down)"].append(d)
            seen = t0 + (d or 0) / 1e3 - poll / 2  # ~ when the failing probe ran
            PROCS.remove(app.proc) if app.proc in PROCS else None
            sleep_until(seen + ph * interval)
            app = TestApp(env.testapp, app.port).start()
            t0 = time.monotonic()
            res["restart (up)"].append(until(0, t0))
            log("  trial %2d phase %.2f: 503 %s, ok %s, kill %s, restart %s (ms)" % (
                k + 1, ph, *("%.0f" % res[e][-1] if res[e][-1] is not None else "MISS" for e in res)))
    finally:
        s.stop()
        stop(app.proc)
    out = {}
    for e, xs in res.items():
        got = [x for x in xs if x is not None]
        out[e] = {"n": len(xs), "missed": len(xs) - len(got), "p50_ms": median(got),
                  "p90_ms": pct(got, 0.9), "max_ms": max(got) if got else float("nan"),
                  "min_ms": min(got) if got else float("nan"), "all_ms": xs}
    return {"events": out, "interval_ms": interval * 1e3, "timeout_ms": 500, "poll_ms": poll * 1e3,
            "binary": "static musl" if env.ha_static else "glibc Release"}


# --- report ---------------------------------------------------------------------------------

def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def ver(argv, pat=None):
        try:
            r = run(argv, timeout=10, capture_output=True, text=True)
            s = (r.stdout + r.stderr).strip().splitlines()
            return s[0] if s else "?"
        except (OSError, subprocess.SubprocessError):
            return "?"

    git = ver(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    dirty = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"], timeout=10,
                capture_output=True, text=True, env=dict(os.environ, GIT_OPTIONAL_LOCKS="0")).stdout.strip()
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "loadavg": open("/proc/loadavg").read().split()[:3],
            "git": git + (" (+ uncommitted changes)" if dirty else ""),
            "nginx": ver(["nginx", "-v"]), "wrk": ver(["wrk", "--version"]).split(" Copyright")[0],
            "hyperfine": ver(["hyperfine", "--version"]), "curl": " ".join(ver(["curl", "--version"]).split()[:2]),
            "busybox": " ".join(ver(["busybox"]).split()[:2]),
            "blackbox": ver(["prometheus-blackbox-exporter", "--version"]).split(" (")[0],
            "valgrind": ver(["valgrind", "--version"])}


def fmt(x, unit="", prec=None):
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    if prec is None:
        prec = 0 if abs(x) >= 100 else (2 if abs(x) < 10 else 1)
    return ("{:,.%df}" % prec).format(x) + unit


def render(R, P, quick, total_s):
    M = R["machine"]
    L = []
    a = L.append
    a("# healthagg benchmarks (issue 5)\n")
    a("Generated by `bench/run.sh%s` on %s in %.0f s. Every figure comes from this one run; peers "
      "and healthagg were measured side by side, on 127.0.0.1, and compared as ratios." % (
          " --quick" if quick else "", M["date"], total_s))
    a("")
    a("**Machine:** %s CPUs (nproc), CPU model \"%s\", kernel %s; load average (1/5/15 min) %s at start, "
      "%s at end (other work shares this machine: hence ratios, alternation and instruction counts). "
      "healthagg %s." % (M["nproc"], M["cpu"], M["kernel"], " ".join(M["loadavg"]),
                         " ".join(M.get("loadavg_end", ["?"])), M["git"]))
    a("**Peers:** %s; %s; %s; %s; %s; %s; %s." % (M["nginx"], M["wrk"], M["hyperfine"], M["curl"],
                                                 M["busybox"], M["blackbox"], M["valgrind"]))
    a("")
    if R.get("quiet") and R["quiet"]["budget"]:
        a("Waiting for a calm machine before timed runs: %.0f s of a %.0f s budget spent; %d run(s) started "
          "with others still above 25%% CPU." % (R["quiet"]["waited"], R["quiet"]["budget"], R["quiet"]["gave_up"]))
        a("")
    if R.get("busy"):
        a("**Other work on the machine**, CPUs busy in the second before each section (nothing of this run "
          "was busy then; its daemons idle): %s." % ", ".join("%s %.0f%%" % kv for kv in R["busy"].items()))
        a("")
    if R.get("restarts"):
        a("**Interference:** processes of this run were ended from outside it and restarted: %s." %
          "; ".join(R["restarts"]))
        a("")
    rows = R["rows"]
    a("| # | measurement | healthagg | peer | ratio | goal | met? |")
    a("|---|---|---|---|---|---|---|")
    for r in rows:
        a("| %s | %s | %s | %s | %s | %s | %s |" % r)
    a("")
    a("Binaries: *glibc Release* = `cmake -DCMAKE_BUILD_TYPE=Release` (bench/out/build-release, -O3, "
      "dynamic glibc, libuv/cJSON static); *static musl* = `deploy/build-static.sh` output "
      "(build-static/healthagg, -Os, stripped)%s. Each row says which one it measured." % (
          "" if R.get("static") else " - **not present in this run**"))
    si = R.get("static_info")
    if si:
        a("")
        a("The static binary measured was built %s (%s bytes)%s" % (
            si["built"], "{:,}".format(si["bytes"]),
            ": **older than the last commit**, so it may lack recent changes; rerun deploy/build-static.sh "
            "before a run meant to be quoted." if si["older_than_head"] else ", after the last commit."))
    a("")
    for sec in R["details"]:
        a(sec)
        a("")
    return "\n".join(L)


def ratio(a_, b_):
    return a_ / b_ if b_ else float("nan")


def build_report(R):
    rows = []
    det = []
    yes = lambda ok: "**yes**" if ok else "**NO**"

    # 1 endpoint
    E = R.get("endpoint")
    if E:
        def agg(who, ep, t, c):
            xs = [x for x in E["runs"] if x["who"] == who and x["ep"] == ep and x["threads"] == t and x["conns"] == c]
            return median([x["rps"] for x in xs]), median([x["p99_ms"] for x in xs]), xs

        def paired(a_, b_, key):
            """Median over rounds of a_/b_, each round's two runs measured back to back."""
            rb = {x["round"]: x[key] for x in b_[2]}
            rs = [x[key] / rb[x["round"]] for x in a_[2] if rb.get(x["round"])]
            return median(rs) if rs else float("nan")

        def cpu(v):
            return median([x.get("cpu_us_per_req", float("nan")) for x in v[2]])
        d = ["## 1. Endpoint throughput and latency (wrk, keep-alive, A B A B rounds)", "",
             "nginx: 1 worker, `access_log off`, `keepalive_requests 10000` (healthagg's default), "
             "`return 200 \"ok\\n\"` (same 3-byte body as healthagg's /readyz). healthagg: "
             "`serve` with one HTTP check against that nginx at 1 s. The table's ratios are the median "
             "of per-round ratios (each round runs the contenders back to back, so they share the "
             "machine's conditions); before each run the script waits (within a budget) for other work "
             "on the machine to calm down. Server CPU per request = utime+stime of the server process "
             "(nginx: its worker) over the run, divided by requests: less sensitive to neighbours than "
             "req/s.", "",
             "| wrk | path | server | req/s (median) | p99 ms (median) | server CPU µs/request (median) | server CPU % of a core / wrk CPU % of its cores (median) | per round req/s | per round p99 ms | others busy before each round |",
             "|---|---|---|---|---|---|---|---|---|---|"]
        for t, c in ((1, 50), (2, 200)):
            for ep in ("/readyz", "/health"):
                ng = agg("nginx", ep, t, c)
                ha = agg("healthagg", ep, t, c)
                st = agg("healthagg-static", ep, t, c)
                for who, v in (("nginx", ng), ("healthagg (glibc Release)", ha), ("healthagg (static musl)", st)):
                    if v[2]:
                        d.append("| -t%d -c%d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                            t, c, ep, who, fmt(v[0]), fmt(v[1], "", 2), fmt(cpu(v), "", 2),
                            "%s / %s" % (fmt(median([x.get("server_cpu_pct", float("nan")) for x in v[2]]), "%", 0),
                                         fmt(median([x.get("client_cpu_pct", float("nan")) for x in v[2]]), "%", 0)),
                            " / ".join(fmt(x["rps"]) for x in v[2]), " / ".join(fmt(x["p99_ms"], "", 2) for x in v[2]),
                            " / ".join("%.0f%%" % x.get("busy_before", float("nan")) for x in v[2])))
                rr, pr = paired(ha, ng, "rps"), paired(ha, ng, "p99_ms")
                wc = median([x.get("client_cpu_pct", float("nan")) for x in ha[2] + ng[2]])
                sv = max(median([x.get("server_cpu_pct", float("nan")) for x in ha[2]]),
                         median([x.get("server_cpu_pct", float("nan")) for x in ng[2]]))
                bound = (" (wrk-bound: wrk at %.0f%% of its cores, servers at most %.0f%% of one)" % (wc, sv)
                         if wc >= 90 and sv < 95 else "")
                goal = ep == "/readyz"
                rows.append(("1", "`%s` wrk -t%d -c%d: req/s (glibc Release)" % (ep, t, c), fmt(ha[0]),
                             "nginx %s" % fmt(ng[0]), "%.2fx" % rr, "≥ 1.0x" if goal else "(none)",
                             (yes(rr >= 1.0) + bound) if goal else "-"))
                rows.append(("1", "`%s` wrk -t%d -c%d: p99 (glibc Release)" % (ep, t, c), fmt(ha[1], " ms", 2),
                             "nginx %s" % fmt(ng[1], " ms", 2), "%.2fx" % pr, "≤ 1.0x" if goal else "(none)",
                             (yes(pr <= 1.0) + bound) if goal else "-"))
                if goal:
                    rc = paired(ha, ng, "cpu_us_per_req")
                    rows.append(("1", "`%s` wrk -t%d -c%d: server CPU per request, utime+stime (glibc Release)" % (ep, t, c),
                                 fmt(cpu(ha), " µs", 2), "nginx %s" % fmt(cpu(ng), " µs", 2), "%.2fx" % rc,
                                 "(diagnostic: less noise-prone)", "-"))
                if st[2]:
                    rs, ps = paired(st, ng, "rps"), paired(st, ng, "p99_ms")
                    rows.append(("1", "`%s` wrk -t%d -c%d: req/s, p99 (static musl)" % (ep, t, c),
                                 "%s, %s" % (fmt(st[0]), fmt(st[1], " ms", 2)),
                                 "nginx %s, %s" % (fmt(ng[0]), fmt(ng[1], " ms", 2)),
                                 "%.2fx, %.2fx" % (rs, ps), "≥ 1.0x, ≤ 1.0x", yes(rs >= 1.0 and ps <= 1.0)))
        pq = E.get("per_request", {})
        if pq:
            h, n = pq["healthagg"], pq["nginx"]
            rows.append(("1", "`/readyz` cost per request: callgrind Ir (user space; glibc Release)",
                         fmt(h["ir_per_req"]), "nginx %s" % fmt(n["ir_per_req"]),
                         "%.2fx" % ratio(h["ir_per_req"], n["ir_per_req"]), "(diagnostic)", "-"))
            rows.append(("1", "`/readyz` syscalls per request (strace -c)", fmt(h.get("syscalls_per_req"), "", 2),
                         "nginx %s" % fmt(n.get("syscalls_per_req"), "", 2),
                         "%.2fx" % ratio(h.get("syscalls_per_req", 0), n.get("syscalls_per_req", 1)),
                         "(diagnostic)", "-"))
            d += ["", "**Per-request cost** (wrk -t1 -c50 on `/readyz`; callgrind counts user-space "
                  "instructions of the server process only; strace -c counts syscalls of all its threads):", "",
                  "| server | Ir / request | syscalls / request | syscalls / request by call |", "|---|---|---|---|"]
            for who, v in (("healthagg", h), ("nginx", n)):
                d.append("| %s | %s | %s | %s |" % (who, fmt(v["ir_per_req"]), fmt(v.get("syscalls_per_req"), "", 2),
                                                    ", ".join("%s %.2f" % kv for kv in v.get("syscalls", {}).items())))
            for who, v in (("healthagg", h), ("nginx", n)):
                d += ["", "Top functions by self instructions, %s (per request):" % who, "",
                      "| function | self Ir/req | incl Ir/req | calls/req |", "|---|---|---|---|"]
                rq = max(v["requests"], 1)
                for f, s_, i_, c_ in v["top"][:10]:
                    d.append("| `%s` | %s | %s | %s |" % (f, fmt(s_ / rq, "", 1), fmt(i_ / rq, "", 1), fmt(c_ / rq, "", 2)))
        det.append("\n".join(d))

    # 2 probe
    Pb = R.get("probe")
    if Pb:
        mp = Pb["minprobe (static musl)"]
        d = ["## 2. Probe cost (one exec of a health command against the running sidecar's /readyz)", "",
             "hyperfine -N (no shell), commands rotated between rounds; callgrind total Ir (user space, "
             "including the dynamic loader for dynamic binaries); peak RSS = /usr/bin/time %M, median.", "",
             "| command | mean ms | median ms | stdev ms | Ir | peak RSS kB | minor page faults | vs minprobe (median time / Ir / RSS) |",
             "|---|---|---|---|---|---|---|---|"]
        for label, v in Pb.items():
            if label.startswith("_"):
                continue
            d.append("| `%s` | %.3f | %.3f | %.3f | %s | %s | %s | %.2fx / %.2fx / %.2fx |" % (
                label, v["mean_ms"], v["median_ms"], v["stdev_ms"], fmt(v["ir"]), fmt(v["peak_rss_kb"]),
                fmt(v.get("minor_faults")), v["median_ms"] / mp["median_ms"], v["ir"] / mp["ir"],
                v["peak_rss_kb"] / mp["peak_rss_kb"]))
        ours = "healthagg probe (static musl)" if "healthagg probe (static musl)" in Pb else "healthagg probe (glibc Release)"
        o = Pb[ours]
        tag = "static musl" if "static" in ours else "glibc Release"
        rt, ri = o["median_ms"] / mp["median_ms"], o["ir"] / mp["ir"]
        rows.append(("2", "probe wall time, hyperfine median (mean) (%s)" % tag,
                     "%s (%s) ms" % (fmt(o["median_ms"], "", 3), fmt(o["mean_ms"], "", 3)),
                     "minprobe %s (%s) ms" % (fmt(mp["median_ms"], "", 3), fmt(mp["mean_ms"], "", 3)),
                     "%.2fx (%.2fx)" % (rt, o["mean_ms"] / mp["mean_ms"]), "≤ 1.2x", yes(rt <= 1.2)))
        rows.append(("2", "probe instructions, callgrind (%s)" % tag, fmt(o["ir"]), "minprobe %s" % fmt(mp["ir"]),
                     "%.2fx" % ri, "≤ 1.5x", yes(ri <= 1.5)))
        mg = Pb.get("minprobe (static glibc)")
        if mg:
            rows.append(("2", "probe instructions vs a static *glibc* minprobe (the issue's ~37 k reference)",
                         fmt(o["ir"]), "minprobe (glibc) %s" % fmt(mg["ir"]), "%.2fx" % (o["ir"] / mg["ir"]),
                         "(reference)", "-"))
        rows.append(("2", "probe peak RSS (%s)" % tag, fmt(o["peak_rss_kb"], " kB"),
                     "minprobe %s" % fmt(mp["peak_rss_kb"], " kB"), "%.2fx" % (o["peak_rss_kb"] / mp["peak_rss_kb"]),
                     "≤ 1 MB (1024 kB)", yes(o["peak_rss_kb"] <= 1024)))
        for peer in ("curl -fsS", "busybox wget -q"):
            v = Pb[peer]
            rows.append(("2", "probe vs `%s`: time, Ir, RSS (%s)" % (peer, tag),
                         "%s ms, %s, %s kB" % (fmt(o["mean_ms"], "", 3), fmt(o["ir"]), fmt(o["peak_rss_kb"])),
                         "%s ms, %s, %s kB" % (fmt(v["mean_ms"], "", 3), fmt(v["ir"]), fmt(v["peak_rss_kb"])),
                         "%.2fx, %.3fx, %.2fx" % (o["mean_ms"] / v["mean_ms"], o["ir"] / v["ir"],
                                                 o["peak_rss_kb"] / v["peak_rss_kb"]), "(ahead)",
                         yes(o["mean_ms"] < v["mean_ms"] and o["ir"] < v["ir"])))
        pr = Pb["_profile"]
        d += ["", "Where `healthagg probe` spends its instructions (%s; %s Ir in total):" % (pr["binary"], fmt(pr["total"])), "",
              "| function | self Ir | incl Ir | calls |", "|---|---|---|---|"]
        for f, s_, i_, c_ in pr["top"]:
            d.append("| `%s` | %s | %s | %s |" % (f, fmt(s_), fmt(i_), fmt(c_)))
        for label, calls in Pb.get("_strace", {}).items():
            d += ["", "Syscalls of `%s` (strace): %d - %s" % (label, len(calls), ", ".join(calls))]
        d += ["", "minprobe (static musl, unstripped):", "", "| function | self Ir | incl Ir | calls |", "|---|---|---|---|"]
        for f, s_, i_, c_ in Pb["_profile_minprobe"]:
            d.append("| `%s` | %s | %s | %s |" % (f, fmt(s_), fmt(i_), fmt(c_)))
        det.append("\n".join(d))

    # 3 footprint
    F = R.get("footprint")
    if F:
        bb = F["blackbox_idle"]["VmRSS"]
        d = ["## 3. Footprint", "",
             "`serve` with 10 HTTP checks (1 s) against nginx; idle = %s s after start; load = wrk -t2 -c200 "
             "keep-alive, 70%% /readyz, 10%% each /livez /health /metrics." % R["P"]["idle_wait"], "",
             "| process | VmRSS idle kB | VmHWM idle kB | requests | VmRSS after kB | VmHWM after kB |",
             "|---|---|---|---|---|---|"]
        for label, v in F["serve"].items():
            d.append("| healthagg serve (%s) | %d | %d | %s | %d | %d |" % (
                label, v["idle"]["VmRSS"], v["idle"]["VmHWM"], fmt(v["requests"]), v["after"]["VmRSS"], v["after"]["VmHWM"]))
        ba = R.get("engine", {}).get("blackbox", {}).get("after_load", {})
        d.append("| prometheus-blackbox-exporter | %d | %d | (after section 4 load) | %s | %s |" % (
            F["blackbox_idle"]["VmRSS"], F["blackbox_idle"]["VmHWM"], ba.get("VmRSS", "n/a"), ba.get("VmHWM", "n/a")))
        d.append("| nginx worker (reference) | %d | %d | | | |" % (F["nginx_worker"]["VmRSS"], F["nginx_worker"]["VmHWM"]))
        d += ["", "| binary | bytes | KiB |", "|---|---|---|"]
        for k, v in F["size"].items():
            d.append("| %s | %s | %s |" % (k, fmt(v), fmt(v / 1024, "", 1)))
        judged = "static musl" if "static musl" in F["serve"] else "glibc Release"
        for label, v in F["serve"].items():
            for when, key in (("idle", "idle"), ("after %s requests" % fmt(v["requests"]), "after")):
                rss = v[key]["VmRSS"]
                hwm = v[key]["VmHWM"]
                goal = label == judged
                rows.append(("3", "serve RSS, 10 checks, %s (%s): VmRSS / VmHWM" % (when, label),
                             "%s / %s kB" % (fmt(rss), fmt(hwm)), "blackbox idle %s kB" % fmt(bb),
                             "%.3fx" % (max(rss, hwm) / bb),
                             "≤ 2 MB (2048 kB), ≤ 0.15x" if goal else "(info: the goal is for the shipped static binary)",
                             yes(max(rss, hwm) <= 2048) if goal else "-"))
        if "healthagg (static musl, stripped)" in F["size"]:
            sz = F["size"]["healthagg (static musl, stripped)"]
            rows.append(("3", "binary size (static musl, stripped)", "%s KiB" % fmt(sz / 1024, "", 1),
                         "blackbox %s KiB" % fmt(F["size"]["prometheus-blackbox-exporter"] / 1024),
                         "%.3fx" % (sz / F["size"]["prometheus-blackbox-exporter"]), "≤ 400 KB (409,600 B)",
                         yes(sz <= 409600)))
        else:
            rows.append(("3", "binary size (static musl)", "n/a: build-static/healthagg missing", "", "", "≤ 400 KB", "n/a"))
        det.append("\n".join(d))

    # 4 engine
    G = R.get("engine")
    if G:
        d = ["## 4. Probe engine", "",
             "Per-cycle cost: `serve` under callgrind with %d checks at 100 ms (timeout 90 ms) against nginx; "
             "counters zeroed after %d s of warm-up (`callgrind_control -z`), dumped %d s later; total Ir of the window "
             "divided by the probe results applied in it (calls of `ha_state_apply` where symbols exist, else the "
             "`healthagg_check_probes_total` delta). Includes everything the daemon did in the window: timers, "
             "aggregate, /readyz re-render, the server's sweep." % (
                 R["P"]["cycle_checks"], R["P"]["cycle_warm"], R["P"]["cycle_window"]), "",
             "| check | binary | Ir per cycle | cycles | failed |", "|---|---|---|---|---|"]
        for k, v in G["cycle"].items():
            kind, label = k.split("/")
            d.append("| %s | %s | %s | %d | %d |" % (kind, label, fmt(v["ir_per_cycle"]), v["cycles"], v["failures"]))
            rows.append(("4", "Ir per %s check cycle (%s)" % (kind.upper(), label), fmt(v["ir_per_cycle"]), "", "", "(report)", "-"))
        sc, bbx = G["scale"], G["blackbox"]
        rr = median(sc["ratio_rounds"]) if sc.get("ratio_rounds") else sc["probes_per_cpu_s"] / bbx["probes_per_cpu_s"]
        rows.append(("4", "%d HTTP checks @1 s, %d s: probes per CPU-second (%s)" % (sc["checks"], round(sc["window_s"]), sc["binary"]),
                     "%s (%.0f probes/s at %.2f%% CPU)" % (fmt(sc["probes_per_cpu_s"]), sc["probes_per_s"], sc["cpu_pct"]),
                     "blackbox %s (%s probes/s)" % (fmt(bbx["probes_per_cpu_s"]), fmt(bbx["probes_per_s"])),
                     "%.1fx" % rr, "≥ 10x", yes(rr >= 10)))
        lh = sc.get("lag_hist")
        if lh and lh["count"]:
            rows.append(("4", "scheduling lag p50 / p99 over the %d s window, %d probes (%s; "
                         "`healthagg_scheduler_lag_seconds` bucket deltas)" % (round(sc["window_s"]), lh["count"], sc["binary"]),
                         "%s / %s ms (p99 bucket ≤ %s ms)" % (fmt(lh["p50"] * 1e3, "", 2), fmt(lh["p99"] * 1e3, "", 2),
                                                             fmt(lh["p99_le"] * 1e3, "", 1)),
                         "", "", "p99 ≤ 10 ms", yes(lh["p99_le"] <= 0.010)))
            rows.append(("4", "scheduling lag, max since start (%s; `healthagg_scheduler_lag_max_seconds`)" % sc["binary"],
                         "%s ms" % fmt(sc["lag_max_ms_end"], "", 1), "", "", "(info)", "-"))
        else:
            rows.append(("4", "scheduling lag (%s): `healthagg_scheduler_lag_max_seconds` (max since start)" % sc["binary"],
                         "max %s ms; p50/p99 not exported" % fmt(sc["lag_max_ms_end"], "", 1), "", "",
                         "p99 ≤ 10 ms", (yes(True) + " (max ≤ 10 ms bounds p99)") if sc["lag_max_ms_end"] <= 10
                         else "**NO (max)**; p99 unknown"))
        lz, lb = sc["livez_ms"], sc["livez_ms_1check"]
        rows.append(("4", "loop stall proxy: `/livez` latency every 20 ms during the window, p50 / p99 / max (%s)" % sc["binary"],
                     "%s / %s / %s ms (n=%d)" % (fmt(lz["p50"], "", 2), fmt(lz["p99"], "", 2), fmt(lz["max"], "", 2), lz["n"]),
                     "same, 1 check: %s / %s / %s ms" % (fmt(lb["p50"], "", 2), fmt(lb["p99"], "", 2), fmt(lb["max"], "", 2)),
                     "p99 %.2fx" % ratio(lz["p99"], lb["p99"]), "p99 ≤ 10 ms (proxy)", yes(lz["p99"] <= 10)))
        d += ["", "Scale: %d HTTP checks, interval 1 s, timeout 500 ms, against nginx, %s; %d round(s) of warm-up %s s "
              "then a window, %.0f s of windows in all." % (
                  sc["checks"], sc["binary"], len(sc.get("rounds", [1])), R["P"]["scale_warm"], sc["window_s"]), "",
              "| probes/s | CPU % | probes per CPU-s | failed | skipped | lag max ms: once ready / after warm-up / at end | nginx worker CPU % | serve VmRSS kB |",
              "|---|---|---|---|---|---|---|---|",
              "| %.0f | %.2f | %s | %d | %d | %.1f / %.1f / %.1f | %.1f | %d |" % (
                  sc["probes_per_s"], sc["cpu_pct"], fmt(sc["probes_per_cpu_s"]), sc["failures"], sc["skipped"],
                  sc["lag_max_ms_start"], sc["lag_max_ms_warm"], sc["lag_max_ms_end"], sc["nginx_cpu_pct"], sc["rss"]["VmRSS"]),
              "", "Lag metrics the daemon exposes: %s." % ", ".join("`%s`" % x for x in sc["lag_metrics"]), ""]
        for key, what in (("lag_hist_startup", "from start to the end of warm-up"), ("lag_hist", "in the window")):
            h = sc.get(key)
            if h and h["count"]:
                d += ["Lag histogram %s (%d probes; mean %s ms; p50 %s, p90 %s, p99 %s, p99.9 %s ms): %s" % (
                    what, h["count"], fmt(h["mean"] * 1e3, "", 2), fmt(h["p50"] * 1e3, "", 2), fmt(h["p90"] * 1e3, "", 2),
                    fmt(h["p99"] * 1e3, "", 2), fmt(h["p99.9"] * 1e3, "", 2),
                    ", ".join("≤%s s: %d" % kv for kv in h["buckets"].items())), ""]
        sp = G["scale_profile"]
        d += ["Same %d-check load under callgrind (glibc Release): %s Ir per cycle over %d cycles. Top functions:" % (
            sc["checks"], fmt(sp["ir_per_cycle"]), sp["cycles"]), "",
              "| function | self Ir/cycle | incl Ir/cycle | calls/cycle |", "|---|---|---|---|"]
        cy = max(sp["cycles"], 1)
        for f, s_, i_, c_ in sp["top"][:12]:
            d.append("| `%s` | %s | %s | %s |" % (f, fmt(s_ / cy, "", 1), fmt(i_ / cy, "", 1), fmt(c_ / cy, "", 3)))
        for k, v in G["cycle"].items():
            if "top" in v and k.startswith("http"):
                d += ["", "HTTP check cycle at %d checks (glibc Release), top functions:" % R["P"]["cycle_checks"], "",
                      "| function | self Ir/cycle | incl Ir/cycle | calls/cycle |", "|---|---|---|---|"]
                cy = max(v["cycles"], 1)
                for f, s_, i_, c_ in v["top"][:12]:
                    d.append("| `%s` | %s | %s | %s |" % (f, fmt(s_ / cy, "", 1), fmt(i_ / cy, "", 1), fmt(c_ / cy, "", 3)))
        d += ["", "Rounds alternate healthagg (a fresh `serve` with the %d checks: warm-up, then its window) and "
              "prometheus-blackbox-exporter (wrk -t1 -c16 on uncached `/probe?target=<nginx>&module=http_2xx`); "
              "CPU = utime+stime of each process; the table's ratio is the median of the per-round ratios." % sc["checks"], "",
              "| round | healthagg probes/s | healthagg probes per CPU-s | blackbox probes/s | blackbox CPU % | blackbox probes per CPU-s | blackbox errors | ratio |",
              "|---|---|---|---|---|---|---|---|"]
        for i, x in enumerate(bbx["runs"]):
            h = sc.get("rounds", [{}] * len(bbx["runs"]))[i]
            d.append("| %d | %s | %s | %.0f | %.0f | %.0f | %d | %s |" % (
                i + 1, fmt(h.get("probes", float("nan")) / h.get("window_s", float("nan"))) if h else "n/a",
                fmt(h.get("probes_per_cpu_s")), x["probes_per_s"], x["cpu_pct"], x["probes_per_cpu_s"], x["errors"],
                "%.1fx" % sc["ratio_rounds"][i] if sc.get("ratio_rounds") else "n/a"))
        det.append("\n".join(d))

    # 5 detect
    D = R.get("detect")
    if D:
        iv, to = D["interval_ms"], D["timeout_ms"]
        d = ["## 5. Detection latency", "",
             "`serve --interval 1s --timeout 500ms --failure-threshold 1 --success-threshold 1` (%s) with "
             "build/tests/testapp as the app; `healthagg probe` polled every %.0f ms; latency = from the change "
             "taking effect (control request answered / SIGKILL reaped / restarted app listening) to the first "
             "probe exit code that shows it. Trial k fires its event (k+0.5)/n of an interval after a probe "
             "reached the app (stratified phase)." % (D["binary"], D["poll_ms"]), "",
             "| event | trials | missed | min ms | p50 ms | p90 ms | max ms | all (ms) |", "|---|---|---|---|---|---|---|---|"]
        for e, v in D["events"].items():
            d.append("| %s | %d | %d | %s | %s | %s | %s | %s |" % (
                e, v["n"], v["missed"], fmt(v["min_ms"]), fmt(v["p50_ms"]), fmt(v["p90_ms"]), fmt(v["max_ms"]),
                " ".join("%.0f" % x if x is not None else "MISS" for x in v["all_ms"])))
            ok = v["missed"] == 0 and v["max_ms"] <= iv + to and v["p50_ms"] <= 0.6 * iv
            rows.append(("5", "detection: %s, p50 / max" % e, "%s / %s ms" % (fmt(v["p50_ms"]), fmt(v["max_ms"])),
                         "", "p50 %.2fx interval" % (v["p50_ms"] / iv), "p50 ≤ %.0f ms, max ≤ %.0f ms" % (0.6 * iv, iv + to),
                         yes(ok)))
        det.append("\n".join(d))
    return rows, det


def main():
    global OUTDIR, LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--ha")
    ap.add_argument("--ha-static")
    ap.add_argument("--minprobe")
    ap.add_argument("--minprobe-dbg")
    ap.add_argument("--minprobe-glibc")
    ap.add_argument("--ha-static-syms")
    ap.add_argument("--testapp")
    ap.add_argument("--only", default="endpoint,probe,footprint,engine,detect")
    ap.add_argument("--render-only", action="store_true",
                    help="rebuild the report from OUT/results.json (e.g. after editing ANALYSIS.md)")
    a = ap.parse_args()
    P = QUICK if a.quick else FULL
    QUIET["budget"] = P["quiet_budget"]
    if a.render_only:
        with open(os.path.join(a.out, "results.json")) as f:
            R = json.load(f)
        R["rows"], R["details"] = build_report(R)
        write_report(R, R["P"], a.quick, R.get("total_s", 0), a.results)
        return
    if not (a.ha and a.minprobe and a.minprobe_dbg and a.testapp):
        ap.error("--ha, --minprobe, --minprobe-dbg and --testapp are required (bench/run.sh passes them)")
    OUTDIR = os.path.abspath(a.out)
    os.makedirs(OUTDIR, exist_ok=True)
    LOG = open(os.path.join(OUTDIR, "bench.log"), "w")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    env = Env()
    env.ha = os.path.abspath(a.ha)
    env.ha_static = os.path.abspath(a.ha_static) if a.ha_static else None
    env.minprobe, env.minprobe_dbg, env.testapp = a.minprobe, a.minprobe_dbg, a.testapp
    env.minprobe_glibc = a.minprobe_glibc
    env.ha_static_syms = a.ha_static_syms
    env.tmp = tempfile.mkdtemp(prefix="healthagg-bench.")
    env.blackbox = None
    R = {"machine": machine(), "P": P, "static": bool(env.ha_static)}
    if env.ha_static:
        st = os.stat(env.ha_static)
        head_t = run(["git", "-C", REPO, "log", "-1", "--format=%ct"], timeout=10, capture_output=True,
                     text=True).stdout.strip()
        R["static_info"] = {
            "built": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "bytes": st.st_size,
            "older_than_head": bool(head_t) and st.st_mtime < int(head_t)}
    only = a.only.split(",")
    try:
        env.nginx = Nginx(env.tmp, free_port()).start()
        env.serve_args = ["--check", "app=http://127.0.0.1:%d/" % env.nginx.port, "--interval", "1s",
                          "--timeout", "500ms"]
        env.serve = Serve(env.ha, free_port(), env.serve_args, OUTDIR, "serve-main").start()
        env.serve_static = None
        if env.ha_static and "endpoint" in only:
            env.serve_static = Serve(env.ha_static, free_port(), env.serve_args, OUTDIR, "serve-static").start()
        for name, fn in (("endpoint", section_endpoint), ("probe", section_probe),
                         ("footprint", section_footprint), ("engine", section_engine),
                         ("detect", section_detect)):
            if name not in only:
                continue
            env.serve.ensure()
            if name == "engine" and env.blackbox is None:
                env.blackbox = Blackbox(env.tmp, free_port()).start()
            busy = machine_busy()
            R.setdefault("busy", {})[name] = busy
            log("section %s (load average %s; CPUs %.0f%% busy with other work just before)" % (
                name, " ".join(open("/proc/loadavg").read().split()[:3]), busy))
            R[name] = fn(env, P)
    finally:
        stop_all()
        shutil.rmtree(env.tmp, ignore_errors=True)
    total = time.monotonic() - T0
    R["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    R["restarts"] = RESTARTS
    R["quiet"] = dict(QUIET)
    R["total_s"] = total
    with open(os.path.join(OUTDIR, "results.json"), "w") as f:
        json.dump(R, f, indent=1, default=lambda o: dict(o) if isinstance(o, collections.Counter) else str(o))
    R["rows"], R["details"] = build_report(R)
    write_report(R, P, a.quick, total, a.results)
    log("wrote %s (%.0f s)" % (a.results, total))
    print("\n".join("| %s | %s | %s | %s | %s | %s | %s |" % tuple(r) for r in R["rows"]))


def write_report(R, P, quick, total, path):
    md = render(R, P, quick, total)
    notes = os.path.join(HERE, "ANALYSIS.md")
    if os.path.exists(notes) and not quick:
        with open(notes) as f:
            md += "\n" + f.read()
    with open(path, "w") as f:
        f.write(md + "\n")


if __name__ == "__main__":
    try:
        main()
    finally:
        stop_all()
