"""Process lifecycle of `healthagg serve`: the startup line, the JSON-lines log format, SIGTERM
draining (/readyz 503 `draining` during the grace, then exit 0 with a shutdown line), SIGINT."""
import json
import signal

from harness import *  # noqa: F401,F403


def check_log_lines(ha):
    for line in ha.proc.lines:
        try:
            obj = json.loads(line)
        except ValueError:
            fail(f"stdout line is not JSON: {line!r}")
        for k in ("time", "level", "event"):
            expect(k in obj, f"log line lacks {k!r}: {line}")


@test
def startup_line(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    first = json.loads(ha.proc.lines[0])
    expect_eq(first.get("event"), "startup", "event of the first stdout line")
    checks = first.get("checks")
    expect(isinstance(checks, list) and len(checks) == 1, f"startup checks: {first}")
    expect_eq((checks[0].get("name"), checks[0].get("url")), ("app", app.url),
              "startup checks[0] name/url")
    expect_eq(ha.proc.err_lines, [], "stderr of a healthy start")


@test
def sigterm_drains_then_exits_0(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}", extra=["--grace", "2s"]))
    ha.wait_transition("app", "pass", 3)
    expect_eq(ha.readyz()[0], 200, "/readyz before SIGTERM")
    mark = ha.mark()
    t0 = time.monotonic()
    ha.proc.signal(signal.SIGTERM)
    st, body = poll(ha.readyz, lambda r: r[0] == 503, 0.5, "/readyz 503 right after SIGTERM")
    expect("draining" in body, f"/readyz body while draining: expected 'draining', saw {body!r}")
    ha.wait_event(lambda o: o.get("event") == "draining", 1, "a draining log line", start=mark)
    r = cli(["probe", "--url", f"http://127.0.0.1:{ha.port}/readyz"])
    expect(r.rc == 1 and "draining" in r.out,
           f"probe while draining: expected exit 1 mentioning draining, saw {r}")
    # /livez keeps answering during the grace: the process is alive, only not ready.
    st, _, _ = ha.get("/livez")
    expect_eq(st, 200, "/livez while draining")
    rc = ha.proc.wait_exit(4)
    elapsed = time.monotonic() - t0
    expect_eq(rc, 0, "exit status after SIGTERM")
    expect(elapsed >= 1.6, f"exited {elapsed:.2f}s after SIGTERM, before the 2s grace")
    last = json.loads(ha.proc.lines[-1])
    expect_eq(last.get("event"), "shutdown", "event of the last log line")
    check_log_lines(ha)


@test
def sigint_exits_0(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}", extra=["--grace", "250ms"]))
    ha.wait_transition("app", "pass", 3)
    ha.proc.signal(signal.SIGINT)
    expect_eq(ha.proc.wait_exit(3), 0, "exit status after SIGINT")
    expect_eq(json.loads(ha.proc.lines[-1]).get("event"), "shutdown", "last log line's event")
    check_log_lines(ha)


@test
def sigterm_while_failing_exits_0(ctx):
    down = ctx.dead_port()
    ha = ctx.healthagg(serve_args(f"app=http://127.0.0.1:{down}/", failure_threshold=1,
                                  extra=["--grace", "250ms"]))
    ha.wait_transition("app", "fail", 3)
    ha.proc.signal(signal.SIGTERM)
    expect_eq(ha.proc.wait_exit(3), 0, "exit status after SIGTERM with a failing check")
    check_log_lines(ha)


run(__name__)
