"""Shared helpers for healthagg's integration tests (python3 stdlib only, loopback only).

Owns: starting the testapp and `healthagg serve` as real processes, reading their startup lines,
HTTP requests to them, polling with deadlines (`wait_until`; no fixed sleeps as synchronisation),
running the one-shot CLI commands, and killing every process a test started, whatever happens.

A test file defines functions decorated with @test and ends with `run(__name__)`; it is run as
    python3 test_X.py --healthagg build/healthagg --testapp build/tests/testapp/testapp [-k NAME]
Each test gets a fresh Ctx (its processes), a wall-clock limit (SIGALRM), and on failure prints
what was expected, what was seen, and the last log lines of every healthagg it started.

Output guard (every test, whatever it asserts): every stdout line of `healthagg serve` must be
strict UTF-8 and one JSON object; every /health body fetched from a healthagg must be strict
UTF-8 JSON and every /readyz body strict UTF-8 on one line; `probe` and `check` output must be
strict UTF-8. A test that saw a violation fails even if its own assertions held.
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

HEALTHAGG = None
TESTAPP = None
TEST_LIMIT_S = 40  # per test; ctest's TIMEOUT bounds the file
VIOLATIONS = []  # output guard findings of the running test (see the module docstring)
HEALTHAGG_PORTS = set()  # ports of healthagg processes started by the running test


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def strict_json(raw, what):
    """Parses bytes as strict UTF-8 JSON (no NaN/Infinity); records a violation and returns
    None when they are not."""
    try:
        return json.loads(raw.decode("utf-8", "strict"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as e:
        VIOLATIONS.append(f"{what}: not strict UTF-8 JSON ({e}): {raw[:300]!r}")
        return None


def strict_utf8(raw, what, one_line=False):
    try:
        text = raw.decode("utf-8", "strict")
    except UnicodeDecodeError as e:
        VIOLATIONS.append(f"{what}: not UTF-8 ({e}): {raw[:300]!r}")
        return
    if one_line and "\n" in text.rstrip("\n"):
        VIOLATIONS.append(f"{what}: more than one line: {raw[:300]!r}")


class TestFailure(Exception):
    pass


class TestSkipped(Exception):
    """Raised by skip(): the test cannot run here (missing privilege or tool)."""


def skip(reason):
    raise TestSkipped(reason)


def fail(msg):
    raise TestFailure(msg)


def expect(cond, msg):
    if not cond:
        fail(msg)


def expect_eq(seen, expected, what):
    if seen != expected:
        fail(f"{what}: expected {expected!r}, saw {seen!r}")


def wait_until(cond, timeout, what, interval=0.02):
    """Poll cond() until it returns a truthy value (returned) or the deadline passes (failure).
    cond may raise; the last value/exception is reported."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = cond()
            if last:
                return last
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            fail(f"timed out after {timeout:.2f}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)


def poll(fn, ok, timeout, what, interval=0.02):
    """Call fn() until ok(value) holds; returns that value, or fails showing the last value."""
    box = []

    def cond():
        box[:] = [fn()]
        return ok(box[0])
    try:
        wait_until(cond, timeout, what, interval)
    except TestFailure as e:
        if box:
            fail(f"timed out after {timeout:.2f}s waiting for {what}; last seen: {box[0]!r}")
        raise e
    return box[0]


class Proc:
    """A child process whose stdout/stderr are collected line by line by reader threads."""

    def __init__(self, name, argv, env=None, json_lines=False, stdin=subprocess.DEVNULL,
                 stop_signal=None):
        self.name = name
        self.stop_signal = stop_signal  # sent (and up to 10s waited for) before SIGKILL
        self.argv = argv
        self.json_lines = json_lines  # stdout must be JSON lines (the output guard)
        full_env = dict(os.environ)
        for k in ("HEALTHAGG_LISTEN", "HEALTHAGG_CONFIG", "HEALTHAGG_CONFIG_FILE"):
            full_env.pop(k, None)  # tests opt in to these explicitly
        full_env.update(env or {})
        self.lines = []
        self.err_lines = []
        self.cond = threading.Condition()
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=full_env)
        self.threads = [threading.Thread(target=self._pump, args=(self.p.stdout, self.lines),
                                         daemon=True),
                        threading.Thread(target=self._pump, args=(self.p.stderr, self.err_lines),
                                         daemon=True)]
        for t in self.threads:
            t.start()

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            what = f"{self.name} (pid {self.p.pid}) {'stdout' if sink is self.lines else 'stderr'}"
            if self.json_lines and sink is self.lines:
                obj = strict_json(raw, f"{what} line")
                if obj is not None and not isinstance(obj, dict):
                    VIOLATIONS.append(f"{what} line is not a JSON object: {raw[:300]!r}")
            else:
                strict_utf8(raw, f"{what} line")
            with self.cond:
                sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pred, timeout, what, start=0):
        """First stdout line (index >= start) for which pred(line) is truthy; fails on timeout
        or if the process exits without printing it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    if pred(line):
                        return line
                start = max(start, len(self.lines))
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f"{self.name}: timed out after {timeout:.2f}s waiting for {what}")
                if self.p.poll() is not None and not any(t.is_alive() for t in self.threads):
                    fail(f"{self.name} exited with {self.p.returncode} before {what}")
                self.cond.wait(min(left, 0.1))

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            fail(f"{self.name} did not exit within {timeout:.2f}s")
        for t in self.threads:
            t.join(2)
        return rc

    def kill(self):
        if self.p.poll() is None and self.stop_signal is not None:
            self.p.send_signal(self.stop_signal)  # a database shuts down cleanly on it
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.p.poll() is None:
            self.p.kill()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for t in self.threads:
            t.join(1)


class TestApp:
    def __init__(self, ctx, port=0, mode=None):
        argv = [TESTAPP, "--port", str(port)] + (["--mode", mode] if mode else [])
        self.proc = ctx.spawn("testapp", argv)
        line = self.proc.wait_line(lambda l: l.startswith("PORTS "), 5, "the PORTS line")
        _, sp, cp = line.split()
        self.port, self.control_port = int(sp), int(cp)
        self.url = f"http://127.0.0.1:{self.port}/"

    def set_mode(self, mode):
        st, _, body = http_request("GET", self.control_port, "/mode/" + mode)
        if st != 200:
            fail(f"testapp rejected mode {mode!r}: {st} {body!r}")

    def count(self):
        return int(http_request("GET", self.control_port, "/count")[2])

    def kill(self):
        self.proc.kill()


class Healthagg:
    """`healthagg serve`, its JSON log lines and its bound port."""

    def __init__(self, ctx, args, env=None, listen="127.0.0.1:0", wrap=()):
        # wrap: a command prefix, e.g. ["unshare", "--pid", "--fork", "--mount-proc"]
        argv = list(wrap) + [HEALTHAGG, "serve"] + (["--listen", listen] if listen else []) + \
            list(args)
        self.proc = ctx.spawn("healthagg", argv, env, json_lines=True)
        ctx.healthaggs.append(self)
        line = self.proc.wait_line(lambda l: '"startup"' in l, 5, "the startup log line")
        self.startup = json.loads(line)
        self.started_at = time.monotonic()
        m = re.fullmatch(r"(?:127\.0\.0\.1|0\.0\.0\.0):(\d+)", str(self.startup.get("listen")))
        expect(m, f"startup line: expected listen '127.0.0.1:<port>', saw {line}")
        self.port = int(m.group(1))
        expect(self.port != 0, "startup line reports port 0, not the bound port")
        HEALTHAGG_PORTS.add(self.port)

    def events(self, event=None, **fields):
        """Parsed log lines, optionally filtered by event and exact field values."""
        out = []
        for line in list(self.proc.lines):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if event and obj.get("event") != event:
                continue
            if all(obj.get(k) == v for k, v in fields.items()):
                out.append(obj)
        return out

    def wait_event(self, pred, timeout, what, start=0):
        def p(line):
            try:
                obj = json.loads(line)
            except ValueError:
                return False
            return pred(obj)
        return json.loads(self.proc.wait_line(p, timeout, what, start))

    def wait_transition(self, check, to, timeout, start=0):
        return self.wait_event(lambda o: o.get("event") == "transition" and
                               o.get("check") == check and o.get("to") == to, timeout,
                               f"a transition of {check!r} to {to!r}", start)

    def mark(self):
        """Index of the next log line: pass as start= to only see later lines."""
        return len(self.proc.lines)

    def get(self, path, method="GET", timeout=2):
        return http_request(method, self.port, path, timeout)

    def readyz(self):
        st, _, body = self.get("/readyz")
        return st, body.decode("utf-8", "replace")

    def tail(self, n=25):
        return self.proc.lines[-n:] + ["[stderr] " + l for l in self.proc.err_lines[-n:]]


class Ctx:
    def __init__(self):
        self.procs = []
        self.healthaggs = []
        self.sockets = []
        self.cleanups = []

    def spawn(self, name, argv, env=None, json_lines=False, stdin=subprocess.DEVNULL,
              stop_signal=None):
        p = Proc(name, argv, env, json_lines, stdin, stop_signal)
        self.procs.append(p)
        return p

    def testapp(self, **kw):
        return TestApp(self, **kw)

    def healthagg(self, args, env=None, listen="127.0.0.1:0", wrap=()):
        return Healthagg(self, args, env, listen, wrap)

    def on_cleanup(self, fn):
        """Run fn() when the test ends, after its processes are killed (newest first)."""
        self.cleanups.append(fn)

    def dead_port(self):
        """A port on 127.0.0.1 that refuses connections: bound (so nobody else takes it) but not
        listening."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        self.sockets.append(s)
        return s.getsockname()[1]

    def busy_port(self):
        """A port on 127.0.0.1 with a listener that never accepts."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        self.sockets.append(s)
        return s.getsockname()[1]

    def cleanup(self):
        for p in self.procs:
            p.kill()
        for s in self.sockets:
            s.close()
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - cleanup goes on; say what failed
                print(f"  cleanup failed: {e}", flush=True)
        self.procs, self.sockets, self.cleanups = [], [], []


def http_request(method, port, path, timeout=2, headers=None, body=None):
    """One request on a fresh connection; returns (status, headers dict lower-cased, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        if port in HEALTHAGG_PORTS and method == "GET":
            route = path.split("?")[0]
            if route == "/health":
                strict_json(body, f"/health body (port {port})")
            elif route in ("/readyz", "/livez"):
                strict_utf8(body, f"{route} body (port {port})", one_line=True)
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


def raw_request(port, data, timeout=2):
    """Send raw bytes, read until the peer closes or the timeout passes; returns the bytes."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    return out


class CliResult:
    def __init__(self, rc, out, err, elapsed):
        self.rc, self.out, self.err, self.elapsed = rc, out, err, elapsed

    def __repr__(self):
        return (f"exit {self.rc} after {self.elapsed:.3f}s, stdout={self.out!r}, "
                f"stderr={self.err!r}")


def cli(args, env=None, timeout=10):
    """Run `healthagg ARGS` to completion (bounded); returns a CliResult."""
    full_env = dict(os.environ)
    for k in ("HEALTHAGG_LISTEN", "HEALTHAGG_CONFIG", "HEALTHAGG_CONFIG_FILE"):
        full_env.pop(k, None)
    full_env.update(env or {})
    # probe mirrors failures to PID 1's stdout, which on a test host is not a container's log:
    # tests opt in (with a PID namespace of their own, test_pidns.py).
    if args and args[0] == "probe" and not any(a.startswith("--mirror") for a in args):
        args = list(args) + ["--mirror", "never"]
    t0 = time.monotonic()
    try:
        r = subprocess.run([HEALTHAGG] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, env=full_env, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        fail(f"`healthagg {' '.join(args)}` did not finish within {timeout}s "
             f"(stdout so far {e.stdout!r})")
    if args and args[0] in ("probe", "check"):
        strict_utf8(r.stdout, f"`healthagg {' '.join(args)}` stdout")
        strict_utf8(r.stderr, f"`healthagg {' '.join(args)}` stderr")
    return CliResult(r.returncode, r.stdout.decode("utf-8", "replace"),
                     r.stderr.decode("utf-8", "replace"), time.monotonic() - t0)


_TESTS = []


def test(fn):
    _TESTS.append(fn)
    return fn


def _on_alarm(signum, frame):
    raise TestFailure(f"test exceeded its {TEST_LIMIT_S}s limit")


def run(module_name):
    global HEALTHAGG, TESTAPP
    if module_name != "__main__":
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--healthagg", required=True)
    ap.add_argument("--testapp", required=True)
    ap.add_argument("-k", dest="only", help="run only tests whose name contains this")
    a = ap.parse_args()
    HEALTHAGG, TESTAPP = os.path.abspath(a.healthagg), os.path.abspath(a.testapp)
    for path in (HEALTHAGG, TESTAPP):
        if not os.access(path, os.X_OK):
            print(f"FAIL: {path} is not an executable file", flush=True)
            sys.exit(1)
    signal.signal(signal.SIGALRM, _on_alarm)
    failed = []
    skipped = []
    ran = 0
    t_all = time.monotonic()
    for fn in _TESTS:
        if a.only and a.only not in fn.__name__:
            continue
        ctx = Ctx()
        t0 = time.monotonic()
        VIOLATIONS.clear()
        HEALTHAGG_PORTS.clear()
        signal.alarm(TEST_LIMIT_S)
        try:
            ran += 1
            fn(ctx)
            signal.alarm(0)
            ctx.cleanup()  # stops the processes, so their last lines are checked too
            if VIOLATIONS:
                fail("output guard: invalid output seen during the test:\n    " +
                     "\n    ".join(VIOLATIONS[:10]))
            print(f"PASS {fn.__name__} ({time.monotonic() - t0:.2f}s)", flush=True)
        except TestSkipped as e:
            signal.alarm(0)
            skipped.append(fn.__name__)
            print(f"SKIPPED: {fn.__name__}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - a test's failure of any kind is reported
            signal.alarm(0)
            failed.append(fn.__name__)
            print(f"FAIL {fn.__name__} ({time.monotonic() - t0:.2f}s)", flush=True)
            if isinstance(e, TestFailure):
                print(f"  {e}")
            else:
                print("  " + traceback.format_exc().replace("\n", "\n  "))
            for h in ctx.healthaggs:
                print(f"  last lines of healthagg (pid {h.proc.p.pid}):")
                for line in h.tail():
                    print("    " + line)
            sys.stdout.flush()
        finally:
            signal.alarm(0)
            ctx.cleanup()
    total = time.monotonic() - t_all
    if failed:
        print(f"{len(failed)} test(s) failed in {total:.1f}s: {', '.join(failed)}", flush=True)
        sys.exit(1)
    if skipped and len(skipped) == ran:
        print(f"SKIPPED: every test of this file ({len(skipped)}) was skipped", flush=True)
        sys.exit(77)  # ctest: SKIP_RETURN_CODE
    if skipped:
        print(f"{len(skipped)} test(s) skipped: {', '.join(skipped)}", flush=True)
    print(f"all tests passed in {total:.1f}s", flush=True)


# The standard sidecar the tests run: 500ms interval, 300ms timeout, thresholds 2/2.
INTERVAL_S = 0.5
TIMEOUT_MS = 300


def serve_args(*checks, interval="500ms", timeout="300ms", failure_threshold=2,
               success_threshold=2, extra=()):
    args = []
    for c in checks:
        args += ["--check", c]
    return args + ["--interval", interval, "--timeout", timeout,
                   "--failure-threshold", str(failure_threshold),
                   "--success-threshold", str(success_threshold)] + list(extra)


def probe(ha_or_port, extra=(), env=None):
    port = ha_or_port if isinstance(ha_or_port, int) else ha_or_port.port
    return cli(["probe", "--url", f"http://127.0.0.1:{port}/readyz"] + list(extra), env=env)


def lines_of(text):
    return [l for l in text.splitlines() if l.strip()]
