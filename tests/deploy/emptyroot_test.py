#!/usr/bin/python3
"""deploy.emptyroot: the static healthagg needs nothing but itself.

An empty root filesystem - a temporary directory holding only the static `healthagg` and the
static test app, no /dev, /proc, /etc, /tmp or libc - is entered with chroot(2) as uid/gid
65532:65532 (the image's USER). Inside it:

  1. the test app listens on 127.0.0.1 (chroot keeps the host's network namespace, so the test
     reaches every port from outside);
  2. `healthagg serve` probes it; from outside, /readyz must turn 200 (and /livez, /health answer);
  3. `healthagg probe` (inside the root, with only HEALTHAGG_LISTEN in its environment, as ECS
     runs it) must exit 0, print `healthy`, and keep stderr silent; `healthagg check` of the app
     must pass too;
  4. the app is switched to `status:503` through its control port; /readyz must turn 503 and
     `probe` (inside) must exit 1 with an `unhealthy: ...HTTP 503` line;
  5. TLS with no trust store in the image: `healthagg check --ca-file /ca.pem https://...` (a
     private CA's certificate, the only other file in the root) passes against `openssl s_server`
     running outside; without --ca-file the check fails saying a ca_file is required, and a
     config with an https:// check and no tls.ca_file is invalid (validate exits 2 naming it);
  6. SIGTERM stops both with exit 0, and the root still holds exactly what was put there
     (nothing was written).

chroot needs root: as any other user the test prints `SKIPPED: <reason>` and exits 77, which
ctest reports as skipped (SKIP_RETURN_CODE). Standard library only.

With --runner (e.g. qemu-aarch64-static, itself a static binary), binaries of another
architecture are run through it: the runner is copied into the root as /runner and every command
becomes /runner /healthagg ... (deploy.arm64_emptyroot: the Graviton build under qemu).

Usage: emptyroot_test.py --healthagg STATIC_BINARY --testapp STATIC_TESTAPP [--runner STATIC_EMU]
"""
import argparse
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import tlsfixtures  # noqa: E402  (certificates by the openssl CLI)

SKIP = 77
UID = GID = 65532
INTERVAL_MS, TIMEOUT_MS, FAILURES = 250, 200, 2


class Failure(Exception):
    pass


def log(msg):
    print(f"emptyroot: {msg}", flush=True)


def enter_root(root):
    """preexec_fn: chroot into ROOT and drop to 65532:65532 before exec (in the child)."""
    def pre():
        os.chroot(root)
        os.chdir("/")
        os.setgroups([])
        os.setgid(GID)
        os.setuid(UID)
    return pre


RUNNER = []  # ["/runner"] with --runner


def spawn(root, argv, env, stdout, stderr):
    argv = RUNNER + argv
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            preexec_fn=enter_root(root), close_fds=True)


def run_inside(root, argv, env, timeout=10):
    argv = RUNNER + argv
    return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          preexec_fn=enter_root(root), timeout=timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=2.0):
    """(status, body) of GET http://127.0.0.1:PORT/PATH, or (None, error) if nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    except OSError as e:
        return None, str(e)
    finally:
        conn.close()


def wait_status(port, path, want, limit):
    """Poll until GET PATH answers WANT; returns the seconds it took."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < limit:
        last = http_get(port, path)
        if last[0] == want:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise Failure(f"GET {path} did not answer {want} within {limit}s (last: {last})")


def read_ports(proc, limit=10):
    """The test app's first line: `PORTS <service> <control>`."""
    buf = b""
    end = time.monotonic() + limit
    while b"\n" not in buf:
        left = end - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise Failure(f"testapp printed no PORTS line (got {buf!r}, exit {proc.poll()})")
        r, _, _ = select.select([proc.stdout], [], [], left)
        if r:
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                continue
            buf += chunk
    words = buf.split(b"\n", 1)[0].decode().split()
    if len(words) != 3 or words[0] != "PORTS":
        raise Failure(f"unexpected first line from testapp: {buf!r}")
    return int(words[1]), int(words[2])


def check_confined(pid, root, what):
    """The process runs as 65532 with ROOT as its root directory."""
    with open(f"/proc/{pid}/status") as f:
        ids = {line.split(":")[0]: line.split()[1:] for line in f if line.startswith(("Uid", "Gid"))}
    if ids["Uid"] != [str(UID)] * 4 or ids["Gid"] != [str(GID)] * 4:
        raise Failure(f"{what} runs with Uid {ids['Uid']} Gid {ids['Gid']}, not {UID}:{GID}")
    proc_root = os.readlink(f"/proc/{pid}/root")
    if os.path.realpath(proc_root) != os.path.realpath(root):
        raise Failure(f"{what}'s root is {proc_root}, not {root}")


def stop(proc, what, limit=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise Failure(f"{what} did not exit within {limit}s of SIGTERM")
    if rc != 0:
        raise Failure(f"{what} exited {rc} after SIGTERM, expected 0")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--healthagg", required=True)
    ap.add_argument("--testapp", required=True)
    ap.add_argument("--runner", help="static emulator to run the binaries with (qemu-*-static)")
    args = ap.parse_args()

    if os.geteuid() != 0:
        print(f"SKIPPED: the empty-root test needs root for chroot(2) (running as uid "
              f"{os.geteuid()})", flush=True)
        return SKIP
    for path in (args.healthagg, args.testapp):
        if not os.access(path, os.X_OK):
            raise Failure(f"{path} not found or not executable (deploy/build-static.sh --testapp "
                          "builds it; the fixture test deploy.static_build runs that)")

    root = tempfile.mkdtemp(prefix="healthagg-emptyroot.")
    procs, files = [], []
    certs = None
    outdir = tempfile.mkdtemp(prefix="healthagg-emptyroot-out.")
    try:
        os.chmod(root, 0o755)  # 65532 must be able to look up /healthagg in it
        binaries = [(args.healthagg, "healthagg"), (args.testapp, "testapp")]
        if args.runner:
            runner = shutil.which(args.runner)
            if not runner:
                print(f"SKIPPED: {args.runner} not found (Debian qemu-user-static; "
                      "tests/deploy/deps.sh installs it)", flush=True)
                return SKIP
            binaries.append((runner, "runner"))
            RUNNER[:] = ["/runner"]
        for src, name in binaries:
            shutil.copyfile(src, os.path.join(root, name))
            os.chmod(os.path.join(root, name), 0o755)
        if tlsfixtures.missing("openssl"):
            raise Failure("openssl not found (tests/deploy/deps.sh installs it)")
        certs = tlsfixtures.Certs(tempfile.mkdtemp(prefix="healthagg-emptyroot-tls."))
        shutil.copyfile(certs.ca, os.path.join(root, "ca.pem"))
        os.chmod(os.path.join(root, "ca.pem"), 0o644)
        before = sorted(os.listdir(root))
        log(f"root {root}: {before} ({os.path.getsize(os.path.join(root, 'healthagg'))} + "
            f"{os.path.getsize(os.path.join(root, 'testapp'))} bytes, nothing else)")

        app = spawn(root, ["/testapp", "--port", "0"], {}, subprocess.PIPE, None)
        procs.append(app)
        sport, cport = read_ports(app)
        check_confined(app.pid, root, "testapp")
        log(f"testapp in the root as {UID}:{GID}: service port {sport}, control port {cport}")

        port = free_port()
        env = {"HEALTHAGG_LISTEN": f"127.0.0.1:{port}"}
        serve_out = open(os.path.join(outdir, "serve.out"), "w+")
        serve_err = open(os.path.join(outdir, "serve.err"), "w+")
        files += [serve_out, serve_err]
        t_start = time.monotonic()
        serve = spawn(root, ["/healthagg", "serve", "--check", f"app=http://127.0.0.1:{sport}/healthz",
                             "--interval", f"{INTERVAL_MS}ms", "--timeout", f"{TIMEOUT_MS}ms",
                             "--failure-threshold", str(FAILURES), "--start-period", "5s"],
                      env, serve_out, serve_err)
        procs.append(serve)
        try:
            ready = wait_status(port, "/readyz", 200, 10)
        except Failure:
            serve_err.seek(0)
            raise Failure(f"/readyz never turned 200; serve exit {serve.poll()}, stderr: "
                          f"{serve_err.read().strip()!r}")
        check_confined(serve.pid, root, "healthagg serve")
        log(f"healthagg serve in the root as {UID}:{GID} on 127.0.0.1:{port}: /readyz 200 from "
            f"outside after {ready * 1000:.0f} ms (since spawn: "
            f"{(time.monotonic() - t_start) * 1000:.0f} ms)")
        status, body = http_get(port, "/livez")
        if status != 200:
            raise Failure(f"/livez answered {status} {body!r}")
        status, body = http_get(port, "/health")
        if status != 200 or json.loads(body).get("status") != "pass":
            raise Failure(f"/health answered {status} {body!r}")

        r = run_inside(root, ["/healthagg", "probe"], env)
        if r.returncode != 0 or not r.stdout.startswith("healthy") or r.stderr:
            raise Failure(f"probe inside the root: exit {r.returncode}, stdout {r.stdout!r}, "
                          f"stderr {r.stderr!r}; expected exit 0, 'healthy', silent stderr")
        log(f"probe inside the root: exit 0, stdout {r.stdout.strip()!r}, stderr empty")
        r = run_inside(root, ["/healthagg", "check", f"http://127.0.0.1:{sport}/healthz"], {})
        if r.returncode != 0:
            raise Failure(f"check inside the root: exit {r.returncode}, {r.stdout!r} {r.stderr!r}")
        log(f"check inside the root: exit 0, {r.stdout.strip()!r}")
        # A name in a root without /etc/hosts or /etc/resolv.conf: c-ares starts on its defaults
        # and the check fails cleanly with a resolver reason, within its timeout.
        t0 = time.monotonic()
        r = run_inside(root, ["/healthagg", "check", "--timeout", "1s",
                              f"http://app.invalid:{sport}/healthz"], {})
        took = time.monotonic() - t0
        if r.returncode != 1 or "resolve app.invalid:" not in r.stdout or took > 3:
            raise Failure(f"check of a name inside the root: exit {r.returncode}, {r.stdout!r} "
                          f"{r.stderr!r} after {took:.2f}s; expected exit 1 with a resolve reason")
        log(f"check of a name with no resolver config: exit 1 in {took:.2f}s, "
            f"{r.stdout.strip()!r}")

        # TLS without a trust store: ca_file is what makes it work, and its absence is an error.
        crt, key = certs.path("good")
        tls = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", crt,
                                "-key", key, "-www"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.append(tls)
        tport = None
        end = time.monotonic() + 10
        while tport is None and time.monotonic() < end:
            line = tls.stdout.readline().decode()
            if line.startswith("ACCEPT "):
                tport = int(line.rsplit(":", 1)[1])
            elif not line and tls.poll() is not None:
                break
        if tport is None:
            raise Failure("openssl s_server printed no ACCEPT line")
        url = f"https://127.0.0.1:{tport}/"
        r = run_inside(root, ["/healthagg", "check", "--ca-file", "/ca.pem", url], {})
        if r.returncode != 0 or "HTTP 200" not in r.stdout:
            raise Failure(f"https check with --ca-file inside the root: exit {r.returncode}, "
                          f"{r.stdout!r} {r.stderr!r}")
        log(f"https check with --ca-file /ca.pem inside the root: exit 0, {r.stdout.strip()!r}")
        r = run_inside(root, ["/healthagg", "check", url], {})
        if r.returncode != 1 or "tls.ca_file: required: no system trust store" not in r.stdout:
            raise Failure(f"https check without a trust store or ca_file: exit {r.returncode}, "
                          f"{r.stdout!r}; expected exit 1 saying ca_file is required")
        log(f"https check without --ca-file: exit 1, {r.stdout.strip()!r}")
        r = run_inside(root, ["/healthagg", "validate"],
                       {"HEALTHAGG_CONFIG": json.dumps({"checks": [{"url": url}]})})
        if r.returncode != 2 or "checks[0].tls.ca_file: required" not in r.stderr:
            raise Failure(f"validate of an https check without tls.ca_file: exit {r.returncode}, "
                          f"{r.stdout!r} {r.stderr!r}; expected exit 2 naming checks[0].tls.ca_file")
        log(f"validate without tls.ca_file: exit 2, {r.stderr.strip()!r}")
        r = run_inside(root, ["/healthagg", "validate"],
                       {"HEALTHAGG_CONFIG": json.dumps(
                           {"checks": [{"url": url, "tls": {"ca_file": "/ca.pem"}}]})})
        if r.returncode != 0:
            raise Failure(f"validate with tls.ca_file: exit {r.returncode}, {r.stderr!r}")
        tls.kill()
        tls.wait()

        status, body = http_get(cport, "/mode/status:503")
        if status != 200:
            raise Failure(f"testapp control /mode/status:503 answered {status} {body!r}")
        down = wait_status(port, "/readyz", 503, 10)
        log(f"app switched to status:503: /readyz 503 after {down * 1000:.0f} ms "
            f"(failure threshold {FAILURES} x interval {INTERVAL_MS} ms)")
        r = run_inside(root, ["/healthagg", "probe"], env)
        if r.returncode != 1 or not r.stdout.startswith("unhealthy") or "HTTP 503" not in r.stdout:
            raise Failure(f"probe inside the root after the app failed: exit {r.returncode}, "
                          f"stdout {r.stdout!r}, stderr {r.stderr!r}; expected exit 1, "
                          "'unhealthy: ... HTTP 503'")
        log(f"probe inside the root: exit 1, stdout {r.stdout.strip()!r}")

        stop(serve, "healthagg serve")
        stop(app, "testapp")
        serve_out.seek(0)
        lines = [json.loads(line) for line in serve_out if line.strip()]
        events = [(e.get("event"), e.get("to")) for e in lines]
        for want in (("startup", None), ("aggregate", "pass"), ("aggregate", "fail")):
            if want not in events:
                raise Failure(f"serve's log lacks {want}: {events}")
        serve_err.seek(0)
        if serve_err.read():
            raise Failure("serve wrote to stderr")
        after = sorted(os.listdir(root))
        if after != before:
            raise Failure(f"the root changed: {before} -> {after}")
        log("serve and testapp exited 0 on SIGTERM; the root still holds only "
            f"{after}; serve logged {len(lines)} JSON lines")
        print("PASSED: healthagg serve, probe and check run in an empty root as 65532:65532",
              flush=True)
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in files:
            f.close()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(outdir, ignore_errors=True)
        if certs:
            certs.cleanup()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"FAILED: {e}", flush=True)
        sys.exit(1)
