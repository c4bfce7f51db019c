"""HTTP conditions against the C test app: custom `headers` with ${VAR} expansion (the app
requires an Authorization header), secrets never shown (startup log, transitions, /health,
/metrics, history, error messages), `expect_body_regex`, `expect_json`, `warn_latency`; and the
config errors of each (exit 2 naming the field)."""
import json
import os
import tempfile
import urllib.parse

from harness import *  # noqa: F401,F403

SECRET = "s3cr3t-Tok3n-for-tests"


def write_config(ctx, doc):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    f.write(json.dumps(doc))
    f.close()
    ctx.on_cleanup(lambda: os.unlink(f.name))
    return f.name


def config(checks, **top):
    doc = {"defaults": {"interval": "300ms", "timeout": "250ms", "failure_threshold": 1,
                        "success_threshold": 1}, "checks": checks}
    doc.update(top)
    return doc


def set_auth(app, value):
    st, _, body = http_request("GET", app.control_port, "/auth/" + urllib.parse.quote(value, safe=""))
    expect(st == 200, f"testapp /auth: {st} {body!r}")


def last_head(app):
    return http_request("GET", app.control_port, "/lasthead")[2].decode("utf-8", "replace")


def everything_shown(ha, extra=""):
    """Every place a secret could leak: the log so far, /health (with history), /metrics."""
    parts = list(ha.proc.lines) + list(ha.proc.err_lines)
    for path in ("/health?history=1", "/metrics", "/readyz"):
        st, _, body = ha.get(path)
        parts.append(body.decode("utf-8", "replace"))
    return "\n".join(parts) + extra


def expect_invalid(r, field, what):
    errs = lines_of(r.err)
    expect(r.rc == 2, f"{what}: expected exit 2, saw {r}")
    expect(len(errs) == 1, f"{what}: expected exactly one stderr line, saw {r.err!r}")
    expect(field in errs[0], f"{what}: stderr should contain {field!r}, saw {errs[0]!r}")


@test
def headers_reach_the_app_with_env_expansion(ctx):
    app = ctx.testapp()
    set_auth(app, "Bearer " + SECRET)
    path = write_config(ctx, config([{
        "name": "app", "url": app.url + "healthz",
        "headers": {"Authorization": "Bearer ${APP_TOKEN}", "X-Request-Source": "healthagg",
                    "User-Agent": "custom-agent/1"}}]))
    ha = ctx.healthagg(["--config", path], env={"APP_TOKEN": SECRET})
    desc = ha.startup["checks"][0]
    expect_eq(desc.get("headers"), {"Authorization": "<redacted>", "X-Request-Source": "<redacted>",
                                    "User-Agent": "<redacted>"}, "startup line's headers")
    poll(ha.readyz, lambda r: r[0] == 200, 5, "/readyz 200 with the right Authorization")
    head = last_head(app)
    expect("\r\nAuthorization: Bearer " + SECRET + "\r\n" in head, f"request head: {head!r}")
    expect("\r\nX-Request-Source: healthagg\r\n" in head, f"request head: {head!r}")
    # a configured User-Agent replaces healthagg's own, it is not sent twice
    expect("\r\nUser-Agent: custom-agent/1\r\n" in head and head.count("User-Agent") == 1,
           f"request head: {head!r}")
    expect("\r\nConnection: close\r\n" in head and "\r\nHost: 127.0.0.1:" in head,
           f"request head: {head!r}")

    # the app stops accepting the token: the check fails with the app's status
    mark = ha.mark()
    set_auth(app, "Bearer rotated")
    t = ha.wait_transition("app", "fail", 5, start=mark)
    expect_eq(t["reason"], "HTTP 401", "reason with a wrong token")
    shown = everything_shown(ha)
    expect(SECRET not in shown, "the token appears in the log, /health or /metrics")
    expect("<redacted>" in shown, "the startup line shows headers as <redacted>")


def set_mode(app, mode):
    app.set_mode(urllib.parse.quote(mode, safe=":"))


@test
def secrets_echoed_by_the_target_are_redacted(ctx):
    app = ctx.testapp(mode="echo-auth")
    path = write_config(ctx, config([{
        "name": "echo", "url": app.url,
        "headers": {"Authorization": "Bearer ${APP_TOKEN}"},
        "expect_json": [{"path": "$.auth", "equals": "something else"}]}]))
    ha = ctx.healthagg(["--config", path], env={"APP_TOKEN": SECRET})
    t = ha.wait_transition("echo", "fail", 5)
    expect_eq(t["reason"], '$.auth is "<redacted>", want "something else"',
              "reason quoting an echoed header value")
    head = last_head(app)
    expect(SECRET in head, f"the token was sent: {head!r}")
    shown = everything_shown(ha)
    expect(SECRET not in shown, "an echoed token appears in the log, /health or /metrics")


@test
def expect_json_conditions_and_reasons(ctx):
    app = ctx.testapp()
    set_mode(app, 'json:{"status": "UP", "db": {"latency_ms": 40}, "checks": [{"ok": true}]}')
    path = write_config(ctx, config([{
        "name": "api", "url": app.url + "health",
        "expect_json": [{"path": "$.status", "equals": "UP"},
                        {"path": "$.db.latency_ms", "lt": 100},
                        {"path": "$.checks[0].ok", "equals": True},
                        {"path": "$.error", "exists": False}]}]))
    ha = ctx.healthagg(["--config", path])
    expect_eq(ha.startup["checks"][0]["expect_json"][1], {"path": "$.db.latency_ms", "lt": 100},
              "startup line's expect_json")
    ha.wait_transition("api", "pass", 5)
    cases = [
        ('json:{"status": "DOWN", "db": {"latency_ms": 40}, "checks": [{"ok": true}]}',
         '$.status is "DOWN", want "UP"'),
        ('json:{"status": "UP", "db": {"latency_ms": 340}, "checks": [{"ok": true}]}',
         "$.db.latency_ms is 340, want < 100"),
        ('json:{"status": "UP", "db": {}, "checks": [{"ok": true}]}',
         "$.db.latency_ms does not exist, want < 100"),
        ('json:{"status": "UP", "db": {"latency_ms": 1}, "checks": [], "error": "x"}',
         "$.checks[0].ok does not exist, want true"),
        ('json:{"status": "UP", "db": {"latency_ms": 1}, "checks": [{"ok": 1}]}',
         "$.checks[0].ok is 1, want true"),
        ("body:<html>it works</html>",
         'body is not JSON: invalid at byte 0 of 21 (near "<html>it works</html>")'),
    ]
    for mode, reason in cases:
        mark = ha.mark()
        set_mode(app, mode)
        t = ha.wait_event(lambda o: o.get("event") == "transition" and o.get("to") == "fail",
                          5, f"a failure with {mode}", start=mark)
        expect_eq(t["reason"], reason, f"reason with {mode}")
        st, _, body = ha.get("/health")
        expect_eq(json.loads(body)["checks"]["api"][0]["output"], reason, "/health output")
        mark = ha.mark()
        set_mode(app, 'json:{"status": "UP", "db": {"latency_ms": 1}, "checks": [{"ok": true}]}')
        ha.wait_transition("api", "pass", 5, start=mark)


@test
def expect_body_regex_matches_lines(ctx):
    app = ctx.testapp()
    set_mode(app, "body:version: 3\nstatus: UP\n")
    path = write_config(ctx, config([{"name": "re", "url": app.url,
                                      "expect_body_regex": "^status: (UP|DEGRADED)$"}]))
    ha = ctx.healthagg(["--config", path])
    expect_eq(ha.startup["checks"][0]["expect_body_regex"], "^status: (UP|DEGRADED)$",
              "startup line's regex")
    ha.wait_transition("re", "pass", 5)
    mark = ha.mark()
    set_mode(app, "body:version: 3\nstatus: UPSIDE DOWN\n")
    t = ha.wait_transition("re", "fail", 5, start=mark)
    expect_eq(t["reason"], 'body did not match regex "^status: (UP|DEGRADED)$" (HTTP 200)',
              "regex failure reason")
    mark = ha.mark()
    set_mode(app, "body:status: DEGRADED")
    ha.wait_transition("re", "pass", 5, start=mark)


@test
def warn_latency_degrades_a_passing_check(ctx):
    app = ctx.testapp()
    path = write_config(ctx, config([
        {"name": "slowapp", "url": app.url, "warn_latency": "60ms"},
        {"name": "other", "url": app.url, "critical": False}]))
    ha = ctx.healthagg(["--config", path])
    expect_eq(ha.startup["checks"][0].get("warn_latency_ms"), 60, "startup line's warn_latency")
    ha.wait_transition("slowapp", "pass", 5)
    poll(ha.readyz, lambda r: r == (200, "ok\n"), 5, "/readyz ok while fast")
    mark = ha.mark()
    app.set_mode("slow:120")
    ev = ha.wait_event(lambda o: o.get("event") == "degraded", 5, "a degraded line", start=mark)
    expect_eq((ev["check"], ev["state"]), ("slowapp", "warn"), "degraded line")
    expect(ev["reason"].startswith("HTTP 200; slow: ") and
           ev["reason"].endswith("ms, over warn_latency 60ms"), f"degraded reason: {ev}")
    st, body = poll(ha.readyz, lambda r: r[0] == 200 and r[1].startswith("ok (warn: "), 5,
                    "/readyz 200 with a warning")
    expect("slowapp: HTTP 200; slow: " in body, f"/readyz body: {body!r}")
    st, _, raw = ha.get("/health")
    h = json.loads(raw)
    expect_eq((st, h["status"], h["checks"]["slowapp"][0]["status"],
               h["checks"]["slowapp"][0]["state"]), (200, "warn", "warn", "pass"),
              "/health while degraded")
    metrics = ha.get("/metrics")[2].decode()
    expect('healthagg_check_degraded{check="slowapp"} 1\n' in metrics, "degraded gauge 1")
    expect('healthagg_check_up{check="slowapp"} 1\n' in metrics, "still up")
    expect('healthagg_aggregate_state{state="warn"} 1\n' in metrics, "aggregate warn")
    expect(not ha.events("transition", check="slowapp", to="fail"), "slow must not fail")
    r = probe(ha)
    expect_eq(r.rc, 0, f"probe while degraded ({r})")

    mark = ha.mark()
    app.set_mode("ok")
    ev = ha.wait_event(lambda o: o.get("event") == "degraded_cleared", 5,
                       "a degraded_cleared line", start=mark)
    expect_eq((ev["check"], ev["state"], ev["reason"]), ("slowapp", "pass", "HTTP 200"),
              "degraded_cleared line")
    poll(ha.readyz, lambda r: r == (200, "ok\n"), 5, "/readyz ok again")
    metrics = ha.get("/metrics")[2].decode()
    expect('healthagg_check_degraded{check="slowapp"} 0\n' in metrics, "degraded gauge 0")


@test
def condition_config_errors_exit_2_naming_the_field(ctx):
    base = {"name": "app", "url": "http://127.0.0.1:8080/"}
    cases = [
        ({"expect_body_regex": "status: (UP"},
         'checks[0].expect_body_regex: "status: (UP" is not a valid POSIX extended regex: '),
        ({"expect_body_regex": ""}, "checks[0].expect_body_regex: empty"),
        ({"expect_body_regex": 5}, "checks[0].expect_body_regex: expected a string"),
        ({"expect_json": [{"path": "status", "equals": "UP"}]},
         "checks[0].expect_json[0].path: a path starts with $"),
        ({"expect_json": [{"path": "$.a[", "equals": "UP"}]},
         "checks[0].expect_json[0].path: \"[\" at byte 3: an index is [N]"),
        ({"expect_json": [{"path": "$.a", "equal": "UP"}]},
         "checks[0].expect_json[0].equal: unknown key"),
        ({"expect_json": [{"path": "$.a", "exists": True}, {"path": "$.b", "lt": "100"}]},
         "checks[0].expect_json[1].lt: expected a number, got a string"),
        ({"expect_json": {"path": "$.a", "equals": 1}}, "checks[0].expect_json: expected a list"),
        ({"expect_json": []}, "checks[0].expect_json: give 1 to 32 conditions"),
        ({"method": "HEAD", "expect_json": [{"path": "$", "exists": True}]},
         "checks[0].expect_json: a HEAD response has no body"),
        ({"warn_latency": "fast"}, "checks[0].warn_latency: "),
        ({"warn_latency": 50}, "checks[0].warn_latency: expected a duration"),
    ]
    for fields, want in cases:
        check = dict(base)
        check.update(fields)
        path = write_config(ctx, config([check]))
        for cmd in (["validate", "--config", path], ["serve", "--config", path]):
            expect_invalid(cli(cmd), want, f"{cmd[0]} with {fields!r}")
    for key, value in (("expect_json", [{"path": "$", "exists": True}]),
                       ("expect_body_regex", "x"), ("warn_latency", "1s")):
        path = write_config(ctx, config([{"name": "db", "url": "tcp://127.0.0.1:5432",
                                          key: value}]))
        expect_invalid(cli(["validate", "--config", path]),
                       f"checks[0].{key}: not a key of tcp checks", f"{key} on a tcp check")
    # in "defaults", a bad regex is reported where it was written
    path = write_config(ctx, config([dict(base)]))
    doc = config([dict(base)])
    doc["defaults"]["expect_body_regex"] = "+"
    path = write_config(ctx, doc)
    r = cli(["validate", "--config", path])
    expect(r.rc == 2 and "defaults.expect_body_regex" in r.err, f"regex in defaults: {r}")



@test
def header_config_errors_exit_2_naming_the_field(ctx):
    env = {"APP_TOKEN": SECRET, "CRLF_TOKEN": "a\r\nX-Injected: 1"}
    cases = [
        ({"Authorization": "Bearer ${UNSET_TOKEN_XYZ}"},
         "checks[0].headers.Authorization: ${UNSET_TOKEN_XYZ} is not set"),
        ({"Authorization": "${CRLF_TOKEN}"},
         "checks[0].headers.Authorization: the value has a control character (CR) at byte 1"),
        ({"Bad Name": "x"}, "checks[0].headers.Bad Name: \" \" cannot appear in a header name"),
        ({"X-A": "1", "x-a": "2"}, "checks[0].headers.x-a: given twice"),
        ({"Connection": "keep-alive"}, "checks[0].headers.Connection: healthagg sets this header"),
        ({"X-A": 5}, "checks[0].headers.X-A: expected a string"),
        ({"X-A": "${BROKEN"}, "checks[0].headers.X-A: \"${\" without a closing \"}\""),
        ("Authorization: x", "checks[0].headers: expected an object"),
    ]
    for headers, field in cases:
        path = write_config(ctx, config([{"name": "app", "url": "http://127.0.0.1:8080/",
                                          "headers": headers}]))
        for cmd in (["validate", "--config", path], ["serve", "--config", path]):
            r = cli(cmd, env=env)
            expect_invalid(r, field, f"{cmd[0]} with headers {headers!r}")
            expect(SECRET not in r.err and "X-Injected" not in r.err,
                   f"{cmd[0]}: the value leaked into the error: {r.err!r}")
    path = write_config(ctx, config([{"name": "db", "url": "tcp://127.0.0.1:5432",
                                      "headers": {"A": "b"}}]))
    expect_invalid(cli(["validate", "--config", path]), "checks[0].headers: not a key of tcp checks",
                   "headers on a tcp check")


run(__name__)
