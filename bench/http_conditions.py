#!/usr/bin/env python3
"""bench/http_conditions.py - what the HTTP body conditions cost per probe: callgrind instructions
of one check cycle (probe + state + aggregate) with no body rule, `expect_body`,
`expect_body_regex` and `expect_json`, all against the same JSON answer of the C test app.

    bench/http_conditions.py --healthagg build/healthagg --testapp build/tests/testapp/testapp
                             [--checks 20] [--window 4] [--write bench/RESULTS.md]

Per case, `healthagg serve` runs under `valgrind --tool=callgrind` with N checks at a 100ms
interval; after a warm-up the counters are zeroed (`callgrind_control -z`), a window passes, and
a dump is taken (`-d`). Instructions per cycle = Ir of the window / calls of ha_state_apply (one
per probe result). The inclusive Ir of the condition code itself (ha_json_conds_eval, regexec)
per cycle is shown too. With --write, the table replaces the section between
<!-- http-conditions:begin --> and <!-- http-conditions:end --> of that file (appended when
absent). Loopback only; every process started is stopped by its id.
"""
import argparse
import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

BODY = ('{"status": "UP", "version": "1.4.2", "db": {"latency_ms": 40, "pool": {"used": 3, '
        '"max": 20}}, "checks": [{"name": "cache", "ok": true}, {"name": "queue", "ok": true}]}')
CASES = [
    ("status only", {}),
    ("expect_body", {"expect_body": '"status": "UP"'}),
    ("expect_body_regex", {"expect_body_regex": '"status": *"UP"'}),
    ("expect_json (1 condition)", {"expect_json": [{"path": "$.status", "equals": "UP"}]}),
    ("expect_json (4 conditions)", {"expect_json": [
        {"path": "$.status", "equals": "UP"}, {"path": "$.db.latency_ms", "lt": 100},
        {"path": "$.checks[1].ok", "equals": True}, {"path": "$.error", "exists": False}]}),
]


def cg_parse(path):
    """Total Ir, inclusive Ir per function and call counts of a callgrind dump."""
    names, incl, calls = {}, collections.Counter(), collections.Counter()
    total, fn, cfn, after_calls = None, None, None, False

    def name(spec):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", spec.strip())
        if not m:
            return spec.strip()
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
                    incl[cfn] += cost
                    after_calls = False
                else:
                    incl[fn] += cost
            elif line.startswith("fn="):
                fn = name(line[3:])
            elif line.startswith("cfn="):
                cfn = name(line[4:])
            elif line.startswith("calls="):
                calls[cfn] += int(line[6:].split()[0])
                after_calls = True
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    return total, incl, calls


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.read().decode()


def measure(args, app_port, fields, tmp):
    checks = []
    for i in range(args.checks):
        c = {"name": "c%d" % i, "url": "http://127.0.0.1:%d/health" % app_port}
        c.update(fields)
        checks.append(c)
    cfg = os.path.join(tmp, "cfg.json")
    with open(cfg, "w") as f:
        json.dump({"listen": "127.0.0.1:0", "defaults": {"interval": "100ms", "timeout": "90ms"},
                   "checks": checks}, f)
    prefix = os.path.join(tmp, "cg")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "-q",
                          "--callgrind-out-file=%s.%%p" % prefix, args.healthagg, "serve",
                          "--config", cfg], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    try:
        port = None
        for line in p.stdout:
            if '"startup"' in line:
                port = int(json.loads(line)["listen"].rsplit(":", 1)[1])
                break
        if not port:
            raise RuntimeError("no startup line")
        # drain stdout in the background so the log never blocks the process
        import threading
        threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
        time.sleep(args.warm)
        health = json.loads(get(port, "/health"))
        bad = [k for k, v in health["checks"].items() if v[0]["state"] != "pass"]
        if bad:
            raise RuntimeError("checks not passing: %s" % health["checks"][bad[0]][0]["output"])
        subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True, timeout=60)
        time.sleep(args.window)
        before = set(os.listdir(tmp))
        subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True, timeout=60)
        dump, end = None, time.monotonic() + 30
        while time.monotonic() < end and not dump:
            new = [f for f in os.listdir(tmp) if f not in before and f.startswith("cg.")]
            if new:
                time.sleep(0.5)
                dump = os.path.join(tmp, new[0])
            time.sleep(0.1)
        if not dump:
            raise RuntimeError("no callgrind dump")
        total, incl, calls = cg_parse(dump)
        os.unlink(dump)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        for f in os.listdir(tmp):
            if f.startswith("cg."):
                os.unlink(os.path.join(tmp, f))
    cycles = calls.get("ha_state_apply", 0)
    cond = incl.get("ha_json_conds_eval", 0) + incl.get("regexec", 0)
    return {"cycles": cycles, "ir_per_cycle": total / max(cycles, 1),
            "cond_ir_per_cycle": cond / max(cycles, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--healthagg", required=True)
    ap.add_argument("--testapp", required=True)
    ap.add_argument("--checks", type=int, default=20)
    ap.add_argument("--warm", type=float, default=3)
    ap.add_argument("--window", type=float, default=4)
    ap.add_argument("--write")
    args = ap.parse_args()
    app = subprocess.Popen([args.testapp, "--mode", "json:" + BODY], stdout=subprocess.PIPE,
                           text=True)
    rows = []
    try:
        app_port = int(app.stdout.readline().split()[1])
        with tempfile.TemporaryDirectory() as tmp:
            for label, fields in CASES:
                r = measure(args, app_port, fields, tmp)
                rows.append((label, r))
                print("%-28s %8.0f Ir per cycle (conditions %6.0f) over %d cycles" % (
                    label, r["ir_per_cycle"], r["cond_ir_per_cycle"], r["cycles"]), flush=True)
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(10)
    base = rows[0][1]["ir_per_cycle"]
    table = ["<!-- http-conditions:begin -->", "## HTTP body conditions", "",
             "`bench/http_conditions.py --checks %d --window %g`: %d http checks at 100ms against "
             "the C test app answering a %d-byte JSON body; callgrind instructions per check "
             "cycle (probe, state, aggregate), and of the condition code alone "
             "(`ha_json_conds_eval` or `regexec`, inclusive)." % (
                 args.checks, args.window, args.checks, len(BODY)), "",
             "| check | Ir per cycle | vs status only | condition code |", "|---|---|---|---|"]
    for label, r in rows:
        table.append("| %s | %.0f | %+.0f | %.0f |" % (label, r["ir_per_cycle"],
                                                       r["ir_per_cycle"] - base,
                                                       r["cond_ir_per_cycle"]))
    table.append("<!-- http-conditions:end -->")
    text = "\n".join(table) + "\n"
    print(text)
    if args.write:
        old = open(args.write).read() if os.path.exists(args.write) else ""
        m = re.search(r"<!-- http-conditions:begin -->.*?<!-- http-conditions:end -->\n?", old,
                      re.S)
        new = old[:m.start()] + text + old[m.end():] if m else old.rstrip("\n") + "\n\n" + text
        with open(args.write, "w") as f:
            f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
