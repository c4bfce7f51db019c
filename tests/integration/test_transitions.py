"""Check state transitions against a live testapp: healthy at start, failing on HTTP 503, refused
connections, hangs and early closes (with the reason a human needs), recovery after the success
threshold, TCP checks, and the start period."""
from harness import *  # noqa: F401,F403

# failure_threshold (2) intervals, plus jitter, the probe timeout and process scheduling slack.
FAIL_WITHIN = 2 * INTERVAL_S * 1.5 + TIMEOUT_MS / 1000 + 1.5
PASS_WITHIN = FAIL_WITHIN


def check_transition_line(t, check, frm, to):
    for k in ("time", "level", "event", "check", "from", "to", "reason", "latency_ms",
              "consecutive_failures", "consecutive_successes"):
        expect(k in t, f"transition line lacks {k!r}: {t}")
    expect_eq(t["check"], check, "transition check")
    expect_eq(t["from"], frm, "transition from")
    expect_eq(t["to"], to, "transition to")
    expect(isinstance(t["latency_ms"], (int, float)), f"latency_ms is not a number: {t}")


def healthy_sidecar(ctx, extra=()):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}", extra=extra))
    ha.wait_transition("app", "pass", 3)
    return app, ha


@test
def healthy_app_probe_exits_0_within_one_interval(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    r = poll(lambda: probe(ha), lambda r: r.rc == 0, INTERVAL_S + 0.4,
             "`healthagg probe` to exit 0 within one interval of startup")
    expect_eq(r.out, "healthy\n", "probe stdout when healthy")
    expect_eq(r.err, "", "probe stderr when healthy")
    t = ha.wait_transition("app", "pass", 1)
    check_transition_line(t, "app", "starting", "pass")
    expect("HTTP 200" in t["reason"], f"pass reason should say HTTP 200: {t}")
    ha.wait_event(lambda o: o.get("event") == "aggregate" and o.get("from") == "starting" and
                  o.get("to") == "pass", 1, "aggregate starting -> pass")
    st, body = ha.readyz()
    expect_eq((st, body.strip()), (200, "ok"), "/readyz when healthy")


@test
def app_503_fails_after_threshold_then_recovers(ctx):
    app, ha = healthy_sidecar(ctx)
    mark = ha.mark()
    app.set_mode("status:503")
    t = ha.wait_transition("app", "fail", FAIL_WITHIN, start=mark)
    check_transition_line(t, "app", "pass", "fail")
    expect("HTTP 503" in t["reason"], f"fail reason should say 'HTTP 503': {t}")
    expect_eq(t["consecutive_failures"], 2, "consecutive_failures at the pass->fail transition "
              "(failure_threshold 2)")
    ha.wait_event(lambda o: o.get("event") == "aggregate" and o.get("to") == "fail", 1,
                  "aggregate -> fail", start=mark)
    r = poll(lambda: probe(ha), lambda r: r.rc == 1, 1, "probe to exit 1")
    expect_eq(lines_of(r.out), ["unhealthy: app: HTTP 503"], "probe stdout when app answers 503")
    st, body = ha.readyz()
    expect(st == 503 and "app: HTTP 503" in body, f"/readyz: expected 503 'app: HTTP 503', saw "
           f"{st} {body!r}")

    mark = ha.mark()
    app.set_mode("ok")
    t = ha.wait_transition("app", "pass", PASS_WITHIN, start=mark)
    check_transition_line(t, "app", "fail", "pass")
    expect_eq(t["consecutive_successes"], 2, "consecutive_successes at the fail->pass transition "
              "(success_threshold 2)")
    ha.wait_event(lambda o: o.get("event") == "aggregate" and o.get("to") == "pass", 1,
                  "aggregate -> pass", start=mark)
    r = poll(lambda: probe(ha), lambda r: r.rc == 0, 1, "probe to exit 0 after recovery")
    expect_eq((r.out, r.err), ("healthy\n", ""), "probe output after recovery")


@test
def app_killed_reason_connection_refused(ctx):
    app, ha = healthy_sidecar(ctx)
    mark = ha.mark()
    app.kill()
    t = ha.wait_transition("app", "fail", FAIL_WITHIN, start=mark)
    check_transition_line(t, "app", "pass", "fail")
    expect("connection refused" in t["reason"], f"reason should contain 'connection refused': {t}")
    expect(f"127.0.0.1:{app.port}" in t["reason"],
           f"reason should name the target 127.0.0.1:{app.port}: {t}")
    r = probe(ha)
    expect(r.rc == 1 and "connection refused" in r.out,
           f"probe: expected exit 1 with 'connection refused' on stdout, saw {r}")


@test
def app_hangs_reason_timeout(ctx):
    app, ha = healthy_sidecar(ctx)
    mark = ha.mark()
    app.set_mode("hang")
    t = ha.wait_transition("app", "fail", FAIL_WITHIN, start=mark)
    check_transition_line(t, "app", "pass", "fail")
    expect(t["reason"].startswith(f"timeout after {TIMEOUT_MS}ms"),
           f"reason should start with 'timeout after {TIMEOUT_MS}ms': {t}")
    expect(t["latency_ms"] >= TIMEOUT_MS * 0.9, f"latency_ms of a timeout below the timeout: {t}")
    mark = ha.mark()
    app.set_mode("ok")
    ha.wait_transition("app", "pass", PASS_WITHIN, start=mark)


@test
def app_closes_reason_connection_closed(ctx):
    app, ha = healthy_sidecar(ctx)
    mark = ha.mark()
    app.set_mode("close")
    t = ha.wait_transition("app", "fail", FAIL_WITHIN, start=mark)
    expect("connection closed before response" in t["reason"],
           f"reason should contain 'connection closed before response': {t}")


@test
def tcp_check_up_then_refused(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"db=tcp://127.0.0.1:{app.port}"))
    t = ha.wait_transition("db", "pass", 3)
    check_transition_line(t, "db", "starting", "pass")
    names = [c.get("name") for c in ha.startup.get("checks", [])]
    urls = [c.get("url") for c in ha.startup.get("checks", [])]
    expect_eq(names, ["db"], "startup checks[].name")
    expect_eq(urls, [f"tcp://127.0.0.1:{app.port}"], "startup checks[].url")
    mark = ha.mark()
    app.kill()
    t = ha.wait_transition("db", "fail", FAIL_WITHIN, start=mark)
    expect("connection refused" in t["reason"], f"reason should contain 'connection refused': {t}")


@test
def start_period_hides_failures_and_first_success_passes(ctx):
    app = ctx.testapp(mode="status:503")
    ha = ctx.healthagg(serve_args(f"app={app.url}", extra=["--start-period", "4s"]))
    # Three intervals of failures inside the start period: still starting, never fail.
    t_end = time.monotonic() + 3 * INTERVAL_S
    seen = 0
    while time.monotonic() < t_end:
        st, body = ha.readyz()
        expect(st == 503 and body.startswith("starting"),
               f"/readyz inside the start period: expected 503 'starting: ...', saw {st} {body!r}")
        seen += 1
        time.sleep(0.05)
    expect(app.count() >= 2, f"expected >= 2 probes in {3 * INTERVAL_S}s, testapp saw "
           f"{app.count()}")
    bad = ha.events("transition", to="fail")
    expect(not bad, f"failures inside the start period must not count, saw {bad}")
    mark = ha.mark()
    app.set_mode("ok")
    t = ha.wait_transition("app", "pass", INTERVAL_S * 1.5 + 0.5, start=mark)
    expect_eq(t["from"], "starting", "transition from")
    expect_eq(t["consecutive_successes"], 1,
              "a success inside the start period passes at once (consecutive_successes)")


run(__name__)
