"""ECS operator features of `serve` against a live testapp: health_check and still_unhealthy log
lines, the flight recorder (/health?history=1, `history` lines on a turn to fail and on SIGTERM),
start_interval (time to healthy for an app that starts late), report-only mode ("enforce":
false) and the config keys that go with them."""
import os
import tempfile

from harness import *  # noqa: F401,F403

FAIL_WITHIN = 2 * INTERVAL_S * 1.5 + TIMEOUT_MS / 1000 + 1.5


def config_file(ctx, doc):
    fd, path = tempfile.mkstemp(prefix="healthagg-ops-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    ctx.on_cleanup(lambda: os.unlink(path))
    return path


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check(name, url, **kw):
    d = {"name": name, "url": url, "interval": "500ms", "timeout": "300ms",
         "failure_threshold": 2, "success_threshold": 2}
    d.update(kw)
    return d


@test
def health_check_event_when_probe_verdict_changes(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    up = ha.wait_event(lambda o: o.get("event") == "health_check", 3, "health_check -> healthy")
    expect_eq((up["from"], up["to"], up["probe_exit_code"], up["reason"]),
              ("unhealthy", "healthy", 0, "ok"), "first health_check line")
    expect_eq(up["enforced"], True, "health_check enforced")
    mark = ha.mark()
    app.set_mode("status:503")
    down = ha.wait_event(lambda o: o.get("event") == "health_check", FAIL_WITHIN,
                         "health_check -> unhealthy", start=mark)
    expect_eq((down["from"], down["to"], down["probe_exit_code"], down["level"]),
              ("healthy", "unhealthy", 1, "warn"), "health_check on failure")
    expect_eq(down["reason"], "app: HTTP 503", "health_check reason")
    r = probe(ha)
    expect_eq((r.rc, r.out.strip()), (1, "unhealthy: app: HTTP 503"),
              "probe agrees with the health_check line")
    # Only changes of the verdict are logged: more failing probes add no health_check line.
    mark2 = ha.mark()
    time.sleep(3 * INTERVAL_S)  # let probes run; the assertion is that nothing was logged
    expect_eq(len([o for o in ha.events("health_check")]), 2,
              "health_check lines while the verdict stays the same")
    app.set_mode("ok")
    back = ha.wait_event(lambda o: o.get("event") == "health_check", FAIL_WITHIN,
                         "health_check -> healthy again", start=mark2)
    expect_eq((back["from"], back["to"]), ("unhealthy", "healthy"), "recovery health_check")


@test
def still_unhealthy_summary_while_failing(ctx):
    app = ctx.testapp()
    ok = ctx.testapp()
    path = config_file(ctx, {"still_unhealthy_interval": "1s",
                             "checks": [check("app", app.url), check("other", ok.url)]})
    ha = ctx.healthagg(["--config", path])
    ha.wait_transition("app", "pass", 3)
    mark = ha.mark()
    app.set_mode("status:503")
    t = ha.wait_transition("app", "fail", FAIL_WITHIN, start=mark)
    s = ha.wait_event(lambda o: o.get("event") == "still_unhealthy", 2.5, "a still_unhealthy line",
                      start=mark)
    expect_eq(s["aggregate"], "fail", "still_unhealthy aggregate")
    expect_eq([f["check"] for f in s["failing"]], ["app"], "still_unhealthy failing checks")
    f = s["failing"][0]
    expect_eq((f["state"], f["reason"]), ("fail", "HTTP 503"), "failing check entry")
    expect(abs(datetime_of(f["since"]) - datetime_of(t["time"])) < 0.05,
           f"since {f['since']} = the time of the transition to fail {t['time']}")
    expect("last_success" in f, f"a check that passed before says when: {f}")
    expect(s["reason"] == "app: HTTP 503" and s["probe_healthy"] is False, f"summary: {s}")
    # Once a second (the configured period), and never once the task is healthy again.
    s2 = ha.wait_event(lambda o: o.get("event") == "still_unhealthy" and o["time"] != s["time"],
                       2.5, "a second still_unhealthy line", start=mark)
    expect_eq(s2["since"], s["since"], "unhealthy since stays the same")
    mark = ha.mark()
    app.set_mode("ok")
    ha.wait_event(lambda o: o.get("event") == "health_check" and o.get("to") == "healthy",
                  FAIL_WITHIN, "recovery", start=mark)
    quiet = ha.mark()
    time.sleep(1.6)  # more than one period: the assertion is that no line comes
    later = [l for l in ha.proc.lines[quiet:] if '"still_unhealthy"' in l]
    expect_eq(later, [], "still_unhealthy lines after recovery")


@test
def still_unhealthy_while_the_app_never_starts(ctx):
    # The deadlocked-dependsOn / app-never-started case: the task never turns healthy.
    path = config_file(ctx, {"still_unhealthy_interval": "1s",
                             "checks": [check("app", f"http://127.0.0.1:{ctx.dead_port()}/",
                                              start_period="1h")]})
    ha = ctx.healthagg(["--config", path])
    s = ha.wait_event(lambda o: o.get("event") == "still_unhealthy", 2.5, "still_unhealthy")
    expect_eq(s["aggregate"], "starting", "aggregate while the app never answered")
    f = s["failing"][0]
    expect(f["state"] == "starting" and "connection refused" in f["reason"],
           f"failing entry: {f}")
    expect("last_success" not in f, f"never succeeded: {f}")


@test
def history_ring_served_and_logged_on_fail(ctx):
    app = ctx.testapp()
    path = config_file(ctx, {"history_size": 4, "checks": [check("app", app.url)]})
    ha = ctx.healthagg(["--config", path])
    ha.wait_transition("app", "pass", 3)
    mark = ha.mark()
    app.set_mode("status:503")
    t = ha.wait_transition("app", "fail", FAIL_WITHIN, start=mark)
    h = ha.wait_event(lambda o: o.get("event") == "history", 1, "history line on fail", start=mark)
    expect_eq((h["check"], h["trigger"]), ("app", "fail"), "history line")
    res = h["results"]
    expect(2 <= len(res) <= 4, f"history holds at most history_size (4) results: {res}")
    expect_eq([r["result"] for r in res[-2:]], ["fail", "fail"], "the two failures, newest last")
    expect_eq(res[-1]["reason"], "HTTP 503", "newest reason")
    expect_eq(res[-1]["state"], "fail", "state after the newest result")
    expect_eq(res[-1]["time"], t["time"], "the newest result is the one that turned it")
    expect(all(r["result"] == "pass" and r["reason"] == "HTTP 200" for r in res[:-2]),
           f"older results are the passes: {res}")
    for r in res:
        expect(set(r) == {"time", "result", "state", "latency_ms", "reason"}, f"entry keys: {r}")
    # /health?history=1 carries the ring, /health does not; the ring never grows past 4.
    poll(lambda: ha.get("/health?history=1"),
         lambda r: len(json.loads(r[2])["checks"]["app"][0]["history"]) == 4, 3,
         "a full ring of 4 in /health?history=1")
    st, hdr, body = ha.get("/health?history=1")
    doc = json.loads(body)
    ring = doc["checks"]["app"][0]["history"]
    expect_eq(len(ring), 4, "ring size")
    expect(ring == sorted(ring, key=lambda r: r["time"]), f"oldest first: {ring}")
    expect_eq((st, hdr["content-type"]), (503, "application/health+json"), "status, type")
    st, _, body = ha.get("/health")
    expect("history" not in json.loads(body)["checks"]["app"][0], "/health without history")
    st, _, body = ha.get("/health?verbose=1&history=1")
    expect("history" in json.loads(body)["checks"]["app"][0], "history=1 among other params")


@test
def history_logged_for_every_check_on_sigterm(ctx):
    app = ctx.testapp()
    dead = f"http://127.0.0.1:{ctx.dead_port()}/"
    ha = ctx.healthagg(serve_args(f"app={app.url}", f"db={dead}"))
    ha.wait_transition("db", "fail", FAIL_WITHIN)
    mark = ha.mark()
    ha.proc.signal(signal.SIGTERM)
    expect_eq(ha.proc.wait_exit(5), 0, "exit code after SIGTERM")
    lines = [json.loads(l) for l in ha.proc.lines[mark:] if '"history"' in l and
             '"SIGTERM"' in l]
    expect_eq([(o["check"], o["trigger"]) for o in lines], [("app", "SIGTERM"), ("db", "SIGTERM")],
              "one history line per check on SIGTERM")
    expect(all(r["result"] == "pass" for r in lines[0]["results"]) and lines[0]["results"],
           f"app's history: {lines[0]}")
    expect(all("connection refused" in r["reason"] for r in lines[1]["results"]),
           f"db's history: {lines[1]}")


@test
def history_size_zero_turns_the_recorder_off(ctx):
    app = ctx.testapp()
    path = config_file(ctx, {"history_size": 0, "checks": [check("app", app.url)]})
    ha = ctx.healthagg(["--config", path])
    ha.wait_transition("app", "pass", 3)
    st, _, body = ha.get("/health?history=1")
    expect_eq(json.loads(body)["checks"]["app"][0]["history"], [], "history with size 0")


def time_to_healthy(ctx, start_interval):
    """Starts healthagg against a port nothing listens on yet, then the app 1.2 s later; returns
    the seconds from the app listening to the check's transition to pass."""
    port = free_port()
    c = check("app", f"http://127.0.0.1:{port}/", interval="2s", timeout="300ms",
              start_period="1m")
    if start_interval:
        c["start_interval"] = start_interval
    path = config_file(ctx, {"checks": [c]})
    ha = ctx.healthagg(["--config", path])
    time.sleep(1.2)  # the app starts late, on purpose: not a synchronisation
    t_app = time.time()
    app = ctx.testapp(port=port)
    t_listen = time.time()
    t = ha.wait_transition("app", "pass", 5)
    ev = datetime_of(t["time"])
    return app, ha, ev - (t_app + t_listen) / 2


def datetime_of(rfc3339):
    import datetime
    return datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


@test
def start_interval_turns_healthy_fast_then_slows_down(ctx):
    app, ha, delay = time_to_healthy(ctx, "200ms")
    print(f"  measured: start_interval 200ms, interval 2s: healthy {delay * 1000:.0f} ms after "
          f"the app started listening", flush=True)
    expect(delay < 0.45, f"healthy {delay:.3f}s after the app answered; start_interval is 200ms")
    expect_eq(ha.startup["checks"][0]["start_interval_ms"], 200, "startup line start_interval_ms")
    # After the first success the normal interval (2s) applies: at most 2 probes in 2.5 s.
    n0 = app.count()
    time.sleep(2.5)  # counting probes over a window: the window is the measurement
    n = app.count() - n0
    expect(1 <= n <= 2, f"{n} probes in 2.5 s after the first success; the interval is 2s")


@test
def without_start_interval_the_first_success_waits_for_the_interval(ctx):
    # The contrast that makes the test above mean something: the same late app, no
    # start_interval, interval 2s.
    _, _, delay = time_to_healthy(ctx, None)
    print(f"  measured: no start_interval, interval 2s: healthy {delay * 1000:.0f} ms after the "
          f"app started listening", flush=True)
    expect(delay > 0.3, f"healthy only {delay:.3f}s after the app answered without "
           f"start_interval: the late start did not fall between probes")


@test
def start_interval_in_defaults_and_validation(ctx):
    app = ctx.testapp()
    path = config_file(ctx, {"defaults": {"start_interval": "150ms"},
                             "checks": [{"name": "app", "url": app.url}]})
    r = cli(["validate", "--config", path])
    expect_eq(r.rc, 0, f"validate with defaults.start_interval: {r}")
    bad = [({"defaults": {"start_interval": "fast"}, "checks": [{"url": app.url}]},
            "defaults.start_interval: "),
           ({"checks": [{"url": app.url, "start_interval": "50ms"}]},
            "checks[0].start_interval: 50ms must be between 100ms and the interval 5s"),
           ({"checks": [{"url": app.url, "interval": "1s", "timeout": "300ms",
                          "start_interval": "2s"}]},
            "checks[0].start_interval: 2s must be between 100ms and the interval 1s"),
           ({"checks": [{"url": app.url, "start_interval": 1}]},
            "checks[0].start_interval: expected a duration string"),
           ({"enforce": "no", "checks": [{"url": app.url}]}, "enforce: expected true or false"),
           ({"history_size": 5000, "checks": [{"url": app.url}]}, "history_size: "),
           ({"still_unhealthy_interval": "10ms", "checks": [{"url": app.url}]},
            "still_unhealthy_interval: must be 0 (off) or at least 1s"),
           ({"server": {"public_details": 1}, "checks": [{"url": app.url}]},
            "server.public_details: expected true or false"),
           ({"checks": [{"url": app.url, "container": "app one"}]},
            "checks[0].container: \"app one\" is not an ECS container name")]
    for doc, msg in bad:
        r = cli(["validate", "--config", config_file(ctx, doc)])
        expect(r.rc == 2 and msg in r.err, f"expected exit 2 and {msg!r} for {doc}: {r}")


@test
def report_only_keeps_readyz_and_probe_healthy(ctx):
    app = ctx.testapp()
    path = config_file(ctx, {"enforce": False, "checks": [check("app", app.url)]})
    ha = ctx.healthagg(["--config", path])
    expect_eq(ha.startup["enforce"], False, "startup line enforce")
    ha.wait_transition("app", "pass", 3)
    mark = ha.mark()
    app.set_mode("status:503")
    t = ha.wait_transition("app", "fail", FAIL_WITHIN, start=mark)
    expect_eq(t["enforced"], False, "transition line says enforced false")
    a = ha.wait_event(lambda o: o.get("event") == "aggregate" and o.get("to") == "fail", 1,
                      "aggregate -> fail", start=mark)
    expect_eq(a["enforced"], False, "aggregate line enforced")
    st, body = ha.readyz()
    expect_eq((st, body), (200, "ok (report-only: would fail: app: HTTP 503)\n"), "/readyz")
    r = probe(ha)
    expect_eq((r.rc, r.out, r.err), (0, "healthy (report-only: would fail: app: HTTP 503)\n", ""),
              "probe in report-only mode")
    st, _, body = ha.get("/health")
    doc = json.loads(body)
    expect_eq((st, doc["status"], doc["enforced"], doc["checks"]["app"][0]["status"]),
              (503, "fail", False, "fail"), "/health shows the real verdict")
    st, _, body = ha.get("/metrics")
    text = body.decode()
    expect("\nhealthagg_enforced 0\n" in text, "healthagg_enforced 0 in /metrics")
    expect("\nhealthagg_up 0\n" in text, "healthagg_up is the real verdict")
    expect('healthagg_check_up{check="app"} 0' in text, "check_up is the real verdict")
    # The verdict probe receives never changed: no health_check line.
    expect_eq(ha.events("health_check"), [], "health_check lines in report-only mode")


@test
def enforced_by_default_metrics_say_so(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    ha.wait_transition("app", "pass", 3)
    st, _, body = ha.get("/metrics")
    expect("\nhealthagg_enforced 1\n" in body.decode(), "healthagg_enforced 1 by default")
    expect_eq(json.loads(ha.get("/health")[2])["enforced"], True, "/health enforced")


@test
def report_only_still_drains_on_sigterm(ctx):
    app = ctx.testapp()
    path = config_file(ctx, {"enforce": False, "shutdown_grace": "3s",
                             "checks": [check("app", app.url)]})
    ha = ctx.healthagg(["--config", path])
    ha.wait_transition("app", "pass", 3)
    ha.proc.signal(signal.SIGTERM)
    poll(lambda: ha.readyz(), lambda r: r[0] == 503 and r[1].strip() == "draining", 2,
         "/readyz 503 draining in report-only mode")
    h = ha.wait_event(lambda o: o.get("event") == "health_check", 2, "health_check on drain")
    expect_eq((h["to"], h["reason"]), ("unhealthy", "draining"), "health_check when draining")


run(__name__)
