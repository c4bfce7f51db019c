"""Apps that misbehave on the wire: healthagg must reach a verdict within its timeout, name a
reason, stay alive and keep answering. One sidecar, the testapp's mode switched per case."""
from harness import *  # noqa: F401,F403

WITHIN = 2 * INTERVAL_S * 1.5 + TIMEOUT_MS / 1000 + 1.5

# mode -> text the fail reason must contain ("" = any reason)
MUST_FAIL = [
    ("hang-headers", f"timeout after {TIMEOUT_MS}ms"),
    ("slow:800", f"timeout after {TIMEOUT_MS}ms"),
    ("drip:20", f"timeout after {TIMEOUT_MS}ms"),
    ("garbage", ""),
    ("reset", ""),
    ("close", "connection closed before response"),
    ("status:500", "HTTP 500"),
    ("status:404", "HTTP 404"),
]
MUST_PASS = ["http10", "slow:50", "drip:1", "body:hello", "status:204"]
# The contract does not fix these verdicts; they must only be reached within the timeout.
EITHER = ["chunked-endless", "big:20000000", "close-mid-body"]


def sidecar(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    ha.wait_transition("app", "pass", 3)
    return app, ha


def app_entry(ha):
    return json.loads(ha.get("/health")[2])["checks"]["app"][0]


def still_serving(ha, what):
    expect(ha.proc.alive(), f"healthagg died after {what}")
    st, _, body = ha.get("/livez")
    expect_eq((st, body.strip()), (200, b"alive"), f"/livez after {what}")


@test
def misbehaving_apps_fail_with_a_reason(ctx):
    app, ha = sidecar(ctx)
    for mode, reason in MUST_FAIL:
        mark = ha.mark()
        app.set_mode(mode)
        t = ha.wait_transition("app", "fail", WITHIN, start=mark)
        expect(reason in t["reason"] and t["reason"],
               f"mode {mode}: fail reason should contain {reason!r}: {t}")
        print(f"  {mode:16} -> fail: {t['reason']}")
        still_serving(ha, mode)
        mark = ha.mark()
        app.set_mode("ok")
        ha.wait_transition("app", "pass", WITHIN, start=mark)


@test
def odd_but_valid_responses_pass(ctx):
    app, ha = sidecar(ctx)
    problems = []
    for mode in MUST_PASS:
        app.set_mode("status:503")
        poll(lambda: app_entry(ha), lambda e: e["status"] == "fail" and e["output"] == "HTTP 503",
             WITHIN, "the check to fail with HTTP 503")
        mark = ha.mark()
        app.set_mode(mode)
        try:
            t = ha.wait_transition("app", "pass", WITHIN, start=mark)
            print(f"  {mode:16} -> pass: {t['reason']}")
        except TestFailure:
            out = app_entry(ha)["output"]
            problems.append(f"mode {mode}: expected the check to pass, it stays failing: {out}")
            print(f"  {mode:16} -> FAIL: {out}")
        still_serving(ha, mode)
    expect(not problems, "\n  ".join(problems))


@test
def unbounded_responses_reach_a_verdict_in_time(ctx):
    app, ha = sidecar(ctx)
    for mode in EITHER:
        app.set_mode(mode)
        c0 = app.count()
        # Each probe must end within the timeout, so the app keeps seeing new probes.
        poll(app.count, lambda c: c >= c0 + 3, 4 * INTERVAL_S * 1.5 + 1,
             f"three more probes while the app is in mode {mode}")
        e = app_entry(ha)
        print(f"  {mode:16} -> {e['status']}: {e['output']} ({e['observedValue']} ms)")
        expect(e["observedValue"] <= TIMEOUT_MS * 1.5,
               f"mode {mode}: a probe took {e['observedValue']}ms, beyond the {TIMEOUT_MS}ms "
               f"timeout")
        still_serving(ha, mode)
        mark = ha.mark()
        app.set_mode("ok")
        if ha.events("transition", check="app") and \
                ha.events("transition", check="app")[-1]["to"] == "fail":
            ha.wait_transition("app", "pass", WITHIN, start=mark)


@test
def flapping_app_never_crashes_the_sidecar(ctx):
    app, ha = sidecar(ctx)
    app.set_mode("flap:700")
    c0 = app.count()
    poll(app.count, lambda c: c >= c0 + 8, 8 * INTERVAL_S * 1.5 + 1, "eight probes of a flapping app")
    still_serving(ha, "flap:700")
    ts = ha.events("transition", check="app")
    for a, b in zip(ts, ts[1:]):
        expect_eq(b["from"], a["to"], "consecutive transitions chain (from == previous to)")
    print(f"  flap:700 -> {len(ts)} transitions")


run(__name__)
