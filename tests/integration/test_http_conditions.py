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
