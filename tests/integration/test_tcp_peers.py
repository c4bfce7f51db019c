"""tcp:// send/expect against real servers the tests start: redis-server (with and without
requirepass) and PostgreSQL (initdb in a temporary directory, run as nobody). A small Python
peer only for what a real server would not do on purpose: answer garbage, close mid-answer."""
import json
import tempfile
import os
import socket
import threading

from harness import cli, expect, expect_eq, poll, run, test, wait_until
from peers import Postgres, Redis


def config_file(ctx, checks):
    fd, path = tempfile.mkstemp(prefix="healthagg-tcp-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"defaults": {"interval": "300ms", "timeout": "250ms",
                                "failure_threshold": 1, "success_threshold": 1},
                   "checks": checks}, f)
    ctx.on_cleanup(lambda: os.unlink(path))
    return path


def health_of(ha):
    st, _, body = ha.get("/health")
    return st, json.loads(body)


def check_entry(ha, name):
    return health_of(ha)[1]["checks"][name][0]


def wait_state(ha, name, status, timeout=10):
    return poll(lambda: check_entry(ha, name), lambda e: e["state"] == status, timeout,
                f"check {name} to be {status}")


def print_latency(ha, name, what, n=7):
    """The median latency of a few consecutive probes, for the record (not asserted)."""
    lat = []
    for _ in range(n):
        cur = check_entry(ha, name)
        lat.append(cur["observedValue"])
        wait_until(lambda: check_entry(ha, name)["time"] != cur["time"], 5, f"a new {name} result")
    lat.sort()
    print(f"  {what} probe latency: median {lat[n // 2]:.3f} ms, min {lat[0]:.3f} ms, "
          f"max {lat[-1]:.3f} ms ({n} probes)", flush=True)


@test
def redis_ping_pong(ctx):
    r = Redis(ctx)
    url = f"tcp://127.0.0.1:{r.port}"
    ha = ctx.healthagg(["--config", config_file(ctx, [
        {"name": "redis", "url": url, "send": "PING\r\n", "expect": "+PONG"}])])
    e = wait_state(ha, "redis", "pass")
    expect_eq(e["output"], f'answer starts with "+PONG" (127.0.0.1:{r.port})', "pass reason")
    start = ha.startup["checks"][0]
    expect_eq((start["send"], start["expect"]), ("PING\r\n", ["+PONG"]), "startup line keys")
    print_latency(ha, "redis", "redis PING/+PONG")
    # The server going away is a connect failure, named as such.
    r.stop()
    e = wait_state(ha, "redis", "fail")
    expect("connection refused" in e["output"], f"reason after redis stopped: {e['output']}")


@test
def redis_requirepass(ctx):
    r = Redis(ctx, password="s3cret-pw")
    url = f"tcp://127.0.0.1:{r.port}"
    ha = ctx.healthagg(["--config", config_file(ctx, [
        {"name": "noauth", "url": url, "send": "PING\r\n", "expect": "+PONG"},
        {"name": "auth", "url": url, "send": "AUTH s3cret-pw\r\nPING\r\n",
         "expect": "+OK\r\n+PONG"},
        {"name": "wrongpw", "url": url, "send": "AUTH nope\r\nPING\r\n",
         "expect": "+OK\r\n+PONG"}])])
    e = wait_state(ha, "noauth", "fail")
    expect_eq(e["output"], 'expected "+PONG", got "-NOAUTH Authentication required."',
              "the reason quotes redis's answer")
    st, body = ha.readyz()
    expect(st == 503 and 'noauth: expected "+PONG", got "-NOAUTH Authentication required."'
           in body, f"/readyz: {st} {body!r}")
    e = wait_state(ha, "wrongpw", "fail")
    expect(e["output"].startswith('expected "+OK\\r\\n+PONG", got "-WRONGPASS'),
           f"wrong password reason: {e['output']}")
    wait_state(ha, "auth", "pass")


@test
def redis_password_from_env(ctx):
    """AUTH ${REDIS_PASSWORD}: expanded at load from the environment (ECS secrets), never shown:
    not in the startup line, transitions, /health, /metrics, nor in a reason that echoes it."""
    pw = "pw-from-secrets-manager-93b1"
    r = Redis(ctx, password=pw)
    url = f"tcp://127.0.0.1:{r.port}"
    env = {"REDIS_PASSWORD": pw, "WRONG_PASSWORD": "not-the-password-77"}
    ha = ctx.healthagg(["--config", config_file(ctx, [
        {"name": "redis", "url": url, "send": "AUTH ${REDIS_PASSWORD}\r\nPING\r\n",
         "expect": "+OK\r\n+PONG"},
        {"name": "wrong", "url": url, "send": "AUTH ${WRONG_PASSWORD}\r\nPING\r\n",
         "expect": "+OK\r\n+PONG"},
        # Redis echoes an unknown command's arguments: the reason must not carry the secret.
        {"name": "echo", "url": url, "send": "NOSUCHCMD ${REDIS_PASSWORD}\r\n",
         "expect": "+OK"}])], env=env)
    expect_eq(ha.startup["checks"][0]["send"], "<redacted>", "send shown in the startup line")
    wait_state(ha, "redis", "pass")
    e = wait_state(ha, "wrong", "fail")
    expect(e["output"].startswith('expected "+OK\\r\\n+PONG", got "-WRONGPASS'), e["output"])
    e = wait_state(ha, "echo", "fail")
    expect("<redacted>" in e["output"] and pw not in e["output"],
           f"an echoed secret is redacted: {e['output']}")
    everything = "\n".join(ha.proc.lines)
    for path in ("/health", "/metrics", "/health?history=1", "/readyz"):
        everything += ha.get(path)[2].decode("utf-8", "replace")
    for secret in (pw, "not-the-password-77"):
        expect(secret not in everything, f"{secret!r} leaked into logs or endpoints")
    r2 = cli(["validate", "--config", config_file(ctx, [
        {"url": url, "send": "AUTH ${NOT_SET_ANYWHERE_X}\r\n", "expect": "+OK"}])])
    expect(r2.rc == 2 and "checks[0].send" in r2.err and "NOT_SET_ANYWHERE_X" in r2.err,
           f"an unset variable: {r2}")


@test
def postgres_ssl_request(ctx):
    pg = Postgres(ctx)
    url = f"tcp://127.0.0.1:{pg.port}"
    ha = ctx.healthagg(["--config", config_file(ctx, [
        {"name": "pg", "url": url, "send_hex": "0000000804d2162f", "expect": ["S", "N"]},
        {"name": "pg_tls_only", "url": url, "send_hex": "00 00 00 08 04 d2 16 2f",
         "expect_hex": "53"},
        {"name": "pg_wrong_request", "url": url, "send_hex": "0000000801020304",
         "expect": ["S", "N"]}])])
    e = wait_state(ha, "pg", "pass")
    expect_eq(e["output"], f'answer starts with "N" (127.0.0.1:{pg.port})', "pg reason")
    e = wait_state(ha, "pg_tls_only", "fail")
    expect_eq(e["output"], "expected hex 53, got hex 4e", "hex mismatch reason")
    # An unknown request code: PostgreSQL answers with an error message ('E') or just closes.
    e = wait_state(ha, "pg_wrong_request", "fail")
    expect(e["output"].startswith('expected "S" or "N", got "E') or
           e["output"].startswith('connection closed before any answer (expected "S" or "N")'),
           f"unsupported-protocol reason: {e['output']}")
    print_latency(ha, "pg", "postgres SSLRequest")
    pg.stop()
    e = wait_state(ha, "pg", "fail")
    expect("connection refused" in e["output"], f"after postgres stopped: {e['output']}")


class Peer:
    """A listener that runs `behave(conn)` for every connection (hostile peers only)."""

    def __init__(self, ctx, behave):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        ctx.on_cleanup(self.close)
        self.t = threading.Thread(target=self.loop, args=(behave,), daemon=True)
        self.t.start()

    def loop(self, behave):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                behave(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self):
        self.stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@test
def hostile_answers(ctx):
    def banner(conn):
        conn.sendall(b"220 mail.example ESMTP ready\r\n")

    def partial_then_close(conn):
        conn.recv(64)
        conn.sendall(b"+PO")

    def silent_close(conn):
        conn.recv(64)

    def binary(conn):
        conn.recv(64)
        conn.sendall(b"\x00\xffjunk\x01\nsecond line")

    peers = {n: Peer(ctx, b) for n, b in [("banner", banner), ("partial", partial_then_close),
                                          ("silent", silent_close), ("binary", binary)]}
    u = {n: f"tcp://127.0.0.1:{p.port}" for n, p in peers.items()}
    ha = ctx.healthagg(["--config", config_file(ctx, [
        {"name": "smtp", "url": u["banner"], "expect": "220 "},
        {"name": "smtp_wrong", "url": u["banner"], "expect": "554"},
        {"name": "partial", "url": u["partial"], "send": "PING\r\n", "expect": "+PONG"},
        {"name": "silent", "url": u["silent"], "send": "PING\r\n", "expect": "+PONG"},
        {"name": "binary", "url": u["binary"], "send": "PING\r\n", "expect": "+PONG"}])])
    wait_state(ha, "smtp", "pass")
    e = wait_state(ha, "smtp_wrong", "fail")
    expect_eq(e["output"], 'expected "554", got "220 mail.example ESMTP ready"', "banner")
    e = wait_state(ha, "partial", "fail")
    expect_eq(e["output"], 'connection closed after 3 bytes: expected "+PONG", got "+PO"',
              "partial answer")
    e = wait_state(ha, "silent", "fail")
    expect(e["output"].startswith('connection closed before any answer (expected "+PONG")'),
           f"silent close: {e['output']}")
    e = wait_state(ha, "binary", "fail")
    expect_eq(e["output"], 'expected "+PONG", got "\\x00\\xFFjunk\\x01..."', "binary answer")


@test
def check_command_flags_and_config(ctx):
    """`healthagg check` takes the per-check keys as flags and runs a whole --config once;
    every problem exits 1 (never 2)."""
    r = Redis(ctx)
    url = f"tcp://127.0.0.1:{r.port}"
    res = cli(["check", "--send", "PING\r\n", "--expect", "+PONG", url])
    expect(res.rc == 0 and res.out.startswith(f'pass {url}: answer starts with "+PONG"'), f"{res}")
    res = cli(["check", "--send-hex", "50494e470d0a", "--expect", "+OK", "--expect", "-ERR", url])
    expect(res.rc == 1 and 'expected "+OK" or "-ERR", got "+PONG"' in res.out, f"{res}")
    res = cli(["check", "--max-age", "5s", url])
    expect(res.rc == 1 and res.out.startswith("fail: check --max-age: no URL given") and
           not res.err, f"a key no URL has: {res}")
    res = cli(["check", "--send-hex", "zz", url])
    expect(res.rc == 1 and "--send-hex: 'z' at offset 0 is not a hex digit" in res.out,
           f"bad hex names the flag: {res}")
    d = tempfile.mkdtemp(prefix="healthagg-check-")
    ctx.on_cleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
    beat = os.path.join(d, "beat")
    open(beat, "w").close()
    path = config_file(ctx, [
        {"name": "redis", "url": url, "send": "PING\r\n", "expect": "+PONG"},
        {"name": "beat", "url": "file://" + beat, "max_age": "1m"}])
    res = cli(["check", "--config", path])
    lines = res.out.splitlines()
    expect(res.rc == 0 and len(lines) == 2 and lines[0].startswith(f"pass redis {url}: ") and
           lines[1].startswith(f"pass beat file://{beat}: fresh: "), f"check --config: {res}")
    os.unlink(beat)
    res = cli(["check", "--config", path])
    expect(res.rc == 1 and f"fail beat file://{beat}: no such file: {beat}" in res.out, f"{res}")
    for bad in (["--config", "/nonexistent.json"], ["--config", path, url], ["--expect"]):
        res = cli(["check"] + bad)
        expect(res.rc == 1 and res.out.startswith("fail") and not res.err, f"check {bad}: {res}")


@test
def config_errors_name_the_field(ctx):
    cases = [
        ({"url": "tcp://127.0.0.1:1", "send_hex": "00 0"}, "checks[0].send_hex: odd hex digit"),
        ({"url": "tcp://127.0.0.1:1", "expect_hex": "xyz"},
         "checks[0].expect_hex: 'x' at offset 0 is not a hex digit"),
        ({"url": "tcp://127.0.0.1:1", "send": "a", "send_hex": "61"},
         "checks[0].send_hex: give either send or send_hex, not both"),
        ({"url": "tcp://127.0.0.1:1", "max_age": "5s"}, "checks[0].max_age: not a key of tcp"),
        ({"url": "tcp://127.0.0.1:1", "expect": "+PONG", "max_response_bytes": 4},
         "checks[0].expect: 5 bytes, more than max_response_bytes (4)"),
    ]
    for chk, msg in cases:
        r = cli(["validate", "--config", config_file(ctx, [chk])])
        expect(r.rc == 2 and msg in r.err, f"validate {chk}: expected exit 2 with {msg!r}: {r}")


run(__name__)
