"""file:// checks: files the test creates, removes and ages with os.utime; the exact reasons
(`no such file: PATH`, `stale: modified 42s ago (max_age 30s)`), recovery when a heartbeat is
touched again, and the one-shot `check` command on the same URLs."""
import json
import os
import shutil
import tempfile
import time

from harness import cli, expect, expect_eq, poll, run, test


def tmpdir(ctx):
    d = tempfile.mkdtemp(prefix="healthagg-file-")
    ctx.on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def entry(ha, name):
    st, _, body = ha.get("/health")
    return json.loads(body)["checks"][name][0]


def wait_output(ha, name, pred, what, timeout=10):
    return poll(lambda: entry(ha, name), lambda e: pred(e), timeout, what)


def serve(ctx, checks):
    d = tmpdir(ctx)
    path = os.path.join(d, "config.json")
    with open(path, "w") as f:
        json.dump({"defaults": {"interval": "200ms", "timeout": "100ms",
                                "failure_threshold": 1, "success_threshold": 1},
                   "checks": checks}, f)
    return ctx.healthagg(["--config", path])


def age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


@test
def exists_and_missing(ctx):
    d = tmpdir(ctx)
    there = os.path.join(d, "ready")
    open(there, "w").close()
    gone = os.path.join(d, "beat")
    ha = serve(ctx, [{"name": "ready", "url": "file://" + there},
                     {"name": "beat", "url": "file://" + gone},
                     {"name": "under_file", "url": "file://" + there + "/x"},
                     {"name": "dir", "url": "file://" + d}])
    e = wait_output(ha, "ready", lambda e: e["state"] == "pass", "ready to pass")
    expect_eq(e["output"], f"exists: {there}", "exists reason")
    expect_eq(e["componentType"], "file", "componentType")
    e = wait_output(ha, "beat", lambda e: e["state"] == "fail", "beat to fail")
    expect_eq(e["output"], f"no such file: {gone}", "missing reason")
    e = wait_output(ha, "under_file", lambda e: e["state"] == "fail", "under_file to fail")
    expect_eq(e["output"], f"no such file: {there}/x", "a path under a regular file")
    wait_output(ha, "dir", lambda e: e["state"] == "pass", "a directory exists")
    st, body = ha.readyz()
    expect(st == 503 and f"beat: no such file: {gone}" in body, f"/readyz {st} {body!r}")
    # The file appears: the check recovers, with a transition line saying so.
    mark = ha.mark()
    open(gone, "w").close()
    wait_output(ha, "beat", lambda e: e["state"] == "pass", "beat to pass once created")
    ha.wait_transition("beat", "pass", 5, start=mark)
    os.unlink(there)
    e = wait_output(ha, "ready", lambda e: e["state"] == "fail", "ready to fail once removed")
    expect_eq(e["output"], f"no such file: {there}", "removed file")


@test
def heartbeat_max_age(ctx):
    d = tmpdir(ctx)
    beat = os.path.join(d, "beat")
    open(beat, "w").close()
    ha = serve(ctx, [{"name": "worker", "url": "file://" + beat, "max_age": "30s"}])
    e = wait_output(ha, "worker", lambda e: e["state"] == "pass", "a fresh heartbeat")
    expect(e["output"].startswith("fresh: modified ") and e["output"].endswith(
        " ago (max_age 30s)"), f"fresh reason: {e['output']}")
    age(beat, 42.2)
    e = wait_output(ha, "worker", lambda e: e["state"] == "fail", "the aged heartbeat to fail")
    expect_eq(e["output"], "stale: modified 42s ago (max_age 30s)", "stale reason")
    st, body = ha.readyz()
    expect_eq((st, body), (503, "worker: stale: modified 42s ago (max_age 30s)\n"), "/readyz")
    # Just inside the limit passes; the worker touching the file again recovers the check.
    age(beat, 29)
    e = wait_output(ha, "worker", lambda e: e["state"] == "pass", "29s old is fresh")
    expect(e["output"].startswith("fresh: modified 29."), f"29s reason: {e['output']}")
    age(beat, 3600)
    e = wait_output(ha, "worker", lambda e: e["state"] == "fail", "an hour old")
    expect_eq(e["output"], "stale: modified 3600s ago (max_age 30s)", "an hour")
    os.utime(beat)  # touch
    wait_output(ha, "worker", lambda e: e["state"] == "pass", "touched again")
    # A file dated in the future (clock step, another host's clock) counts as fresh.
    age(beat, -120)
    e = wait_output(ha, "worker", lambda e: e["output"].startswith("fresh: modified 0.0s ago"),
                    "a future mtime")
    expect_eq(e["state"], "pass", "future mtime passes")


@test
def one_shot_check(ctx):
    d = tmpdir(ctx)
    beat = os.path.join(d, "beat")
    open(beat, "w").close()
    r = cli(["check", "file://" + beat])
    expect(r.rc == 0 and r.out.startswith(f"pass file://{beat}: exists: {beat}"), f"{r}")
    r = cli(["check", "file://" + d + "/nope"])
    expect(r.rc == 1 and f"no such file: {d}/nope" in r.out, f"{r}")
    r = cli(["validate", "--check", "file://relative/path"])
    expect(r.rc == 2 and "file://" in r.err, f"a relative file URL: {r}")
    r = cli(["validate", "--config", "/dev/null"])  # sanity: validate reads the config
    expect(r.rc == 2, f"{r}")


@test
def config_errors(ctx):
    d = tmpdir(ctx)
    for chk, msg in [
        ({"url": "file:///run/beat", "max_age": 30}, "checks[0].max_age: expected a duration"),
        ({"url": "file:///run/beat", "max_age": "30"}, "checks[0].max_age:"),
        ({"url": "file:///run/beat", "expect_body": "x"},
         "checks[0].expect_body: not a key of file checks"),
        ({"url": "file:///run/beat", "send": "x"}, "checks[0].send: not a key of file checks"),
    ]:
        path = os.path.join(d, "c.json")
        with open(path, "w") as f:
            json.dump({"checks": [chk]}, f)
        r = cli(["validate", "--config", path])
        expect(r.rc == 2 and msg in r.err, f"{chk}: expected exit 2 and {msg!r}: {r}")


run(__name__)
