"""Name resolution: a DNS server that never answers must not starve other checks, pile up
lookups, hold SIGTERM, or stretch `check`/`probe` past --timeout; every address of a name is
tried. (Issue: hardening, items 1-3.)

Runs in a private mount + network namespace (unshare -m -n, re-executing this file inside it):
/etc/resolv.conf and /etc/hosts are bind-mounted from a temp dir, and a fake DNS server
written here answers on 127.0.0.1:53 per name:
    *.hang.test    never answers
    slow.test      127.0.0.1 after 300 ms
    multi.test     127.0.0.2 then 127.0.0.1 (the first refuses: nothing listens there)
    anything else  NXDOMAIN
/etc/hosts maps app.internal to 127.0.0.1 and dual.internal to ::1 and 127.0.0.1.
Nothing leaves the namespace: its loopback is its only interface."""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

INNER = os.environ.get("HEALTHAGG_DNS_NS") == "1"

if not INNER:
    # Re-run this file inside fresh mount and network namespaces (root needed).
    env = dict(os.environ, HEALTHAGG_DNS_NS="1")
    try:
        r = subprocess.run(["unshare", "--mount", "--net", "--fork", sys.executable] + sys.argv,
                           env=env)
    except FileNotFoundError:
        print("SKIPPED: unshare not found (util-linux)", flush=True)
        sys.exit(77)
    if r.returncode == 1 and os.geteuid() != 0:
        print("SKIPPED: unshare needs root here", flush=True)
        sys.exit(77)
    sys.exit(r.returncode)

import harness  # noqa: E402
from harness import cli, expect, expect_eq, run, serve_args, test  # noqa: E402


class FakeDNS:
    """A UDP DNS server on 127.0.0.1:53 with per-name behaviour; counts queries per name."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 53))
        self.queries = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._loop, daemon=True).start()

    def count(self, name):
        with self.lock:
            return self.queries.get(name, 0)

    def _loop(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(2048)
            except OSError:
                return
            try:
                self._handle(data, peer)
            except (IndexError, struct.error):
                pass  # not a query we understand: no answer

    def _handle(self, data, peer):
        qid = data[:2]
        i, labels = 12, []
        while data[i]:
            n = data[i]
            labels.append(data[i + 1:i + 1 + n].decode())
            i += 1 + n
        question = data[12:i + 5]
        qtype = struct.unpack("!H", data[i + 1:i + 3])[0]
        name = ".".join(labels).lower()
        with self.lock:
            self.queries[name] = self.queries.get(name, 0) + 1
        if name.endswith("hang.test"):
            return
        addrs = {"slow.test": ["127.0.0.1"], "multi.test": ["127.0.0.2", "127.0.0.1"]}.get(name)
        if addrs is None:
            flags, answers = 0x8183, []  # NXDOMAIN
        else:
            flags = 0x8180
            answers = addrs if qtype == 1 else []  # A only; AAAA: no data
        body = b""
        for a in answers:
            body += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(a)
        msg = qid + struct.pack("!HHHHH", flags, 1, len(answers), 0, 0) + question + body
        if name == "slow.test":
            threading.Timer(0.3, self.sock.sendto, (msg, peer)).start()
        else:
            self.sock.sendto(msg, peer)


def setup_namespace():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    d = tempfile.mkdtemp(prefix="healthagg-dns-")
    with open(os.path.join(d, "resolv.conf"), "w") as f:
        f.write("nameserver 127.0.0.1\n")
    with open(os.path.join(d, "hosts"), "w") as f:
        f.write("127.0.0.1 localhost\n127.0.0.1 app.internal\n::1 dual.internal\n"
                "127.0.0.1 dual.internal\n")
    for name in ("resolv.conf", "hosts"):
        target = "/etc/" + name
        if not os.path.exists(target):
            open(target, "a").close()
        subprocess.run(["mount", "--bind", os.path.join(d, name), target], check=True)
    return FakeDNS()


DNS = setup_namespace()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@test
def hung_dns_does_not_starve_other_checks(ctx):
    """30 checks whose names never resolve, probed every 200 ms, beside one check whose name is
    in /etc/hosts: the app check passes throughout; the hung ones fail with a resolve timeout;
    lookups don't pile up (at most one in flight per check); memory stays flat; SIGTERM exits
    at once."""
    app = ctx.testapp()
    port = app.port
    checks = [f"app=http://app.internal:{port}/"]
    checks += [f"h{i}=http://h{i}.hang.test:{port}/" for i in range(30)]
    ha = ctx.healthagg(serve_args(*checks, interval="200ms", timeout="150ms",
                                  failure_threshold=1, success_threshold=1))
    ha.wait_transition("app", "pass", 5)
    ha.wait_transition("h0", "fail", 5)
    rss0 = rss_kb(ha.proc.p.pid)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:
        h = json.loads(ha.get("/health")[2])
        expect_eq(h["checks"]["app"][0]["status"], "pass", "the app check while 30 lookups hang")
        time.sleep(0.2)
    reason = json.loads(ha.get("/health")[2])["checks"]["h3"][0]["output"]
    # Either this attempt's deadline fired while waiting, or it joined a lookup that c-ares
    # itself gave up on at that moment: both say the resolver timed out.
    expect(reason in ("resolve h3.hang.test: timeout after 150ms",
                      "resolve h3.hang.test: Timeout while contacting DNS servers"),
           f"hung check's reason: {reason!r}")
    # 15 attempts per check in 3 s; one lookup is at most 2 tries x (A + AAAA) = 4 packets and
    # lives about 3 s (1 s, then 2 s): without the one-in-flight rule this would be ~60.
    worst = max(DNS.count(f"h{i}.hang.test") for i in range(30))
    expect(worst <= 12, f"queries for one hung name in ~4 s: {worst} (lookups pile up)")
    rss1 = rss_kb(ha.proc.p.pid)
    # Under ASan freed memory sits in quarantine, so RSS says nothing there (LeakSanitizer and
    # valgrind cover leaks in that stage).
    if "ASAN_OPTIONS" not in os.environ:
        expect(rss1 - rss0 < 1024, f"RSS grew from {rss0} kB to {rss1} kB in 3 s")
    t = time.monotonic()
    ha.proc.p.send_signal(15)
    try:
        rc = ha.proc.p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        harness.fail("serve did not exit within 5 s of SIGTERM while lookups were pending")
    expect_eq(rc, 0, "serve's exit code after SIGTERM")
    expect(time.monotonic() - t < 2.0, f"SIGTERM took {time.monotonic() - t:.2f}s")


@test
def check_timeout_bounds_resolution(ctx):
    r = cli(["check", "--timeout", "500ms", "http://x.hang.test:8080/"], timeout=10)
    expect_eq(r.rc, 1, "exit code")
    expect(r.elapsed < 1.5, f"check --timeout 500ms took {r.elapsed:.2f}s")
    expect("resolve x.hang.test: timeout after 500ms" in r.out, f"output: {r.out!r}")


@test
def probe_timeout_bounds_resolution(ctx):
    r = cli(["probe", "--url", "http://y.hang.test:8099/readyz", "--timeout", "500ms"],
            timeout=10)
    expect_eq(r.rc, 1, "exit code")
    expect(r.elapsed < 1.5, f"probe --timeout 500ms took {r.elapsed:.2f}s")
    expect("cannot resolve y.hang.test: timeout" in r.out, f"output: {r.out!r}")
    expect_eq(r.err, "", "probe's stderr")


@test
def unknown_name_says_so(ctx):
    r = cli(["check", "--timeout", "2s", "http://nosuch.test:8080/"], timeout=10)
    expect_eq(r.rc, 1, "exit code")
    expect("resolve nosuch.test:" in r.out and "timeout" not in r.out,
           f"output: {r.out!r}")


@test
def every_address_is_tried(ctx):
    """multi.test is 127.0.0.2 (refused) then 127.0.0.1 (the app); dual.internal is ::1 (nothing
    listens) then 127.0.0.1: both pass, in serve, check and probe."""
    app = ctx.testapp()
    port = app.port
    r = cli(["check", "--timeout", "2s", f"http://multi.test:{port}/",
             f"http://dual.internal:{port}/"], timeout=10)
    expect_eq(r.rc, 0, f"check exit code (output {r.out!r})")
    ha = ctx.healthagg(serve_args(f"m=http://multi.test:{port}/", f"d=http://dual.internal:{port}/"))
    ha.wait_transition("m", "pass", 5)
    ha.wait_transition("d", "pass", 5)
    r = cli(["probe", "--url", f"http://dual.internal:{ha.port}/readyz", "--timeout", "2s"])
    expect_eq(r.rc, 0, f"probe via dual.internal (output {r.out!r})")
    # Nothing listens on a closed port at either address: the reason names both.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    r = cli(["check", "--timeout", "2s", f"http://multi.test:{dead}/"], timeout=10)
    expect_eq(r.rc, 1, "check exit code with nothing listening")
    want = (f"connect: connection refused (127.0.0.2:{dead}), then 127.0.0.1:{dead}: "
            "connection refused")
    expect(want in r.out, f"reason: {r.out!r}, want {want!r}")
    r = cli(["probe", "--url", f"http://dual.internal:{dead}/readyz", "--timeout", "2s"])
    expect_eq(r.rc, 1, "probe exit code with nothing listening")
    expect(f"[::1]:{dead}" in r.out and f"127.0.0.1:{dead}" in r.out,
           f"probe names both addresses: {r.out!r}")


@test
def slow_dns_within_the_timeout_passes(ctx):
    app = ctx.testapp()
    port = app.port
    ha = ctx.healthagg(serve_args(f"s=http://slow.test:{port}/", interval="1s", timeout="800ms"))
    ha.wait_transition("s", "pass", 5)
    r = cli(["check", "--timeout", "200ms", f"http://slow.test:{port}/"], timeout=10)
    expect_eq(r.rc, 1, "a 300 ms answer with a 200 ms timeout")
    expect("resolve slow.test: timeout after 200ms" in r.out, f"output: {r.out!r}")


@test
def ip_literals_and_localhost_never_query(ctx):
    app = ctx.testapp()
    port = app.port
    before = sum(DNS.queries.values())
    r = cli(["check", f"http://127.0.0.1:{port}/", f"http://localhost:{port}/",
             f"tcp://127.0.0.1:{port}"])
    expect_eq(r.rc, 0, f"check exit code ({r.out!r})")
    expect_eq(sum(DNS.queries.values()), before, "DNS queries for literals and localhost")


run(__name__)
