"""Groups: per-check "groups", /readyz?group=G, /health?group=G, `probe --group G`, the 404 for
an unknown group naming the known ones, the `group` log line, healthagg_group_up, and config
errors. The liveness/readiness split of the README: the app in "live" (and "ready"), a
dependency only in "ready"; the dependency going down fails /readyz and ?group=ready while
?group=live (what the ECS health check asks) stays 200."""
import json
import os
import signal
import tempfile

from harness import cli, expect, expect_eq, poll, probe, run, test


def config(ctx, doc):
    fd, path = tempfile.mkstemp(prefix="healthagg-groups-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    ctx.on_cleanup(lambda: os.unlink(path))
    return path


FAST = {"interval": "200ms", "timeout": "150ms", "failure_threshold": 1, "success_threshold": 1}


def live_ready(ctx, extra=None):
    app = ctx.testapp()
    dep = ctx.testapp()
    doc = {"defaults": dict(FAST), "checks": [
        {"name": "app", "url": app.url, "groups": ["live", "ready"]},
        {"name": "dep", "url": dep.url, "groups": ["ready"]},
        {"name": "cache", "url": dep.url, "critical": False}]}
    doc.update(extra or {})
    ha = ctx.healthagg(["--config", config(ctx, doc)])
    return app, dep, ha


def text(ha, path):
    st, _, body = ha.get(path)
    return st, body.decode()


@test
def liveness_vs_readiness(ctx):
    app, dep, ha = live_ready(ctx)
    expect_eq(ha.startup.get("groups"), ["live", "ready"], "startup groups")
    expect_eq(ha.startup["checks"][0].get("groups"), ["live", "ready"], "a check's groups")
    expect("groups" not in ha.startup["checks"][2], "a check without groups shows none")
    poll(lambda: text(ha, "/readyz"), lambda r: r == (200, "ok\n"), 10, "ready")
    expect_eq(text(ha, "/readyz?group=live"), (200, "ok\n"), "live group")
    expect_eq(text(ha, "/readyz?group=ready"), (200, "ok\n"), "ready group")
    mark = ha.mark()
    dep.set_mode("status:503")
    poll(lambda: text(ha, "/readyz?group=ready"), lambda r: r == (503, "dep: HTTP 503\n"), 10,
         "the ready group to fail on the dependency")
    st, body = text(ha, "/readyz")
    expect(st == 503 and body.startswith("dep: HTTP 503"), f"/readyz: {st} {body!r}")
    expect_eq(text(ha, "/readyz?group=live"), (200, "ok\n"), "live ignores the dependency")
    r = probe(ha, ["--group", "live"])
    expect(r.rc == 0 and r.out == "healthy\n", f"probe --group live: {r}")
    r = probe(ha, ["--group", "ready"])
    expect(r.rc == 1 and r.out == "unhealthy: dep: HTTP 503\n", f"probe --group ready: {r}")
    r = probe(ha)
    expect(r.rc == 1 and "dep: HTTP 503" in r.out, f"probe: {r}")
    ev = ha.wait_event(lambda o: o.get("event") == "group" and o.get("group") == "ready" and
                       o.get("to") == "fail", 5, "a group line for ready", start=mark)
    expect_eq((ev["from"], ev["reason"], ev["ready"]), ("pass", "dep: HTTP 503", False),
              "group line")
    expect(not any(o.get("group") == "live" for o in ha.events("group")[2:]),
           "no group line for live, whose verdict did not change")
    # /health?group=G: only its members, its own verdict, and the group named.
    st, _, body = ha.get("/health?group=live")
    h = json.loads(body)
    expect_eq((st, h["status"], h["group"], sorted(h["checks"])), (200, "pass", "live", ["app"]),
              "/health?group=live")
    st, _, body = ha.get("/health?group=ready&history=1")
    h = json.loads(body)
    expect_eq((st, h["status"], sorted(h["checks"])), (503, "fail", ["app", "dep"]),
              "/health?group=ready&history=1")
    expect("history" in h["checks"]["dep"][0], "history with a group")
    st, _, body = ha.get("/health")
    expect("group" not in json.loads(body), "/health without a group names none")
    _, _, body = ha.get("/metrics")
    m = body.decode()
    expect('healthagg_group_up{group="live"} 1' in m and
           'healthagg_group_up{group="ready"} 0' in m, "healthagg_group_up")
    # The app itself breaking fails live: the ECS health check replaces the task.
    app.set_mode("status:503")
    poll(lambda: text(ha, "/readyz?group=live"), lambda r: r == (503, "app: HTTP 503\n"), 10,
         "live to fail on the app")
    r = probe(ha, ["--group", "live"])
    expect(r.rc == 1 and r.out == "unhealthy: app: HTTP 503\n", f"probe --group live: {r}")
    # Draining turns every group 503 at once.
    ha.proc.signal(signal.SIGTERM)


@test
def draining_and_report_only(ctx):
    app, dep, ha = live_ready(ctx, {"shutdown_grace": "3s", "enforce": False})
    poll(lambda: text(ha, "/readyz?group=live"), lambda r: r == (200, "ok\n"), 10, "live")
    dep.set_mode("status:503")
    poll(lambda: text(ha, "/readyz?group=ready"),
         lambda r: r == (200, "ok (report-only: would fail: dep: HTTP 503)\n"), 10,
         "report-only applies to groups too")
    ha.proc.signal(signal.SIGTERM)
    for g in ("live", "ready"):
        poll(lambda: text(ha, f"/readyz?group={g}"), lambda r: r == (503, "draining\n"), 5,
             f"group {g} draining")


@test
def unknown_groups_and_other_queries(ctx):
    app, dep, ha = live_ready(ctx)
    poll(lambda: text(ha, "/readyz"), lambda r: r[0] == 200, 10, "ready")
    want = (404, "unknown group; known groups: live, ready\n")
    for path in ("/readyz?group=nope", "/readyz?group=", "/readyz?group=LIVE",
                 "/readyz?group=liv", "/readyz?group=live2", "/readyz?group=l%69ve"):
        expect_eq(text(ha, path), want, path)
    st, hdr, body = ha.get("/health?group=nope")
    expect_eq((st, hdr["content-type"], json.loads(body)),
              (404, "application/health+json",
               {"status": "fail", "output": "unknown group; known groups: live, ready"}),
              "/health?group=nope")
    # Other query strings are ignored, and only the first group= counts.
    for path in ("/readyz?", "/readyz?x=1", "/readyz?groups=nope", "/readyz?x=1&group=live",
                 "/readyz?group=live&group=nope", "/livez?group=nope", "/metrics?group=nope"):
        st, _ = text(ha, path)
        expect_eq(st, 200, path)
    # A long query cut by the request buffer never selects a group by a prefix of its name.
    long_path = "/readyz?" + "x" * 100 + "&group=liveXXXXXXXXXXXXXXXX"
    expect_eq(text(ha, long_path)[0], 404, "a cut group name")
    long_ok = "/readyz?" + "x" * 90 + "&group=live"
    st, _ = text(ha, long_ok)
    expect(st in (200, 404), f"a long query: {st}")
    r = probe(ha, ["--group", "nope"])
    expect(r.rc == 1 and r.out == "unhealthy: unknown group; known groups: live, ready\n",
           f"probe --group nope: {r}")
    r = probe(ha, ["--group", "bad name"])
    expect(r.rc == 1 and "probe --group" in r.out and "not a group name" in r.out, f"{r}")
    r = cli(["probe", "--url", f"http://127.0.0.1:{ha.port}/readyz?x=1", "--group", "live",
             "--mirror", "never"])
    expect(r.rc == 0, f"--group appended to a URL with a query: {r}")


@test
def no_groups_configured(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(["--check", "app=" + app.url, "--interval", "200ms", "--timeout",
                        "150ms"])
    poll(lambda: text(ha, "/readyz"), lambda r: r[0] == 200, 10, "ready")
    st, body = text(ha, "/readyz?group=live")
    expect(st == 404 and 'no check has "groups"' in body, f"{st} {body!r}")
    r = probe(ha, ["--group", "live"])
    expect(r.rc == 1 and 'no check has "groups"' in r.out, f"{r}")
    _, _, m = ha.get("/metrics")
    expect(b"healthagg_group_up" not in m, "no group metrics without groups")


@test
def config_errors(ctx):
    base = "tcp://127.0.0.1:1"
    cases = [
        ({"url": base, "groups": "live"}, "checks[0].groups: expected a list of group names"),
        ({"url": base, "groups": ["live", 3]}, "checks[0].groups[1]: expected a group name"),
        ({"url": base, "groups": ["li ve"]}, 'checks[0].groups[0]: "li ve" is not a group name'),
        ({"url": base, "groups": [""]}, 'checks[0].groups[0]: "" is not a group name'),
        ({"url": base, "groups": ["a" * 32]}, "is not a group name; use 1-31 letters"),
        ({"url": base, "groups": ["a", "a"]}, 'checks[0].groups[1]: "a" is listed twice'),
        ({"url": base, "groups": [str(i) for i in range(9)]},
         "checks[0].groups: 9 groups; a check may be in at most 8"),
    ]
    for chk, msg in cases:
        r = cli(["validate", "--config", config(ctx, {"checks": [chk]})])
        expect(r.rc == 2 and msg in r.err, f"{chk}: expected exit 2 with {msg!r}: {r}")
    many = [{"name": f"c{i}", "url": base, "groups": [f"g{i}"]} for i in range(65)]
    r = cli(["validate", "--config", config(ctx, {"checks": many})])
    expect(r.rc == 2 and "checks[64].groups" in r.err and "at most 64 distinct groups" in r.err,
           f"65 groups: {r}")
    # "defaults" may set groups; a check's own (even empty) list replaces them.
    doc = {"defaults": {"groups": ["live"]},
           "checks": [{"name": "a", "url": base}, {"name": "b", "url": base, "groups": []}]}
    r = cli(["validate", "--config", config(ctx, doc)])
    expect(r.rc == 0, f"defaults.groups: {r}")


run(__name__)
