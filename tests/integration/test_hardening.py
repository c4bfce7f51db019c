"""Issue 8's hardening items, each as a user would hit it: IPv6 literals without a name, closed
standard descriptors, signals other than SIGTERM, truthful reasons, valid UTF-8 in every output,
and HTTP details of the endpoint. The harness itself checks every log line and /health body
for strict UTF-8 JSON."""
import http.server
import os
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
