#!/usr/bin/env python3
"""bench/tls.py - what a TLS probe costs: callgrind instructions of a full handshake and of a
resumed one, and the size TLS adds to the static binary.

    bench/tls.py --tls-client build/tests/tls/tls_client [--healthagg build/healthagg]
                 [--static build-static/healthagg] [--write bench/RESULTS.md]

Per case, `valgrind --tool=callgrind` runs tests/tls/tls_client (the TLS layer of healthagg over a
blocking socket: connect, handshake, one HTTPS GET, read the answer) for 1 and for 1+N
connections against nginx; (Ir(1+N) - Ir(1)) / N is the cost of one probe's connection, without
process start-up and trust-store loading. nginx with session tickets and its session cache on
gives resumed handshakes after the first; with both off, every handshake is full. nginx's access
log ($ssl_session_reused) confirms which kind each connection was.

With --healthagg, the same is measured for `healthagg probe` (which must never touch TLS): its
instructions per run, for comparison with a build without TLS. With --write, the table replaces
the "TLS" section of that Markdown file (between the markers <!-- tls:begin --> and
<!-- tls:end -->, appended when absent). Needs valgrind, nginx and openssl; loopback only; every
process started is stopped by its id.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import tlsfixtures  # noqa: E402

N = 20


def callgrind_ir(argv):
    """Total instructions (Ir) of running argv under callgrind."""
    out = tempfile.mktemp(prefix="cg.tls.")
    r = subprocess.run(["valgrind", "--tool=callgrind", "-q", "--callgrind-out-file=" + out] + argv,
                       capture_output=True, timeout=300)
    text = r.stdout.decode(errors="replace")
    try:
        with open(out) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    return int(line.split()[1]), r.returncode, text
    finally:
        if os.path.exists(out):
            os.unlink(out)
    raise RuntimeError("no callgrind totals for %s: %s" % (argv, r.stderr.decode()[-400:]))


def measure(ctx, certs, client, cert, protocols, resume):
    crt, key = certs.path(cert)
    extra = "" if resume else "ssl_session_tickets off; ssl_session_cache off;"
    n = tlsfixtures.Nginx(ctx, crt, key, protocols=protocols, extra=extra)
    base = [client, "127.0.0.1", str(n.port), "--ca-file", certs.ca]
    ir1, rc1, out1 = callgrind_ir(base + ["--count", "1"])
    irn, rcn, outn = callgrind_ir(base + ["--count", str(N + 1)])
    if rc1 != 0 or rcn != 0:
        raise RuntimeError("tls_client failed: %s %s" % (out1, outn))
    full, resumed = harness.wait_until(
        lambda: n.handshakes() if sum(n.handshakes()) == N + 2 else None, 10, "nginx log lines")
    want = (2, N) if resume else (N + 2, 0)
    if (full, resumed) != want:
        raise RuntimeError("nginx saw %d full and %d resumed handshakes, expected %s" %
                           (full, resumed, want))
    m = re.search(r"handshakes full=(\d+) resumed=(\d+)", outn)
    return (irn - ir1) / N, ir1, m.group(0) if m else "?"


def probe_ir(ctx, healthagg):
    """Instructions of one `healthagg probe` against a running sidecar (median of 5 runs)."""
    port = tlsfixtures.free_port()
    app = ctx.spawn("serve", [healthagg, "serve", "--listen", "127.0.0.1:%d" % port,
                              "--check", "file:///", "--interval", "1s", "--timeout", "500ms"])
    harness.wait_until(lambda: harness.http_request("GET", port, "/readyz")[0] == 200, 10,
                       "the sidecar ready")
    runs = sorted(callgrind_ir([healthagg, "probe", "--url",
                                "http://127.0.0.1:%d/readyz" % port])[0] for _ in range(5))
    app.kill()
    return runs[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls-client", required=True)
    ap.add_argument("--healthagg")
    ap.add_argument("--static", help="the static binary whose size to report")
    ap.add_argument("--write", help="Markdown file whose TLS section to replace")
    ap.add_argument("--baseline", help="a healthagg binary without TLS: its probe Ir and size "
                                       "are reported beside --static's")
    a = ap.parse_args()
    for tool in ("valgrind", "nginx", "openssl"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            print("bench/tls.py: %s not found (apt-get install %s)" % (tool, tool))
            return 1
    certs = tlsfixtures.Certs()
    ctx = harness.Ctx()
    rows = []
    try:
        for cert, label in (("good", "ECDSA P-256"), ("rsa", "RSA 2048")):
            for protocols in ("TLSv1.3", "TLSv1.2"):
                full, first, _ = measure(ctx, certs, a.tls_client, cert, protocols, False)
                res, _, counts = measure(ctx, certs, a.tls_client, cert, protocols, True)
                rows.append((label, protocols, full, res, first))
                print("%-12s %-8s full %9.0f Ir  resumed %9.0f Ir  (%.1fx)  [process with one "
                      "full handshake: %d Ir; %s]" % (label, protocols, full, res, full / res,
                                                      first, counts), flush=True)
        probe = probe_ir(ctx, a.healthagg) if a.healthagg else None
        probe_static = probe_ir(ctx, a.static) if a.static else None
        probe_base = probe_ir(ctx, a.baseline) if a.baseline else None
    finally:
        ctx.cleanup()
        certs.cleanup()
    lines = ["<!-- tls:begin -->", "## TLS: handshake cost and size", "",
             "`bench/tls.py` (callgrind instructions of `tests/tls/tls_client`, healthagg's TLS "
             "layer over a blocking socket: connect, handshake, one HTTPS GET, read the answer; "
             "against nginx on 127.0.0.1; per connection = (Ir of 1+%d connections - Ir of 1) / %d, "
             "so process start-up and trust-store loading are not counted; nginx's "
             "`$ssl_session_reused` confirms each kind):" % (N, N), "",
             "| certificate | protocol | full handshake (Ir per probe) | resumed (Ir per probe) | ratio |",
             "|---|---|---:|---:|---:|"]
    for label, proto, full, res, _ in rows:
        lines.append("| %s | %s | %.0f | %.0f | %.1fx |" % (label, proto, full, res, full / res))
    lines += ["", "`healthagg probe` never initialises TLS; instructions of one healthy probe "
              "(callgrind, median of 5):", ""]
    for what, ir, path in (("glibc build", probe, a.healthagg),
                           ("static musl build", probe_static, a.static),
                           ("static musl, without TLS", probe_base, a.baseline)):
        if ir is not None:
            lines.append("- %s: %d Ir (`%s`)" % (what, ir, path))
    for what, path in (("with TLS", a.static), ("without TLS", a.baseline)):
        if path and os.path.exists(path):
            size = os.path.getsize(path)
            lines.append("- static binary %s (`deploy/build-static.sh`, musl, stripped): %d bytes "
                         "(%d KiB); goal with TLS and gRPC: 640 KiB" %
                         (what, size, (size + 1023) // 1024))
    lines.append("<!-- tls:end -->")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.write:
        old = open(a.write).read() if os.path.exists(a.write) else ""
        if "<!-- tls:begin -->" in old:
            new = re.sub(r"<!-- tls:begin -->.*?<!-- tls:end -->\n?", lambda m: text, old,
                         flags=re.S)
        else:
            new = old + ("\n" if old and not old.endswith("\n") else "") + "\n" + text
        with open(a.write, "w") as f:
            f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
