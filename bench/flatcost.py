#!/usr/bin/python3
"""bench/flatcost.py - is the engine's cost per check flat? (issue 9 item 8)

Two figures, measured on 127.0.0.1 against nginx `return 200` (bench.py's helpers):
  1. callgrind instructions per check cycle (one probe and everything it causes: timer, connect,
     request, answer, state, aggregate, caches) with 20 checks at 100 ms and with 1,000 checks
     at 1 s, no scrapes; cycles are the calls of ha_state_apply in the window. Also the
     instructions of one /metrics render at 1,000 checks (5 scrapes under callgrind).
  2. with 1,000 checks at 1 s and /metrics scraped once a second for --window seconds (no
     valgrind): the event loop turns that worked longer than 2 ms, from the daemon's
     healthagg_loop_turn_seconds histogram (bucket deltas over the window), its largest bucket,
     the scheduler lag histogram over the same window, and each scrape's wall time seen by the
     client. A binary without the loop-turn histogram (before it existed) gets the rest.

Usage:
  bench/flatcost.py [--binary PATH] [--label NAME] [--window 30] [--write-results bench/RESULTS.md]
Without --binary it builds bench/out/build-release (Release, like run.sh). Each run saves
bench/out/flatcost/<label>.json; --write-results replaces the "Flat engine cost" section of that
file with a table of every saved run (so: run once with the old binary as --label before, once
as --label after). Peers (nginx-light, valgrind) are installed with apt-get when missing.
Everything started here is stopped by its process group before exit.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the helpers: Nginx, Serve, callgrind, metrics parsing)

REPO = os.path.dirname(HERE)
BEGIN, END = "<!-- flatcost:begin -->", "<!-- flatcost:end -->"


def ensure_tools():
    need = {"nginx": "nginx-light", "valgrind": "valgrind", "callgrind_control": "valgrind"}
    missing = sorted({pkg for tool, pkg in need.items() if not shutil.which(tool)})
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit("flatcost.py: missing %s; install them (apt-get install %s)" % (
            ", ".join(missing), " ".join(missing)))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-qq"], check=True,
                   timeout=900, env=env)
    subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq",
                    "--no-install-recommends"] + missing, check=True, timeout=900, env=env,
                   stdout=subprocess.DEVNULL)


def build_release(out):
    build = os.path.join(out, "build-release")
    if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, timeout=600, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "-j2", "--target", "healthagg"], check=True,
                   timeout=1200, stdout=subprocess.DEVNULL)
    return os.path.join(build, "healthagg")


def cycle_cost(binary, nginx_port, tmp, n, interval, timeout, warm, window, renders=0):
    """Ir per check cycle under callgrind; with renders > 0, also Ir per /metrics render."""
    port = bench.free_port()
    cfg = bench.checks_config(os.path.join(tmp, "cycle-%d.json" % n), port, n,
                              lambda i: "http://127.0.0.1:%d/c%d" % (nginx_port, i),
                              interval, timeout)
    prefix = os.path.join(bench.OUTDIR, "cg-flat-%d" % n)
    s = bench.Serve(binary, port, ["--config", cfg], bench.OUTDIR, "serve-flat-%d" % n,
                    wrap=["valgrind", "--tool=callgrind", "-q",
                          "--callgrind-out-file=%s.%%p" % prefix])
    s.start()
    res = {"checks": n, "interval": interval}
    try:
        time.sleep(warm)
        cg, _, dump = bench.window_callgrind(s.pid, prefix, lambda: time.sleep(window))
        cycles = cg["calls"].get("ha_state_apply", 0)
        agg = {f: cg["incl"].get(f, 0) for f in ("ha_aggregate", "ha_aggregate_summary",
                                                  "ha_scheduler_refresh", "ha_agg_tracker_summary")}
        res.update({"ir_total": cg["total"], "cycles": cycles,
                    "ir_per_cycle": cg["total"] / max(cycles, 1), "dump": dump,
                    "aggregate_ir_per_cycle": {f: v / max(cycles, 1) for f, v in agg.items() if v},
                    "top": bench.cg_top(cg, 12)})
        if renders:
            def scrape():
                for _ in range(renders):
                    code, body = bench.http_get(s.url("/metrics"), timeout=60)
                    if code != 200:
                        raise RuntimeError("/metrics answered %s" % code)
                    time.sleep(1.0)
                return len(body)
            cg2, size, _ = bench.window_callgrind(s.pid, prefix, scrape)
            fn = next((f for f in ("ha_cache_metrics", "ha_render_metrics_cached",
                                   "ha_render_metrics") if cg2["calls"].get(f)), None)
            calls = cg2["calls"].get(fn, 0) if fn else 0
            res["metrics_render"] = {"function": fn, "renders": calls, "bytes": size,
                                     "ir_per_render": cg2["incl"].get(fn, 0) / max(calls, 1)}
    finally:
        s.stop()
    bench.log("  %d checks @%s: %.0f Ir per cycle over %d cycles%s" % (
        n, interval, res["ir_per_cycle"], res["cycles"],
        "; /metrics render %.2f M Ir (%s, %d renders, %d bytes)" % (
            res["metrics_render"]["ir_per_render"] / 1e6, res["metrics_render"]["function"],
            res["metrics_render"]["renders"], res["metrics_render"]["bytes"])
        if "metrics_render" in res else ""))
    return res


def scrape_turns(binary, nginx_port, tmp, n, warm, window):
    """1,000 checks at 1 s, /metrics scraped once a second: loop turns over 2 ms."""
    port = bench.free_port()
    cfg = bench.checks_config(os.path.join(tmp, "scrape-%d.json" % n), port, n,
                              lambda i: "http://127.0.0.1:%d/c%d" % (nginx_port, i), "1s", "500ms")
    s = bench.Serve(binary, port, ["--config", cfg], bench.OUTDIR, "serve-scrape").start()
    scrapes = []
    try:
        time.sleep(warm)
        # control: the same load without scrapes (but for the two reads around it)
        c0 = s.metrics()
        time.sleep(window / 2)
        c1 = s.metrics()
        m0 = s.metrics()
        end = time.monotonic() + window
        nxt = time.monotonic() + 1.0
        while time.monotonic() < end:
            time.sleep(max(0.0, nxt - time.monotonic()))
            nxt += 1.0
            t = time.perf_counter()
            code, body = bench.http_get(s.url("/metrics"), timeout=30)
            scrapes.append((time.perf_counter() - t) * 1e3)
            if code != 200:
                raise RuntimeError("/metrics answered %s" % code)
        m1 = s.metrics()
    finally:
        s.stop()
    res = {"checks": n, "window_s": window, "scrapes": len(scrapes) + 1,
           "scrape_ms": {"p50": bench.pct(scrapes, 0.5), "max": max(scrapes)},
           "bytes": len(body),
           "probes": bench.metric_sum(m1, "healthagg_check_probes_total") -
           bench.metric_sum(m0, "healthagg_check_probes_total"),
           "lag": bench.hist_window(m0, m1, "healthagg_scheduler_lag_seconds"),
           "lag_max_ms_since_start": 1e3 * m1.get("healthagg_scheduler_lag_max_seconds", float("nan"))}
    turns = bench.hist_window(m0, m1, "healthagg_loop_turn_seconds")
    control = bench.hist_window(c0, c1, "healthagg_loop_turn_seconds")
    if turns:
        b = turns["buckets"]
        over = b["+Inf"] - b["0.002"]
        cb = control["buckets"]
        res["control"] = {"window_s": window / 2, "count": cb["+Inf"],
                          "over_2ms": cb["+Inf"] - cb["0.002"], "buckets": cb}
        top = next((le for le in sorted((float(k) for k in b if k != "+Inf"))
                    if b["%g" % le] == b["+Inf"]), float("inf"))
        res["turns"] = {"count": b["+Inf"], "over_2ms": over, "max_le_s": top,
                        "p99_s": turns.get("p99"), "buckets": b,
                        "max_ms_since_start": 1e3 * m1.get("healthagg_loop_turn_max_seconds", float("nan"))}
        bench.log("  %d checks, %d scrapes of %d bytes: %d loop turns, %d over 2 ms CPU, all <= %g ms; "
                  "scrape wall p50 %.2f max %.2f ms; control without scrapes: %d of %d turns over 2 ms" % (
                      n, res["scrapes"], res["bytes"], b["+Inf"], over, 1e3 * top,
                      res["scrape_ms"]["p50"], res["scrape_ms"]["max"],
                      res["control"]["over_2ms"], res["control"]["count"]))
    else:
        bench.log("  %d checks, %d scrapes of %d bytes: (no loop-turn histogram in this binary); lag "
                  "p99 <= %g ms; scrape wall p50 %.2f max %.2f ms" % (
                      n, res["scrapes"], res["bytes"], 1e3 * res["lag"]["p99_le"],
                      res["scrape_ms"]["p50"], res["scrape_ms"]["max"]))
    return res


def fmt_ms(s):
    return "%g" % (1e3 * s) if s == s and s != float("inf") else "> 1000"


def section(runs):
    lines = [BEGIN, "## Flat engine cost (issue 9 item 8)", "",
             "Written by `bench/flatcost.py` (not by `run.sh`). Release builds (glibc), nginx "
             "`return 200` on 127.0.0.1. Per-cycle cost: `serve` under callgrind, counters zeroed "
             "after the warm-up, total Ir of the window / calls of `ha_state_apply`; 20 checks at "
             "100 ms and 1,000 checks at 1 s, no scrapes. /metrics render: inclusive Ir of the "
             "render per scrape at 1,000 checks. Loop turns: 1,000 checks at 1 s without valgrind, "
             "/metrics scraped once a second; `healthagg_loop_turn_seconds` bucket deltas over the "
             "window: the CPU time of each turn's work between two waits for events (CPU time, so "
             "the kernel preempting the daemon on this shared 2-CPU machine does not count); the "
             "histogram's bounds are 0.5, 1, 2, 5 ms... A control window of half the length "
             "without scrapes runs first. Scrape wall time is the client's (Python urllib), "
             "including its own reading of the page; the lag is `healthagg_scheduler_lag_seconds` "
             "over the scrape window.", "",
             "| run | Ir/cycle, 20 checks | Ir/cycle, 1,000 checks | ratio | /metrics render, 1,000 checks "
             "| loop turns in window | turns > 2 ms | longest turn in window | control: turns > 2 ms without scrapes "
             "| scrape wall p50 / max | scheduler lag p99 in window |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in runs:
        c20, c1k, t = r["cycle"]["20"], r["cycle"]["1000"], r["scrape"]
        mr = c1k.get("metrics_render", {})
        turns = t.get("turns")
        ctl = t.get("control")
        lines.append("| %s (%s) | %s | %s | %.2fx | %s | %s | %s | %s | %s | %.1f / %.1f ms | <= %s ms |" % (
            label, r["commit"], "{:,.0f}".format(c20["ir_per_cycle"]), "{:,.0f}".format(c1k["ir_per_cycle"]),
            c1k["ir_per_cycle"] / c20["ir_per_cycle"],
            "%.2f M Ir (%d kB)" % (mr["ir_per_render"] / 1e6, mr["bytes"] // 1000) if mr else "-",
            "{:,}".format(int(turns["count"])) if turns else "not measured (no histogram)",
            "%d" % turns["over_2ms"] if turns else "-",
            ("<= %s ms" % fmt_ms(turns["max_le_s"])) if turns else "-",
            ("%d of %s" % (ctl["over_2ms"], "{:,}".format(int(ctl["count"])))) if ctl else "-",
            t["scrape_ms"]["p50"], t["scrape_ms"]["max"], fmt_ms(t["lag"]["p99_le"])))
    lines += ["", "A `before` run measures the tree before this work, built the same way: `git archive "
              "<commit> | tar -x -C DIR && cmake -S DIR -B DIR/build-rel -DCMAKE_BUILD_TYPE=Release && "
              "cmake --build DIR/build-rel --target healthagg`, then `--binary DIR/build-rel/healthagg "
              "--label before --commit <commit>`. Notes on these figures: `bench/ANALYSIS.md`, "
              "\"Flat engine cost\".", "", "Commands:", "", "```"]
    for label, r in runs:
        lines.append(r["command"])
    lines += ["```", "", "Goal: the 1,000-check cost per cycle within 1.2x of the 20-check cost, and no "
              "loop turn above 2 ms at 1,000 checks with /metrics scraped once a second.", END]
    return "\n".join(lines) + "\n"


def write_results(path, outdir):
    runs = []
    for f in sorted(glob.glob(os.path.join(outdir, "*.json")), key=os.path.getmtime):
        with open(f) as fh:
            runs.append((os.path.basename(f)[:-5], json.load(fh)))
    text = open(path).read() if os.path.exists(path) else ""
    sec = section(runs)
    if BEGIN in text and END in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + sec.rstrip("\n") + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + sec
    with open(path, "w") as fh:
        fh.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", help="healthagg binary to measure (default: build Release)")
    ap.add_argument("--label", default="after")
    ap.add_argument("--commit", help="what the binary was built from (default: HEAD)")
    ap.add_argument("--window", type=float, default=30.0, help="scrape window, seconds")
    ap.add_argument("--cg-window", type=float, default=10.0, help="callgrind window, seconds")
    ap.add_argument("--warm", type=float, default=3.0)
    ap.add_argument("--write-results", metavar="FILE")
    ap.add_argument("--report-only", action="store_true", help="only rewrite --write-results")
    a = ap.parse_args()
    out = os.path.join(HERE, "out")
    outdir = os.path.join(out, "flatcost")
    os.makedirs(outdir, exist_ok=True)
    if a.report_only:
        if not a.write_results:
            sys.exit("flatcost.py: --report-only needs --write-results FILE")
        write_results(a.write_results, outdir)
        return 0
    ensure_tools()
    binary = a.binary or build_release(out)
    commit = a.commit or subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip()
    # Under a name without "healthagg": other jobs clean up with `pkill -f 'healthagg serve'`.
    os.makedirs(os.path.join(out, "bin"), exist_ok=True)
    ha = os.path.join(out, "bin", "ha-flat-" + a.label)
    shutil.copy2(binary, ha)
    bench.OUTDIR = os.path.join(outdir, a.label + ".d")
    os.makedirs(bench.OUTDIR, exist_ok=True)
    import tempfile
    tmp = tempfile.mkdtemp(prefix="flatcost.")
    ng = bench.Nginx(tmp, bench.free_port())
    res = {"label": a.label, "commit": commit, "binary": binary,
           "command": "bench/flatcost.py " + " ".join(sys.argv[1:])}
    try:
        ng.start()
        bench.log("flatcost: %s (%s)" % (a.label, commit))
        res["cycle"] = {
            "20": cycle_cost(ha, ng.port, tmp, 20, "100ms", "90ms", a.warm, a.cg_window),
            "1000": cycle_cost(ha, ng.port, tmp, 1000, "1s", "500ms", a.warm, a.cg_window,
                               renders=5)}
        res["scrape"] = scrape_turns(ha, ng.port, tmp, 1000, a.warm, a.window)
    finally:
        ng.stop()
        bench.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    c20, c1k = res["cycle"]["20"]["ir_per_cycle"], res["cycle"]["1000"]["ir_per_cycle"]
    bench.log("flatcost: %s: %.0f / %.0f Ir per cycle (20 / 1,000 checks) = %.2fx" % (
        a.label, c20, c1k, c1k / c20))
    with open(os.path.join(outdir, a.label + ".json"), "w") as fh:
        json.dump(res, fh, indent=1, default=str)
    if a.write_results:
        write_results(a.write_results, outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
