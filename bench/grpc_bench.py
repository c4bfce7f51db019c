#!/usr/bin/env python3
"""bench/grpc_bench.py - what a grpc:// check costs, side by side with its references.

  bench/grpc_bench.py --healthagg BUILD/healthagg [--quick] [--out FILE.md]

Against one real @grpc/grpc-js server (tests/grpc/server.js, the grpc-health-check package's
health service) and, for the in-loop reference, the project's test app over HTTP, all on
127.0.0.1, in one run:

  1 in-loop instructions  `healthagg serve` under callgrind with 20 grpc:// (then 20 http://)
                          checks at 500 ms: instructions per check cycle (counters zeroed after a
                          warm-up, dumped after a window; cycles = ha_state_apply calls)
  2 in-loop CPU time      `healthagg serve` with 200 checks at 1 s, CPU time of the process
                          (/proc utime+stime) over a window divided by the probes it made
  3 exec                  `healthagg check grpc://...` run N times: CPU time per run (rusage of
                          the children) and instructions of one run (callgrind); the same for a
                          one-shot Node health client (tests/grpc/client.js: @grpc/grpc-js +
                          grpc-health-check) and, for reference, `healthagg check http://...`

Prints a Markdown section (and writes it to --out) and the raw numbers as JSON on stderr's last
line. Uses bench.py's process and callgrind helpers. Every process it starts is stopped by id.
The npm packages come from tests/grpc/setup.sh into bench/out/grpc-peer."""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (helpers only; its main() is not run)

PEER = os.path.join(HERE, "out", "grpc-peer")
SERVER_JS = os.path.join(REPO, "tests", "grpc", "server.js")
CLIENT_JS = os.path.join(REPO, "tests", "grpc", "client.js")


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - bench.T0, msg), file=sys.stderr, flush=True)


def node_env():
    return dict(os.environ, NODE_PATH=os.path.join(PEER, "node_modules"))


def start_grpc_server():
    p = bench.spawn(["node", SERVER_JS, "--status", "-=SERVING", "--status", "pkg.Svc=SERVING"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=node_env())
    line = p.stdout.readline().decode()
    if not line.startswith("listening "):
        raise RuntimeError("grpc server did not start: %r" % line)
    return p, int(line.split()[1])


def start_testapp(testapp):
    p = bench.spawn([testapp, "--port", "0"], stdout=subprocess.PIPE)
    line = p.stdout.readline().decode()
    if not line.startswith("PORTS "):
        raise RuntimeError("testapp did not start: %r" % line)
    return p, int(line.split()[1])


def config(path, port, n, url_fn, interval, timeout):
    checks = [{"name": "c%d" % i, "url": url_fn(i)} for i in range(n)]
    with open(path, "w") as f:
        json.dump({"listen": "127.0.0.1:%d" % port,
                   "defaults": {"interval": interval, "timeout": timeout},
                   "checks": checks}, f)
    return path


def serve(ha, cfg, port, wrap=()):
    p = bench.spawn(list(wrap) + [ha, "serve", "--config", cfg], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    bench.wait_until(lambda: bench.http_get("http://127.0.0.1:%d/livez" % port)[0] == 200,
                     60 if wrap else 10, what="healthagg serve on %d" % port)
    return p


def metrics(port):
    code, body = bench.http_get("http://127.0.0.1:%d/metrics" % port)
    if code != 200:
        raise RuntimeError("/metrics answered %s" % code)
    return bench.parse_metrics(body)


def probes_and_failures(m0, m1):
    d = lambda k: bench.metric_sum(m1, k) - bench.metric_sum(m0, k)  # noqa: E731
    return d("healthagg_check_probes_total"), d("healthagg_check_failures_total")


def in_loop_instructions(ha, tmp, kind, url_fn, P):
    port = bench.free_port()
    cfg = config(os.path.join(tmp, "cg-%s.json" % kind), port, 20, url_fn, "500ms", "400ms")
    prefix = os.path.join(tmp, "cg-%s" % kind)
    p = serve(ha, cfg, port, wrap=["valgrind", "--tool=callgrind", "-q",
                                   "--callgrind-out-file=%s.%%p" % prefix])
    try:
        time.sleep(P["warm"])
        m0 = metrics(port)
        cg, _, _ = bench.window_callgrind(p.pid, prefix, lambda: time.sleep(P["cg_window"]))
        m1 = metrics(port)
    finally:
        bench.stop(p)
    probes, fails = probes_and_failures(m0, m1)
    cycles = cg["calls"].get("ha_state_apply", 0) or probes
    r = {"ir_per_cycle": cg["total"] / max(cycles, 1), "cycles": cycles, "failures": fails,
         "top": [(f, ir) for f, ir, _, _ in bench.cg_top(cg, 8)]}
    log("in-loop %s: %.0f instructions per check cycle over %d cycles (%d failed)" % (
        kind, r["ir_per_cycle"], cycles, fails))
    return r


def in_loop_cpu(ha, tmp, kind, url_fn, P):
    port = bench.free_port()
    n = P["cpu_checks"]
    cfg = config(os.path.join(tmp, "cpu-%s.json" % kind), port, n, url_fn, "1s", "500ms")
    p = serve(ha, cfg, port)
    try:
        time.sleep(P["warm"])
        m0, c0, t0 = metrics(port), bench.proc_cpu(p.pid), time.monotonic()
        time.sleep(P["cpu_window"])
        m1, c1, t1 = metrics(port), bench.proc_cpu(p.pid), time.monotonic()
    finally:
        bench.stop(p)
    probes, fails = probes_and_failures(m0, m1)
    r = {"checks": n, "window_s": t1 - t0, "probes": probes, "failures": fails,
         "cpu_s": c1 - c0, "cpu_us_per_probe": 1e6 * (c1 - c0) / max(probes, 1),
         "cpu_pct": 100 * (c1 - c0) / (t1 - t0)}
    log("in-loop %s: %d checks at 1s, %.0f probes, CPU %.1f%%, %.1f us CPU per probe (%d failed)"
        % (kind, n, probes, r["cpu_pct"], r["cpu_us_per_probe"], fails))
    return r


def exec_cost(name, argv, runs, cg_runs, env=None, expect_rc=0):
    """CPU time per run (rusage of waited-for children) and callgrind instructions."""
    cpu, wall = [], []
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        r = bench.run(argv, timeout=60, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        t1 = time.monotonic()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode != expect_rc:
            raise RuntimeError("%s exited %d: %s %s" % (name, r.returncode, r.stdout, r.stderr))
        cpu.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
        wall.append(t1 - t0)
    irs = []
    for i in range(cg_runs):
        out = tempfile.mktemp(prefix="cg-exec.", dir=bench.OUTDIR)
        rc, total = bench.callgrind_cmd(argv, out, timeout=600)
        irs.append(total)
        os.unlink(out)
    res = {"runs": runs, "cpu_ms_median": 1e3 * statistics.median(cpu),
           "cpu_ms_mean": 1e3 * statistics.mean(cpu), "wall_ms_median": 1e3 * statistics.median(wall),
           "ir_median": statistics.median(irs) if irs else None}
    log("exec %s: CPU %.2f ms median (%.2f mean), wall %.2f ms, %s instructions" % (
        name, res["cpu_ms_median"], res["cpu_ms_mean"], res["wall_ms_median"],
        "%.0f" % res["ir_median"] if irs else "?"))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--healthagg", required=True, help="a Release (or static) healthagg")
    ap.add_argument("--testapp", help="default: tests/testapp/testapp beside --healthagg")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", help="also write the Markdown section here")
    a = ap.parse_args()
    P = (dict(warm=2, cg_window=2, cpu_checks=100, cpu_window=3, exec_runs=10, node_runs=3,
              cg_runs=1) if a.quick else
         dict(warm=3, cg_window=8, cpu_checks=200, cpu_window=15, exec_runs=100, node_runs=20,
              cg_runs=3))
    ha = os.path.abspath(a.healthagg)
    testapp = a.testapp or os.path.join(os.path.dirname(ha), "tests", "testapp", "testapp")
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    bench.OUTDIR = tempfile.mkdtemp(prefix="grpc-bench.", dir=os.path.join(HERE, "out"))
    r = subprocess.run(["sh", os.path.join(REPO, "tests", "grpc", "setup.sh"), PEER],
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit("grpc_bench: installing the Node peer failed (tests/grpc/setup.sh %s)" % PEER)
    R = {"binary": ha, "node": subprocess.run(["node", "--version"], capture_output=True,
                                              text=True).stdout.strip()}
    tmp = bench.OUTDIR
    try:
        gs, gport = start_grpc_server()
        ts, tport = start_testapp(testapp)
        grpc_url = lambda i: "grpc://127.0.0.1:%d/pkg.Svc" % gport  # noqa: E731
        http_url = lambda i: "http://127.0.0.1:%d/" % tport  # noqa: E731
        R["in_loop_ir"] = {k: in_loop_instructions(ha, tmp, k, f, P)
                           for k, f in (("grpc", grpc_url), ("http", http_url))}
        R["in_loop_cpu"] = {k: in_loop_cpu(ha, tmp, k, f, P)
                            for k, f in (("grpc", grpc_url), ("http", http_url))}
        R["exec"] = {
            "healthagg check grpc://": exec_cost(
                "healthagg check grpc://", [ha, "check", grpc_url(0)], P["exec_runs"], P["cg_runs"]),
            "node client.js (@grpc/grpc-js)": exec_cost(
                "node client.js", ["node", CLIENT_JS, "127.0.0.1:%d" % gport, "pkg.Svc"],
                P["node_runs"], 1, env=node_env()),
            "healthagg check http://": exec_cost(
                "healthagg check http://", [ha, "check", http_url(0)], P["exec_runs"], P["cg_runs"]),
        }
    finally:
        bench.stop_all()
    e = R["exec"]
    g, n, h = e["healthagg check grpc://"], e["node client.js (@grpc/grpc-js)"], e["healthagg check http://"]
    il, ic = R["in_loop_ir"], R["in_loop_cpu"]
    R["ratios"] = {
        "exec_cpu_node_over_healthagg": n["cpu_ms_median"] / g["cpu_ms_median"],
        "exec_ir_node_over_healthagg": n["ir_median"] / g["ir_median"],
        "in_loop_ir_grpc_over_http": il["grpc"]["ir_per_cycle"] / il["http"]["ir_per_cycle"],
        "in_loop_cpu_grpc_over_http": ic["grpc"]["cpu_us_per_probe"] / ic["http"]["cpu_us_per_probe"],
    }
    md = render(R, a.quick)
    print(md)
    if a.out:
        with open(a.out, "w") as f:
            f.write(md + "\n")
    print(json.dumps(R, default=str), file=sys.stderr)


def render(R, quick):
    e, il, ic, q = R["exec"], R["in_loop_ir"], R["in_loop_cpu"], R["ratios"]
    rows = [
        "| measure | gRPC (`grpc://`) | reference | ratio | goal |",
        "|---|---|---|---|---|",
        "| exec, CPU time per run (median) | `healthagg check`: %.2f ms | Node `@grpc/grpc-js` client: %.1f ms | Node / healthagg = **%.0f×** | ≥ 20× |" % (
            e["healthagg check grpc://"]["cpu_ms_median"], e["node client.js (@grpc/grpc-js)"]["cpu_ms_median"],
            q["exec_cpu_node_over_healthagg"]),
        "| exec, instructions per run (callgrind) | %.2f M | %.0f M | **%.0f×** | |" % (
            e["healthagg check grpc://"]["ir_median"] / 1e6,
            e["node client.js (@grpc/grpc-js)"]["ir_median"] / 1e6, q["exec_ir_node_over_healthagg"]),
        "| exec, wall time per run (median) | %.2f ms | %.1f ms | | |" % (
            e["healthagg check grpc://"]["wall_ms_median"], e["node client.js (@grpc/grpc-js)"]["wall_ms_median"]),
        "| in-loop, instructions per check cycle (20 checks at 500 ms, callgrind) | %.0f | http:// check: %.0f | gRPC / HTTP = **%.2f×** | ≤ 3× |" % (
            il["grpc"]["ir_per_cycle"], il["http"]["ir_per_cycle"], q["in_loop_ir_grpc_over_http"]),
        "| in-loop, CPU time per probe (%d checks at 1 s, /proc) | %.1f µs | http:// check: %.1f µs | **%.2f×** | ≤ 3× |" % (
            ic["grpc"]["checks"], ic["grpc"]["cpu_us_per_probe"], ic["http"]["cpu_us_per_probe"],
            q["in_loop_cpu_grpc_over_http"]),
        "| exec `healthagg check http://` (reference) | | %.2f ms CPU, %.2f M instructions | | |" % (
            e["healthagg check http://"]["cpu_ms_median"], e["healthagg check http://"]["ir_median"] / 1e6),
    ]
    head = ("Measured by `bench/grpc_bench.py%s --healthagg %s` (%s; Node %s), all on 127.0.0.1 "
            "against one `@grpc/grpc-js` server with the `grpc-health-check` service; the HTTP "
            "reference probes the test app. Failures during the windows: in-loop gRPC %d, HTTP %d." % (
                " --quick" if quick else "", os.path.relpath(R["binary"], REPO), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                R["node"], il["grpc"]["failures"] + ic["grpc"]["failures"],
                il["http"]["failures"] + ic["http"]["failures"]))
    return head + "\n\n" + "\n".join(rows)


if __name__ == "__main__":
    try:
        main()
    finally:
        bench.stop_all()
