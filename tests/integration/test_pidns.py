"""probe --mirror in a PID namespace, the way a container runs it: `serve` is PID 1 (unshare
--pid --fork --mount-proc), `probe` runs inside the same namespace (nsenter) and writes its
verdict to /proc/1/fd/1, serve's stdout: the container's log stream. The wedged-sidecar case
stops serve with SIGSTOP: it cannot log anything, and the probe's own lines are what the log
shows. Needs root (namespaces): without it every test prints SKIPPED."""
import os
import shutil
import subprocess

import harness

from harness import *  # noqa: F401,F403

# --kill-child: serve (PID 1 of the namespace) dies with unshare, which is what the harness kills;
# without it serve would be reparented and outlive the test.
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL"]


def need_namespaces():
    if os.geteuid() != 0:
        skip("needs root to create PID and mount namespaces (unshare --pid --mount-proc)")
    for tool in ("unshare", "nsenter"):
        if not shutil.which(tool):
            skip(f"{tool} not found (Debian util-linux)")
    r = subprocess.run(UNSHARE + ["true"], capture_output=True, timeout=10)
    if r.returncode != 0:
        skip(f"unshare --pid --fork --mount-proc is not permitted here: "
             f"{r.stderr.decode().strip()}")


def serve_pid(ha):
    """The host PID of serve (the child of unshare), which is PID 1 inside its namespace."""
    unshare_pid = ha.proc.p.pid

    def child():
        with open(f"/proc/{unshare_pid}/task/{unshare_pid}/children") as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    return wait_until(child, 3, "serve's PID (unshare's child)")


def stop_serve(pid):
    """SIGKILL serve by its host PID (a stopped one too) if it is still there."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def ns_probe(pid, ha, *extra, env=None):
    """`healthagg probe` inside serve's PID and mount namespaces (so /proc/1 is serve)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    argv = ["nsenter", "-t", str(pid), "-p", "-m", harness.HEALTHAGG, "probe", "--url",
            f"http://127.0.0.1:{ha.port}/readyz"] + list(extra)
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, env=full_env, timeout=15)
    return CliResult(r.returncode, r.stdout.decode(), r.stderr.decode(), time.monotonic() - t0)


def probe_lines(ha, start=0):
    out = []
    for line in ha.proc.lines[start:]:
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("event") == "probe":
            out.append(o)
    return out


def sidecar(ctx, app):
    need_namespaces()
    ha = ctx.healthagg(serve_args(f"app={app.url}"), wrap=UNSHARE)
    expect_eq(ha.startup["pid"], 1, "serve's pid inside its namespace")
    pid = serve_pid(ha)
    ctx.on_cleanup(lambda: stop_serve(pid))
    # The health_check line is the last of the batch that follows the first pass.
    ha.wait_event(lambda o: o.get("event") == "health_check" and o.get("to") == "healthy", 3,
                  "health_check -> healthy")
    return ha, pid


@test
def mirror_failures_by_default(ctx):
    app = ctx.testapp()
    ha, pid = sidecar(ctx, app)
    mark = ha.mark()
    r = ns_probe(pid, ha)
    expect_eq((r.rc, r.out, r.err), (0, "healthy\n", ""), "healthy probe")
    app.set_mode("status:503")
    ha.wait_transition("app", "fail", 3, start=mark)
    r = ns_probe(pid, ha)
    expect_eq((r.rc, r.out, r.err), (1, "unhealthy: app: HTTP 503\n", ""), "unhealthy probe")
    line = ha.wait_event(lambda o: o.get("event") == "probe", 2, "the probe's mirrored line",
                         start=mark)
    expect_eq((line["level"], line["verdict"], line["reason"], line["exit_code"]),
              ("warn", "unhealthy", "app: HTTP 503", 1), "mirrored line")
    expect(line["url"].endswith("/readyz") and isinstance(line["pid"], int) and "time" in line,
           f"mirrored line fields: {line}")
    expect_eq(len(probe_lines(ha, mark)), 1, "mirrored lines: the healthy probe wrote none")


@test
def mirror_never_and_always(ctx):
    app = ctx.testapp()
    ha, pid = sidecar(ctx, app)
    mark = ha.mark()
    r = ns_probe(pid, ha, "--mirror", "always")
    expect_eq(r.rc, 0, "healthy probe")
    line = ha.wait_event(lambda o: o.get("event") == "probe", 2, "--mirror always: healthy line",
                         start=mark)
    expect_eq((line["level"], line["verdict"], line["reason"]), ("info", "healthy", "healthy"),
              "healthy mirrored line")
    app.set_mode("status:503")
    ha.wait_transition("app", "fail", 3, start=mark)
    mark2 = ha.mark()
    r = ns_probe(pid, ha, "--mirror", "never")
    expect_eq(r.rc, 1, "unhealthy probe with --mirror never")
    # A line we *do* expect, written after the one that must not exist: once it is there, the
    # others would have been too.
    r = ns_probe(pid, ha, "--mirror", "failures")
    ha.wait_event(lambda o: o.get("event") == "probe", 2, "the --mirror failures line",
                  start=mark2)
    expect_eq(len(probe_lines(ha, mark2)), 1, "lines written with --mirror never")
    r = ns_probe(pid, ha, "--mirror", "sometimes")
    expect_eq((r.rc, r.out.strip()),
              (1, 'unhealthy: probe --mirror: "sometimes" is not one of never, failures, always'),
              "bad --mirror")


@test
def wedged_sidecar_is_still_explained_in_the_log(ctx):
    app = ctx.testapp()
    ha, pid = sidecar(ctx, app)
    mark = ha.mark()
    os.kill(pid, signal.SIGSTOP)  # serve is wedged: it cannot log or answer
    r = ns_probe(pid, ha, "--timeout", "1s")
    expect_eq(r.rc, 1, f"probe against a stopped sidecar: {r}")
    expect(r.out.startswith(f"unhealthy: no answer from the sidecar at 127.0.0.1:{ha.port} "
                            "within 1000ms") and r.err == "", f"probe output: {r}")
    line = ha.wait_event(lambda o: o.get("event") == "probe", 2,
                         "the mirrored line while serve is stopped", start=mark)
    expect_eq(line["reason"], f"no answer from the sidecar at 127.0.0.1:{ha.port} within 1000ms",
              "mirrored reason")
    print("  container log while serve is stopped: " + json.dumps(line), flush=True)
    # Nothing else reached the log while serve was stopped.
    expect_eq([json.loads(l)["event"] for l in ha.proc.lines[mark:]], ["probe"],
              "log lines while serve is stopped")
    os.kill(pid, signal.SIGCONT)
    r = poll(lambda: ns_probe(pid, ha), lambda r: r.rc == 0, 5, "healthy again after SIGCONT")


@test
def mirror_when_pid1_is_an_init_process(ctx):
    # ECS initProcessEnabled / docker --init: PID 1 is an init whose stdout is the log stream.
    # Here PID 1 is bash, whose stdout is this test's pipe, and the probe's stdout is /dev/null.
    # (Not dash: it redirects in the parent around a vfork, so its own stdout would be the
    # probe's /dev/null while the probe runs.)
    need_namespaces()
    ha = ctx.healthagg(serve_args(f"app=http://127.0.0.1:{ctx.dead_port()}/"))
    script = (f"{harness.HEALTHAGG} probe --url http://127.0.0.1:{ha.port}/readyz >/dev/null; "
              "echo exit=$?")
    r = subprocess.run(UNSHARE + ["bash", "-c", script], capture_output=True, timeout=15,
                       )
    lines = r.stdout.decode().splitlines()
    expect(len(lines) == 2 and lines[1] == "exit=1", f"PID 1's stdout: {lines!r}")
    o = json.loads(lines[0])
    expect(o["event"] == "probe" and o["verdict"] == "unhealthy" and
           "app: " in o["reason"],
           f"mirrored line: {o}")
    expect_eq(r.stderr, b"", "stderr")


run(__name__)
