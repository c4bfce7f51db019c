"""The health endpoint: /livez, /readyz, /health (application/health+json), /metrics, HEAD,
404 and 405, keep-alive, non-critical checks (warn), and that requests never trigger probes."""
import json
import re
import shutil
import subprocess

from harness import *  # noqa: F401,F403

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
PATHS = ["/livez", "/readyz", "/health", "/metrics"]


def two_checks(ctx):
    """app (up) and down (nothing listening): aggregate fail."""
    app = ctx.testapp()
    down = ctx.dead_port()
    ha = ctx.healthagg(serve_args(f"app={app.url}", f"down=http://127.0.0.1:{down}/healthz",
                                  failure_threshold=1, success_threshold=1))
    ha.wait_transition("app", "pass", 3)
    ha.wait_transition("down", "fail", 3)
    return app, down, ha


def check_entry(doc, name, status, output_has):
    entries = doc["checks"].get(name)
    expect(isinstance(entries, list) and len(entries) == 1,
           f"/health checks[{name!r}]: expected an array of one object, saw {entries!r}")
    e = entries[0]
    expect_eq(e.get("status"), status, f"/health checks[{name!r}][0].status")
    expect(isinstance(e.get("observedValue"), (int, float)) and
           not isinstance(e.get("observedValue"), bool),
           f"/health checks[{name!r}][0].observedValue should be a number: {e}")
    expect_eq(e.get("observedUnit"), "ms", f"/health checks[{name!r}][0].observedUnit")
    expect(isinstance(e.get("time"), str) and RFC3339.match(e["time"]),
           f"/health checks[{name!r}][0].time should be RFC3339: {e}")
    expect(isinstance(e.get("output"), str) and output_has in e["output"],
           f"/health checks[{name!r}][0].output should contain {output_has!r}: {e}")


@test
def health_json_livez_readyz_metrics(ctx):
    app, down, ha = two_checks(ctx)
    st, hdr, body = ha.get("/livez")
    expect_eq((st, body.decode().strip()), (200, "alive"), "/livez")

    st, hdr, body = ha.get("/readyz")
    expect(st == 503 and b"down:" in body and b"connection refused" in body,
           f"/readyz with a failing critical check: expected 503 naming 'down: ... connection "
           f"refused', saw {st} {body!r}")

    st, hdr, body = ha.get("/health")
    expect_eq(st, 503, "/health status code with a failing check")
    expect(hdr.get("content-type", "").startswith("application/health+json"),
           f"/health Content-Type: expected application/health+json, saw {hdr.get('content-type')!r}")
    try:
        doc = json.loads(body)
    except ValueError as e:
        fail(f"/health body is not JSON ({e}): {body!r}")
    expect_eq(doc.get("status"), "fail", "/health status")
    expect(isinstance(doc.get("checks"), dict), f"/health checks should be an object: {doc}")
    expect_eq(sorted(doc["checks"]), ["app", "down"], "/health check names")
    check_entry(doc, "app", "pass", "HTTP 200")
    check_entry(doc, "down", "fail", "connection refused")

    st, hdr, body = ha.get("/metrics")
    text = body.decode()
    expect_eq(st, 200, "/metrics status")
    expect(hdr.get("content-type", "").startswith("text/plain"),
           f"/metrics Content-Type: expected text/plain..., saw {hdr.get('content-type')!r}")
    for line in ('healthagg_check_up{check="app"} 1', 'healthagg_check_up{check="down"} 0'):
        expect(line in text.splitlines(), f"/metrics should have the line {line!r}:\n{text}")


def metric_values(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


@test
def metrics_follow_results_and_count_loop_turns(ctx):
    """/metrics keeps each check's lines between scrapes: a later scrape must show the new
    results of every check (probe counters, latency), not the kept text; promtool accepts the
    page; the loop-turn histogram counts turns."""
    app, down, ha = two_checks(ctx)
    first = metric_values(ha.get("/metrics")[2].decode())
    probes = {c: first[f'healthagg_check_probes_total{{check="{c}"}}'] for c in ("app", "down")}

    def later():
        m = metric_values(ha.get("/metrics")[2].decode())
        return all(m[f'healthagg_check_probes_total{{check="{c}"}}'] >= probes[c] + 2
                   for c in probes) and m
    m = poll(later, bool, 5, "both checks' probe counters to move by 2 in /metrics")
    expect(m["healthagg_check_failures_total{check=\"down\"}"] >= probes["down"] + 2,
           f"/metrics: the failing check's failures_total should follow its probes: {m}")
    expect(m["healthagg_check_state{check=\"down\",state=\"fail\"}"] == 1 and
           m["healthagg_check_up{check=\"app\"}"] == 1, f"/metrics states: {m}")
    turns = m.get("healthagg_loop_turn_seconds_count", 0)
    expect(turns > first.get("healthagg_loop_turn_seconds_count", 0) and
           m['healthagg_loop_turn_seconds_bucket{le="+Inf"}'] == turns and
           0 < m["healthagg_loop_turn_max_seconds"] < 5,
           f"/metrics: healthagg_loop_turn_seconds should count the loop's turns: {m}")
    # A passing check turns bad: its state lines change in the kept text too.
    app.set_mode("status:503")
    ha.wait_transition("app", "fail", 5)
    m = metric_values(ha.get("/metrics")[2].decode())
    expect(m['healthagg_check_state{check="app",state="fail"}'] == 1 and
           m['healthagg_check_state{check="app",state="pass"}'] == 0 and
           m['healthagg_check_up{check="app"}'] == 0 and
           m['healthagg_check_transitions_total{check="app"}'] >=
           first['healthagg_check_transitions_total{check="app"}'] + 1,
           f"/metrics after 'app' failed: {m}")
    promtool = shutil.which("promtool")
    if promtool:
        body = ha.get("/metrics")[2]
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                           timeout=30)
        expect(r.returncode == 0, f"promtool check metrics: {r.stdout!r} {r.stderr!r}")
    else:
        print("  promtool not installed: the page's syntax was not checked by it")


@test
def healthy_health_and_readyz_200(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    ha.wait_transition("app", "pass", 3)
    st, hdr, body = ha.get("/health")
    doc = json.loads(body)
    expect_eq((st, doc.get("status")), (200, "pass"), "/health when healthy")
    check_entry(doc, "app", "pass", "HTTP 200")
    st, body = ha.readyz()
    expect_eq((st, body.strip()), (200, "ok"), "/readyz when healthy")


@test
def head_same_status_and_headers_no_body(ctx):
    app, down, ha = two_checks(ctx)
    for path in PATHS + ["/nope"]:
        gst, ghdr, gbody = ha.get(path)
        raw = raw_request(ha.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                          .encode(), timeout=1)
        head, sep, rest = raw.partition(b"\r\n\r\n")
        expect(sep, f"HEAD {path}: no complete response head, saw {raw!r}")
        status_line, *hlines = head.decode("latin-1").split("\r\n")
        hst = int(status_line.split()[1])
        hhdr = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in hlines)}
        expect_eq(hst, gst, f"HEAD {path} status (vs GET)")
        expect_eq(rest, b"", f"HEAD {path}: bytes after the head")
        expect_eq(hhdr.get("content-type"), ghdr.get("content-type"),
                  f"HEAD {path} Content-Type (vs GET)")
        expect_eq("content-length" in hhdr, "content-length" in ghdr,
                  f"HEAD {path} has Content-Length (vs GET)")
        if path in ("/livez", "/readyz", "/nope"):  # bodies that do not change between requests
            expect_eq(hhdr.get("content-length"), ghdr.get("content-length"),
                      f"HEAD {path} Content-Length (vs GET)")


@test
def unknown_path_404_other_methods_405(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    for path in ("/nope", "/", "/readyz/extra", "/healthz"):
        st, _, _ = ha.get(path)
        expect_eq(st, 404, f"GET {path}")
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        st, hdr, _ = ha.get("/readyz", method=method)
        expect_eq(st, 405, f"{method} /readyz")
    # The server survives all that.
    st, _, body = ha.get("/livez")
    expect_eq((st, body.strip()), (200, b"alive"), "/livez afterwards")


@test
def post_with_a_body_is_405(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    for path in ("/readyz", "/health"):
        st, _, _ = http_request("POST", ha.port, path, body=b"x=1")
        expect_eq(st, 405, f"POST {path} with a 3-byte body")
    st, _, body = ha.get("/livez")
    expect_eq((st, body.strip()), (200, b"alive"), "/livez afterwards")


@test
def keep_alive_serves_several_requests(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    ha.wait_transition("app", "pass", 3)
    c = http.client.HTTPConnection("127.0.0.1", ha.port, timeout=2)
    try:
        for i, path in enumerate(PATHS * 2):
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            expect_eq(r.status, 200, f"request #{i + 1} ({path}) on one keep-alive connection")
    finally:
        c.close()


@test
def requests_never_trigger_probes(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    ha.wait_transition("app", "pass", 3)
    c0 = app.count()
    t0 = time.monotonic()
    n = 0
    while n < 600:
        st, _, _ = ha.get(PATHS[n % 4])
        expect_eq(st, 200, f"{PATHS[n % 4]} while healthy")
        n += 1
    elapsed = time.monotonic() - t0
    c1 = app.count()
    allowed = int(elapsed / INTERVAL_S) + 2
    expect(c1 - c0 <= allowed,
           f"{n} requests in {elapsed:.2f}s: the app saw {c1 - c0} probes, expected at most "
           f"{allowed} (one per {INTERVAL_S}s interval, plus slack)")


@test
def non_critical_failure_is_warn(ctx):
    app = ctx.testapp()
    down = ctx.dead_port()
    cfg = {"defaults": {"interval": "500ms", "timeout": "300ms", "failure_threshold": 1,
                        "success_threshold": 1},
           "checks": [{"name": "app", "url": app.url},
                      {"name": "cache", "url": f"tcp://127.0.0.1:{down}", "critical": False}]}
    ha = ctx.healthagg([], env={"HEALTHAGG_CONFIG": json.dumps(cfg)})
    ha.wait_transition("cache", "fail", 3)
    ha.wait_transition("app", "pass", 3)
    ha.wait_event(lambda o: o.get("event") == "aggregate" and o.get("to") == "warn", 3,
                  "aggregate -> warn")
    st, body = ha.readyz()
    expect(st == 200 and body.startswith("ok (warn:") and "cache" in body,
           f"/readyz with a failing non-critical check: expected 200 'ok (warn: cache...', saw "
           f"{st} {body!r}")
    st, _, body = ha.get("/health")
    doc = json.loads(body)
    expect_eq((st, doc.get("status")), (200, "warn"), "/health with a failing non-critical check")
    # The contract leaves a failing non-critical check's own status open: fail or warn.
    entry = doc["checks"].get("cache", [{}])[0]
    expect(entry.get("status") in ("fail", "warn"),
           f"/health checks['cache'][0].status: expected 'fail' or 'warn', saw {entry}")
    check_entry(doc, "cache", entry.get("status"), "connection refused")


run(__name__)
