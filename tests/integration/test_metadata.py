"""ECS task metadata (ECS_CONTAINER_METADATA_URI_V4) against a local fixture endpoint that answers
${URI}/task with documents shaped like the agent's v4 examples (tests/integration/fixtures/):
the startup line names the task; a failing check with "container" gets that container's status
and exit code in its reason (transition, /readyz, /health); fetched only while such a check
fails, at most once per interval; endpoint errors are logged once and never fail a check."""
import http.server
import os
import threading

from harness import *  # noqa: F401,F403

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
FAIL_WITHIN = 2 * INTERVAL_S * 1.5 + TIMEOUT_MS / 1000 + 1.5
TASK_PATH = "/v4/5f8c0e2b9a4d-1234567890/task"


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


class MetadataEndpoint:
    """A fake ECS agent endpoint on 127.0.0.1: GET /v4/<id>/task answers `doc` (or misbehaves as
    `mode` says: "ok", "500", "garbage", "hang"); counts requests per path."""

    def __init__(self, ctx, doc):
        self.doc = doc
        self.mode = "ok"
        self.requests = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                with outer.lock:
                    outer.requests.append((time.monotonic(), self.path))
                    mode, doc = outer.mode, outer.doc
                if self.path != TASK_PATH:
                    self.send_error(404)
                    return
                if mode == "hang":
                    outer.release.wait(10)
                    return
                if mode == "500":
                    body, status = b'{"error":"agent restarting"}', 500
                elif mode == "garbage":
                    body, status = b"<html>not json</html>", 200
                else:
                    body, status = json.dumps(doc).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # healthagg closing on its timeout is expected here, not an error

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/v4/5f8c0e2b9a4d-1234567890"
        ctx.on_cleanup(self.stop)

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def set(self, mode=None, doc=None):
        with self.lock:
            if mode:
                self.mode = mode
            if doc is not None:
                self.doc = doc

    def count(self):
        """Requests for the task document (a stray client of this ephemeral port, e.g. another
        test's check of a port it once saw free, asks for other paths)."""
        with self.lock:
            return len([p for _, p in self.requests if p == TASK_PATH])

    def env(self):
        return {"ECS_CONTAINER_METADATA_URI_V4": self.uri}


def app_stopped(doc, code=137):
    doc = json.loads(json.dumps(doc))
    for c in doc["Containers"]:
        if c["Name"] == "app":
            c["KnownStatus"] = "STOPPED"
            c["ExitCode"] = code
    return doc


def config_env(ctx, checks, ep, extra=None):
    doc = {"checks": checks}
    doc.update(extra or {})
    env = ep.env() if ep else {}
    env["HEALTHAGG_CONFIG"] = json.dumps(doc)
    return env


def check(name, url, **kw):
    d = {"name": name, "url": url, "interval": "500ms", "timeout": "300ms",
         "failure_threshold": 2, "success_threshold": 1}
    d.update(kw)
    return d


@test
def startup_line_names_the_task(ctx):
    ep = MetadataEndpoint(ctx, fixture("ecs-task-v4-fargate.json"))
    app = ctx.testapp()
    ha = ctx.healthagg([], env=config_env(ctx, [check("app", app.url)], ep))
    expect_eq(ha.startup.get("task"), {
        "arn": "arn:aws:ecs:eu-west-1:111122223333:task/demo/5f8c0e2b9a4d4c1e8b7a6d5c4b3a2910",
        "family_revision": "app-with-healthagg:7", "launch_type": "FARGATE",
        "availability_zone": "eu-west-1b",
        "cluster": "arn:aws:ecs:eu-west-1:111122223333:cluster/demo"}, "startup task")
    # No check names a container: nothing is fetched after the startup line.
    ha.wait_transition("app", "pass", 3)
    app.set_mode("status:503")
    ha.wait_transition("app", "fail", FAIL_WITHIN)
    expect_eq(ep.count(), 1, "metadata requests without a container check")


@test
def ec2_document_numeric_revision(ctx):
    ep = MetadataEndpoint(ctx, fixture("ecs-task-v4-ec2-stopped.json"))
    app = ctx.testapp()
    ha = ctx.healthagg([], env=config_env(ctx, [check("app", app.url)], ep))
    t = ha.startup["task"]
    expect_eq((t["family_revision"], t["launch_type"], t["availability_zone"], t["cluster"]),
              ("worker:31", "EC2", "us-east-1a", "default"), "EC2 task")


@test
def failing_check_says_how_its_container_ended(ctx):
    doc = fixture("ecs-task-v4-fargate.json")
    ep = MetadataEndpoint(ctx, doc)
    app = ctx.testapp()
    ha = ctx.healthagg([], env=config_env(ctx, [check("app", app.url, container="app")], ep))
    expect_eq(ha.startup["checks"][0]["container"], "app", "startup check container")
    ha.wait_transition("app", "pass", 3)
    # Passing: nothing fetched beyond the startup line (unless a probe failed meanwhile: on a
    # loaded machine a 300 ms timeout can pass; each fetch needs a failed probe).
    time.sleep(4 * INTERVAL_S)  # several passing probes; the assertion is that none fetched
    m = re.search(r'healthagg_check_failures_total\{check="app"\} (\d+)',
                  ha.get("/metrics")[2].decode())
    failed = int(m.group(1)) if m else 0
    expect(ep.count() - 1 <= failed,
           f"{ep.count() - 1} metadata requests while the check passes ({failed} failed probes)")
    mark = ha.mark()
    ep.set(doc=app_stopped(doc, 137))
    app.kill()
    t = ha.wait_transition("app", "fail", FAIL_WITHIN, start=mark)
    want = f"connect: connection refused (127.0.0.1:{app.port}); container app STOPPED, exit code 137"
    expect_eq(t["reason"], want, "transition reason with the container's status")
    st, body = ha.readyz()
    expect_eq((st, body.strip()), (503, "app: " + want), "/readyz")
    h = json.loads(ha.get("/health")[2])
    expect_eq(h["checks"]["app"][0]["output"], want, "/health output")
    # At most once per interval (500 ms) while failing: over 3 s, no more than 7 fetches.
    n0, t0 = ep.count(), time.monotonic()
    time.sleep(3)  # measuring the request rate over a window
    n = ep.count() - n0
    expect(1 <= n <= 7, f"{n} metadata requests in {time.monotonic() - t0:.1f}s at a 500ms "
           f"interval (at most one per interval)")
    times = [tm for tm, p in ep.requests if p == TASK_PATH][1:]
    gaps = [b - a for a, b in zip(times, times[1:])]
    expect(all(g >= 0.4 for g in gaps), f"gaps between fetches: {gaps}")
    expect_eq(ha.events("task_metadata"), [], "no task_metadata error lines")


@test
def answer_after_the_transition_reaches_readyz_and_health_at_once(ctx):
    # failure_threshold 1 and a long interval: the transition is logged before the first fetch
    # answers; the answer must reach /readyz and /health right away, not at the next probe.
    doc = app_stopped(fixture("ecs-task-v4-fargate.json"), 139)
    ep = MetadataEndpoint(ctx, doc)
    app = ctx.testapp()
    ha = ctx.healthagg([], env=config_env(ctx, [check("app", app.url, container="app",
                                                      interval="3s", timeout="300ms",
                                                      failure_threshold=1)], ep))
    ha.wait_transition("app", "pass", 3)
    app.kill()
    t = ha.wait_transition("app", "fail", 5)
    expect_eq(t["reason"], f"connect: connection refused (127.0.0.1:{app.port})",
              "transition reason (logged before the fetch answered)")
    want = t["reason"] + "; container app STOPPED, exit code 139"
    t0 = time.monotonic()
    poll(lambda: ha.readyz(), lambda r: r[1].strip() == "app: " + want, 1.0,
         "/readyz with the container's status within 1s of the transition (interval 3s)")
    h = json.loads(ha.get("/health")[2])
    expect_eq(h["checks"]["app"][0]["output"], want, "/health output")
    print(f"  container status in /readyz {1000 * (time.monotonic() - t0):.0f} ms after the "
          "transition line was read", flush=True)


@test
def container_running_and_unknown(ctx):
    doc = fixture("ecs-task-v4-fargate.json")
    ep = MetadataEndpoint(ctx, doc)
    app = ctx.testapp()
    ha = ctx.healthagg([], env=config_env(
        ctx, [check("app", app.url, container="app"),
              check("db", f"http://127.0.0.1:{ctx.dead_port()}/", container="database",
                    critical=False)], ep))
    ha.wait_transition("app", "pass", 3)
    t = ha.wait_transition("db", "fail", FAIL_WITHIN)
    expect(t["reason"].endswith("; container database not in the task metadata"),
           f"a container the task does not have: {t}")
    mark = ha.mark()
    app.set_mode("status:503")
    t = ha.wait_transition("app", "fail", FAIL_WITHIN, start=mark)
    expect_eq(t["reason"], "HTTP 503; container app RUNNING", "app answering 503, running")


@test
def endpoint_errors_are_logged_once_and_change_nothing(ctx):
    doc = fixture("ecs-task-v4-fargate.json")
    ep = MetadataEndpoint(ctx, doc)
    ep.set(mode="500")
    app = ctx.testapp()
    ha = ctx.healthagg([], env=config_env(ctx, [check("app", app.url, container="app")], ep))
    expect_eq(ha.startup.get("task_metadata_error"),
              f"HTTP 500 from 127.0.0.1:{ep.server.server_address[1]}", "startup error")
    expect("task" not in ha.startup, "no task in the startup line")
    ha.wait_transition("app", "pass", 3)
    mark = ha.mark()
    app.set_mode("status:503")
    t = ha.wait_transition("app", "fail", FAIL_WITHIN, start=mark)
    expect_eq(t["reason"], "HTTP 503", "reason without the container part")
    e = ha.wait_event(lambda o: o.get("event") == "task_metadata", 2, "task_metadata error")
    expect(e["error"].startswith("HTTP 500") and e["level"] == "warn", f"error line: {e}")
    ep.set(mode="garbage")
    time.sleep(4 * INTERVAL_S)  # more failing probes and fetches: still one error line
    expect_eq(len(ha.events("task_metadata")), 1, "task_metadata lines (logged once)")
    expect(ep.count() >= 3, f"fetches went on while failing: {ep.count()}")
    # The endpoint comes back: the reason gains the container part, and that is said once.
    ep.set(mode="ok", doc=app_stopped(doc, 1))
    poll(lambda: ha.readyz(), lambda r: r[1].strip().endswith("container app STOPPED, exit code 1"),
         3, "/readyz with the container's status once the endpoint answers")
    back = ha.wait_event(lambda o: o.get("event") == "task_metadata" and o["level"] == "info",
                         2, "task_metadata answers again")
    expect("error" not in back, f"recovery line: {back}")
    app.set_mode("ok")
    ha.wait_transition("app", "pass", FAIL_WITHIN, start=mark)


@test
def hanging_or_absent_endpoint_does_not_hold_anything(ctx):
    doc = fixture("ecs-task-v4-fargate.json")
    ep = MetadataEndpoint(ctx, doc)
    ep.set(mode="hang")
    app = ctx.testapp()
    t0 = time.monotonic()
    ha = ctx.healthagg([], env=config_env(ctx, [check("app", app.url, container="app")], ep))
    took = time.monotonic() - t0
    expect(took < 2.5, f"startup waited {took:.2f}s for a hanging endpoint (bound: 1s)")
    expect(ha.startup["task_metadata_error"].endswith("within 1000ms"),
           f"startup error: {ha.startup}")
    ha.wait_transition("app", "pass", 3)
    app.kill()
    t = ha.wait_transition("app", "fail", FAIL_WITHIN)
    expect(t["reason"].startswith("connect: connection refused"), f"reason: {t}")
    # Absent (nothing listening): the same, and a bad URI is only an error in the startup line.
    port = ctx.dead_port()
    app2 = ctx.testapp()
    env = config_env(ctx, [check("app", app2.url, container="app")], None)
    env["ECS_CONTAINER_METADATA_URI_V4"] = f"http://127.0.0.1:{port}/v4/x"
    ha2 = ctx.healthagg([], env=env)
    expect("connection refused" in ha2.startup["task_metadata_error"], f"{ha2.startup}")
    env["ECS_CONTAINER_METADATA_URI_V4"] = "http://metadata.invalid/v4/x"
    ha3 = ctx.healthagg([], env=env)
    expect("is not an IP address" in ha3.startup["task_metadata_error"], f"{ha3.startup}")
    ha3.wait_transition("app", "pass", 3)


run(__name__)
