"""Issue 8's hardening items, each as a user would hit it: IPv6 literals without a name, closed
standard descriptors, signals other than SIGTERM, truthful reasons, valid UTF-8 in every output,
and HTTP details of the endpoint. The harness itself checks every log line and /health body
for strict UTF-8 JSON."""
import http.server
import os
import re
import signal
import socket
import threading

from harness import *  # noqa: F401,F403


class V6Server:
    """A stdlib HTTP server on [::1] answering 200 "ok" (or `status`) to every GET."""

    def __init__(self, ctx, status=200, body=b"ok\n"):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6

        self.srv = Server(("::1", 0), Handler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        ctx.sockets.append(self)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- item 4 -------------------------------------------------------------------------------------

@test
def ipv6_literal_without_a_name(ctx):
    try:
        v6 = V6Server(ctx)
    except OSError as e:
        print(f"SKIPPED: no IPv6 loopback here ({e})")
        return
    name = f"[::1]:{v6.port}"
    url = f"http://[::1]:{v6.port}/"
    r = cli(["validate", "--check", url])
    expect(r.rc == 0 and name in r.out, f"validate --check {url}: expected exit 0 naming "
           f"{name}, saw {r}")
    ha = ctx.healthagg(serve_args(url))
    ha.wait_transition(name, "pass", 3)
    st, _, body = ha.get("/health")
    checks = json.loads(body)["checks"]
    expect(name in checks and checks[name][0]["status"] == "pass",
           f"/health should list {name} passing: {body!r}")
    metrics = ha.get("/metrics")[2].decode()
    expect(f'healthagg_check_up{{check="{name}"}} 1' in metrics,
           f"/metrics should carry check=\"{name}\"")
    r = cli(["check", url])
    expect(r.rc == 0 and r.out.startswith(f"pass {url}: HTTP 200"), f"check {url}: {r}")


# --- item 5 -------------------------------------------------------------------------------------

def run_closed(args, fds, timeout=10):
    """Runs healthagg ARGS with the given standard descriptors closed; returns (rc, stdout)."""
    def close_them():
        for fd in fds:
            os.close(fd)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHAGG_")}
    p = subprocess.Popen([harness_bin()] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         preexec_fn=close_them)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        fail(f"healthagg {' '.join(args)} with fds {fds} closed did not finish in {timeout}s")
    return p.returncode, out.decode("utf-8", "replace")


def harness_bin():
    import harness
    return harness.HEALTHAGG


@test
def closed_standard_descriptors_check_exits_0_or_1(ctx):
    app = ctx.testapp()
    down = ctx.dead_port()
    for fds in ([0], [1], [2], [0, 1, 2]):
        rc, out = run_closed(["check", app.url], fds)
        expect_eq(rc, 0, f"check of a live app with fds {fds} closed (stdout {out!r})")
        if 1 not in fds:
            expect(out.startswith(f"pass {app.url}"), f"check output with fds {fds} closed: "
                   f"{out!r}")
        rc, out = run_closed(["check", f"http://127.0.0.1:{down}/"], fds)
        expect_eq(rc, 1, f"check of a dead port with fds {fds} closed (stdout {out!r})")
        rc, out = run_closed(["probe", "--url", f"http://127.0.0.1:{down}/readyz"], fds)
        expect_eq(rc, 1, f"probe of a dead port with fds {fds} closed (stdout {out!r})")


@test
def closed_standard_descriptors_serve_runs(ctx):
    app = ctx.testapp()
    for fds in ([0], [1], [2], [0, 1, 2]):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHAGG_")}
        p = subprocess.Popen([harness_bin(), "serve", "--listen", f"127.0.0.1:{port}"] +
                             serve_args(f"app={app.url}"), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                             preexec_fn=lambda fds=fds: [os.close(fd) for fd in fds])
        try:
            poll(lambda: probe(port), lambda r: r.rc == 0 or p.poll() is not None, 5,
                 f"serve with fds {fds} closed to become healthy")
            expect(p.poll() is None, f"serve with fds {fds} closed exited with {p.returncode}")
            p.send_signal(signal.SIGTERM)
            expect_eq(p.wait(5), 0, f"serve with fds {fds} closed: exit status after SIGTERM")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


# --- item 7 -------------------------------------------------------------------------------------

class RawServer:
    """A fake peer on 127.0.0.1 for hostile answers: for each connection it reads the request
    head (up to a blank line), sends `answer` (bytes), then closes (or holds the connection when
    hold=True). Counts connections."""

    def __init__(self, ctx, answer, hold=False):
        self.answer, self.hold, self.count, self.held = answer, hold, 0, []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()
        ctx.sockets.append(self)

    def _serve(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            threading.Thread(target=self._answer, args=(c,), daemon=True).start()

    def _answer(self, c):
        try:
            c.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = c.recv(4096)
                if not chunk:
                    break
                head += chunk
            answer = self.answer(head) if callable(self.answer) else self.answer
            c.sendall(answer)
            if self.hold:
                self.held.append(c)
                return
            c.shutdown(socket.SHUT_WR)
            c.recv(1024)
        except OSError:
            pass
        c.close()

    def close(self):
        self.closed = True
        self.sock.close()
        for c in self.held:
            c.close()


@test
def quoted_bytes_stay_valid_utf8_on_one_line(ctx):
    """expect_body quoted in a reason: a 40-byte prefix used to cut "é" in half (invalid JSON in
    the log and /health) and a newline in it used to break the one-line /readyz answer."""
    app = ctx.testapp(mode="body:hello")
    cut = "a" + "\u00e9" * 30  # 61 bytes: any cut at an even byte count splits a character
    doc = {"defaults": {"interval": "500ms", "timeout": "300ms", "failure_threshold": 1},
           "checks": [{"name": "cut", "url": app.url, "expect_body": cut},
                      {"name": "newline", "url": app.url, "expect_body": "ok\nmore\u2028"}]}
    ha = ctx.healthagg([], env={"HEALTHAGG_CONFIG": json.dumps(doc)})
    t = ha.wait_transition("cut", "fail", 3)
    expect(t["reason"].startswith('body did not match "a\u00e9\u00e9') and "..." in t["reason"],
           f"cut reason: {t['reason']!r}")
    cut_reason = t["reason"]
    t = ha.wait_transition("newline", "fail", 3)
    expect_eq(t["reason"], 'body did not match "ok\\nmore\\u2028" (HTTP 200)', "newline reason")
    st, body = poll(ha.readyz, lambda r: "newline:" in r[1] and "cut:" in r[1], 3,
                    "/readyz naming both checks")
    expect(st == 503 and body.count("\n") == 1 and body.endswith("\n"),
           f"/readyz must be one line: {body!r}")
    checks = json.loads(ha.get("/health")[2])["checks"]
    expect_eq((checks["cut"][0]["output"], checks["newline"][0]["output"]),
              (cut_reason, t["reason"]), "/health outputs")
    r = cli(["check", app.url])  # the one-shot command quotes the same way
    expect_eq(r.rc, 0, f"check of {app.url} ({r})")


@test
def probe_output_is_valid_utf8_on_one_line(ctx):
    """A sidecar (or impostor) answering with long multi-byte or invalid bytes: probe's one line
    stays valid UTF-8, cut on a character boundary."""
    long_reason = ("\u00e9" * 400).encode()
    fake = RawServer(ctx, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: " +
                     str(len(long_reason)).encode() + b"\r\n\r\n" + long_reason)
    r = cli(["probe", "--url", f"http://127.0.0.1:{fake.port}/readyz"])
    expect(r.rc == 1 and r.out.startswith("unhealthy: \u00e9") and len(lines_of(r.out)) == 1,
           f"probe of a sidecar with a long reason: {r}")
    garbage = RawServer(ctx, b"\xff\xfe\xc3 not http\r\n\r\n")
    r = cli(["probe", "--url", f"http://127.0.0.1:{garbage.port}/readyz"])
    expect(r.rc == 1 and "did not answer like healthagg" in r.out and "\\xFF" in r.out,
           f"probe of a sidecar answering invalid bytes: {r}")


@test
def cli_output_quotes_a_url_that_is_not_utf8(ctx):
    """A --url or check URL with bytes that are not UTF-8 is rejected, and the line that says so
    (and probe's mirror line) stays valid UTF-8."""
    import harness
    bad = b"http://127.0.0.1:1/\xff"
    for args in ([b"probe", b"--mirror", b"never", b"--url", bad], [b"check", bad]):
        r = subprocess.run([harness.HEALTHAGG.encode()] + args, capture_output=True, timeout=10)
        strict_utf8(r.stdout, f"{args[0].decode()} stdout with a non-UTF-8 URL")
        expect(r.returncode == 1 and b"\\xFF" in r.stdout and b"not valid UTF-8" in r.stdout,
               f"{args[0].decode()} with a non-UTF-8 URL: {r}")


@test
def lint_json_output_is_valid_utf8(ctx):
    """`lint --format json` quotes file names and task-definition strings, which may hold any
    bytes: its output must still be valid UTF-8 JSON."""
    import harness
    import tempfile
    d = tempfile.mkdtemp()
    path = os.path.join(d.encode(), b"task\xff.json")
    try:
        with open(path, "wb") as f:
            f.write(b'{"family":"x","containerDefinitions":[{"name":"app\xff","image":"x",'
                    b'"essential":true,"healthCheck":{"command":["CMD-SHELL","curl \xff"]}}]}')
        r = subprocess.run([harness.HEALTHAGG.encode(), b"lint", b"--format", b"json", path],
                           capture_output=True, timeout=10)
        findings = strict_json(r.stdout, "lint --format json stdout")
        expect(findings and findings[0]["file"].endswith("task\ufffd.json"),
               f"lint --format json on a file with bytes that are not UTF-8: {r}")
    finally:
        os.unlink(path)
        os.rmdir(d)


# --- item 8 -------------------------------------------------------------------------------------

@test
def recovering_check_says_so(ctx):
    """success_threshold 3: a failing check that passes again reads "recovering: 1/3 successes
    (last failure: HTTP 503)", not "HTTP 200", in /readyz, /health and probe."""
    app = ctx.testapp(mode="status:503")
    ha = ctx.healthagg(serve_args(f"app={app.url}", interval="1s", failure_threshold=1,
                                  success_threshold=3))
    ha.wait_transition("app", "fail", 3)
    app.set_mode("ok")
    pat = r"app: recovering: [12]/3 successes \(last failure: HTTP 503\)"
    st, body = poll(ha.readyz, lambda r: "recovering" in r[1], 4, "/readyz to say recovering")
    expect(st == 503 and re.fullmatch(pat + "\n", body), f"/readyz while recovering: {body!r}")
    entry = json.loads(ha.get("/health")[2])["checks"]["app"][0]
    r = probe(ha)
    expect(r.rc == 1 and re.fullmatch("unhealthy: " + pat + "\n", r.out),
           f"probe while recovering: {r}")
    expect(entry["status"] == "pass" or re.fullmatch(pat[len("app: "):], entry["output"]),
           f"/health while recovering: {entry}")
    ha.wait_transition("app", "pass", 5)


@test
def starting_with_only_noncritical_checks_names_them(ctx):
    app = ctx.testapp(mode="hang")
    doc = {"defaults": {"interval": "5s", "timeout": "2s"},
           "checks": [{"name": "db", "url": app.url, "critical": False},
                      {"name": "cache", "url": app.url, "critical": False}]}
    ha = ctx.healthagg([], env={"HEALTHAGG_CONFIG": json.dumps(doc)})
    st, body = ha.readyz()
    if "no result yet" not in body and body.startswith("ok"):
        print("  (the first results came in before /readyz was asked; nothing to check)")
        return
    expect_eq((st, body), (503, "starting: db: no result yet; cache: no result yet\n"),
              "/readyz before the first result, only non-critical checks")


@test
def probe_says_when_the_sidecar_is_at_max_connections(ctx):
    app = ctx.testapp()
    doc = {"checks": [{"name": "app", "url": app.url}], "server": {"max_connections": 1}}
    ha = ctx.healthagg([], env={"HEALTHAGG_CONFIG": json.dumps(doc)})
    held = socket.create_connection(("127.0.0.1", ha.port), timeout=3)
    try:
        held.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        expect(held.recv(4096).startswith(b"HTTP/1.1 200"), "the held connection is served")
        r = probe(ha)
        expect(r.rc == 1 and r.out.startswith("unhealthy: busy: healthagg is at "
                                              "server.max_connections (1 open connections)"),
               f"probe of a sidecar at max_connections: {r}")
    finally:
        held.close()
    poll(lambda: probe(ha), lambda r: r.rc == 0, 3, "probe to pass once the connection is gone")
    # Something that closes without a word is not called a refusal by healthagg.
    mute = RawServer(ctx, b"")
    r = probe(mute.port)
    expect(r.rc == 1 and "closed the connection without answering" in r.out,
           f"probe of a peer that closes at once: {r}")


@test
def probe_reads_past_interim_answers(ctx):
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
    fake = RawServer(ctx, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                          b"Link: </s.css>; rel=preload\r\n\r\n" + final)
    r = probe(fake.port)
    expect_eq((r.rc, r.out), (0, "healthy\n"), "probe of 100 + 103 + 200")
    fake = RawServer(ctx, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\n"
                          b"Content-Length: 9\r\n\r\napp: down\n")
    r = probe(fake.port)
    expect_eq((r.rc, r.out), (1, "unhealthy: app: down\n"), "probe of 100 + 503")


@test
def probe_port_zero_blames_its_source(ctx):
    r = cli(["probe"], env={"HEALTHAGG_LISTEN": "127.0.0.1:0"})
    expect(r.rc == 1 and r.out.startswith("unhealthy: HEALTHAGG_LISTEN=127.0.0.1:0 asks for "
                                          "port 0") and "bad --url" not in r.out,
           f"probe with HEALTHAGG_LISTEN=127.0.0.1:0: {r}")
    r = cli(["probe"], env={"HEALTHAGG_CONFIG": '{"listen": "0.0.0.0:0", "checks": []}'})
    expect(r.rc == 1 and r.out.startswith("unhealthy: the config's \"listen\" asks for port 0"),
           f"probe with a config listening on port 0: {r}")


@test
def serve_warns_when_a_plain_probe_would_miss_it(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))  # --listen 127.0.0.1:0
    ev = ha.wait_event(lambda o: o.get("event") == "probe_mismatch", 3, "a probe_mismatch warning")
    expect(ev["level"] == "warn" and ev["probe_would_ask"] == "http://127.0.0.1:8099/readyz" and
           "port 0" in ev["reason"], f"probe_mismatch with --listen 127.0.0.1:0: {ev}")
    other = free_port()
    ha2 = ctx.healthagg(serve_args(f"app={app.url}"),
                        env={"HEALTHAGG_LISTEN": f"0.0.0.0:{other}"})
    ev = ha2.wait_event(lambda o: o.get("event") == "probe_mismatch", 3, "a probe_mismatch warning")
    expect(ev["probe_would_ask"] == f"http://127.0.0.1:{other}/readyz" and
           "HEALTHAGG_LISTEN" in ev["reason"], f"probe_mismatch with --listen and HEALTHAGG_LISTEN: "
           f"{ev}")
    port = free_port()
    ha3 = ctx.healthagg(serve_args(f"app={app.url}"), env={"HEALTHAGG_LISTEN": f"127.0.0.1:{port}"},
                        listen=None)
    ha3.wait_transition("app", "pass", 3)
    expect_eq(ha3.events("probe_mismatch"), [], "probe_mismatch when probe finds the sidecar")
    r = cli(["probe"], env={"HEALTHAGG_LISTEN": f"127.0.0.1:{port}"})
    expect_eq((r.rc, r.out), (0, "healthy\n"), "plain probe with the same HEALTHAGG_LISTEN")


# --- item 9 (endpoint and config side) ---------------------------------------------------------

@test
def endpoint_accepts_absolute_form_targets(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    ha.wait_transition("app", "pass", 3)
    for target in (f"http://127.0.0.1:{ha.port}/readyz", "HTTP://sidecar.internal/readyz?x=1",
                   "http://h/readyz"):
        out = raw_request(ha.port, f"GET {target} HTTP/1.1\r\nHost: x\r\n"
                          "Connection: close\r\n\r\n".encode())
        expect(out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"\r\n\r\nok\n"),
               f"GET {target}: {out!r}")
    out = raw_request(ha.port, b"GET http://h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    expect(out.startswith(b"HTTP/1.1 404 "), f"GET http://h (path /): {out!r}")


@test
def http10_keep_alive_is_answered_as_kept(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    ha.wait_transition("app", "pass", 3)
    with socket.create_connection(("127.0.0.1", ha.port), timeout=3) as c:
        for i in range(3):
            c.sendall(b"GET /readyz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            data = b""
            while not data.endswith(b"ok\n"):
                chunk = c.recv(4096)
                expect(chunk, f"request {i}: the connection closed after {data!r}")
                data += chunk
            head = data.split(b"\r\n\r\n")[0].lower()
            expect(b"\r\nconnection: keep-alive" in head,
                   f"HTTP/1.0 keep-alive request {i}: the answer must say keep-alive: {data!r}")
    out = raw_request(ha.port, b"GET /readyz HTTP/1.0\r\n\r\n")
    expect(b"connection: keep-alive" not in out.lower() and out.endswith(b"ok\n"),
           f"plain HTTP/1.0 request: {out!r}")


@test
def http_check_204_and_304_end_at_the_blank_line(ctx):
    """RFC 9112 section 6.3: a 204 or 304 has no body whatever its Content-Length says. The
    peer keeps the connection open after the head: waiting for the body would time out."""
    for status, head in ((204, b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
                         (304, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 120\r\n"
                               b"ETag: \"v1\"\r\n\r\n")):
        fake = RawServer(ctx, head, hold=True)
        r = cli(["check", "--timeout", "1s", fake.url])
        expect(r.rc == 0 and r.out.startswith(f"pass {fake.url}: HTTP {status} ") and
               r.elapsed < 0.9, f"check of a {status} with Content-Length and no body: {r}")
        ha = ctx.healthagg(serve_args(f"app={fake.url}"))
        t = ha.wait_transition("app", "pass", 3)
        expect(t["reason"] == f"HTTP {status}" and t["latency_ms"] < 250,
               f"serve: {status} with Content-Length: {t}")


@test
def http_check_interim_then_close_says_so(ctx):
    fake = RawServer(ctx, b"HTTP/1.1 100 Continue\r\n\r\n")
    r = cli(["check", fake.url])
    expect(r.rc == 1 and r.out.startswith(
        f"fail {fake.url}: connection closed after an interim HTTP 100, before the final "
        f"response (127.0.0.1:{fake.port})"), f"check of 100 Continue then close: {r}")
    fake = RawServer(ctx, b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le")
    r = cli(["check", fake.url])
    expect(r.rc == 1 and "connection closed mid-headers after" in r.out and
           "after an interim HTTP 103" in r.out, f"check of 103 then half a head: {r}")


@test
def expect_status_rejects_interim_codes(ctx):
    for status in (101, "1xx", "100-299"):
        doc = {"checks": [{"name": "app", "url": "http://127.0.0.1:1/", "expect_status": [status]}]}
        r = cli(["validate"], env={"HEALTHAGG_CONFIG": json.dumps(doc)})
        expect(r.rc == 2 and "checks[0].expect_status[0]" in r.err and "interim" in r.err,
               f"expect_status [{status!r}]: {r}")


# --- item 10 ------------------------------------------------------------------------------------

@test
def hup_usr1_usr2_are_logged_and_survived(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    ha.wait_transition("app", "pass", 3)
    for sig, name in ((signal.SIGHUP, "SIGHUP"), (signal.SIGUSR1, "SIGUSR1"),
                      (signal.SIGUSR2, "SIGUSR2")):
        mark = ha.mark()
        ha.proc.signal(sig)
        ev = ha.wait_event(lambda o, name=name: o.get("event") == "signal" and
                           o.get("signal") == name, 3, f"a signal event for {name}", start=mark)
        expect(ev.get("state") == "pass" and ev.get("ready") is True and
               ev.get("checks") == [{"name": "app", "state": "pass", "reason": "HTTP 200"}],
               f"{name}: the signal event should carry the current state: {ev}")
        expect(ha.proc.alive(), f"healthagg died on {name}")
        expect_eq(ha.readyz(), (200, "ok\n"), f"/readyz after {name}")
    ha.proc.signal(signal.SIGTERM)
    expect_eq(ha.proc.wait_exit(5), 0, "exit status after SIGTERM")


run(__name__)
