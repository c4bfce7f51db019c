#!/usr/bin/python3
"""deploy.docker_e2e: healthagg's exec-form health check under a real Docker engine.

The test starts its own Debian `docker.io` engine (dockerd 20.10) with everything under one
temporary directory D in the build tree - data-root, exec-root, pidfile, socket, an empty
daemon.json, the client's config - and no host networking changes (--iptables=false
--ip-forward=false --ip-masq=false --bridge=none). Containers get a cgroup parent of their own.
No registry is contacted: both images are built `FROM scratch` from host-built static binaries
(DOCKER_BUILDKIT=0, the legacy builder):

  app        the static test app, alone: no shell, no libc - like a `ko` image
  healthagg  deploy/Dockerfile.prebuilt on a context holding only build-static/healthagg

Then, as in an ECS awsvpc task (one network namespace, shared localhost):

  1. images: `docker images` sizes; each image's only file is its binary (`docker save`);
     healthagg's HEALTHCHECK is the exec form ["CMD","/healthagg","probe"], USER 65532:65532;
  2. `docker run` app (--network none: a private namespace with loopback only) and healthagg
     (--network container:app, --read-only) with the image's HEALTHCHECK and shorter timings
     (--health-interval/--health-timeout/--health-retries/--health-start-period keep the image's
     exec-form command); Health.Status must go `starting` -> `healthy`;
  3. `docker exec app /bin/sh` must fail: there is no shell in the app image;
  4. the app is switched to `status:503` through its control port, with `healthagg check` run in
     the shared namespace (`docker exec healthagg /healthagg check URL`: the shell-less curl);
     Health.Status must turn `unhealthy` within healthagg's detection time plus Docker's
     interval x retries + timeout (plus a margin), and Docker's own part must stay within
     interval x retries + timeout; then back to `ok` -> `healthy`;
  5. docker-compose (Debian's 1.29, DOCKER_HOST = the private socket) on a compose file generated
     from deploy/compose.yaml (same services, same dependencies, same exec-form healthcheck;
     local images, shorter timings): the service gated on `condition: service_healthy` starts
     only after healthagg's first passing health check; and with an app that never gets healthy,
     `docker-compose up` fails and the gated service never starts.

It prints the measured transition times. At the end - pass, failure, exception or SIGTERM/SIGINT -
it removes its containers, stops its daemon (and the daemon's containerd), kills anything left
in its cgroup, lazily unmounts whatever is still mounted under D (the engine leaves a netns bind
mount under D/exec/netns) and removes D and its cgroups. Leftovers of a run that was killed
(e.g. by a ctest timeout) are swept at the next start. The test keeps its own time budget
(--budget) below ctest's TIMEOUT so the cleanup always runs.

If the engine cannot start (not root, no cgroups, no overlay support, ...), the test prints
`SKIPPED: docker engine could not start: <the daemon's error>` and exits 77, which ctest reports
as skipped (SKIP_RETURN_CODE): never a silent pass. Missing tools are failures naming
tests/deploy/deps.sh.

Usage: docker_e2e_test.py --healthagg BIN --testapp BIN --dockerfile deploy/Dockerfile.prebuilt
                          --compose deploy/compose.yaml --workdir DIR [--budget SECONDS]
Needs /usr/bin/python3 with python3-yaml (Debian).
"""
import argparse
import copy
import datetime
import glob
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

SKIP = 77
SETUP_HINT = "run tests/deploy/deps.sh as root (installs docker.io, docker-compose, python3-yaml)"

# healthagg's own timings (HEALTHAGG_CONFIG "defaults") and Docker's health-check timings.
HA = {"interval": "500ms", "timeout": "400ms", "failure_threshold": 2, "success_threshold": 1,
      "start_period": "10s"}
HA_INTERVAL, HA_TIMEOUT, HA_FAILURES = 0.5, 0.4, 2
DK_INTERVAL, DK_TIMEOUT, DK_RETRIES, DK_START = 1, 1, 2, 10
MARGIN = 2.5  # exec start-up, polling, a loaded 2-core CI machine

APP_IMAGE = "healthagg-e2e/app:test"
HA_IMAGE = "healthagg-e2e/healthagg:test"
APP_DOCKERFILE = """\
# The test app alone, like a ko image: no shell, no libc, no curl.
FROM scratch
COPY testapp /testapp
USER 65532:65532
ENTRYPOINT ["/testapp"]
CMD ["--port", "8080"]
"""


class Failure(Exception):
    pass


class Skip(Exception):
    pass


class Budget(Exception):
    pass


T0 = time.monotonic()
deadline = None


def log(msg):
    print(f"docker_e2e [{time.monotonic() - T0:6.1f}s]: {msg}", flush=True)


def left(cap=None):
    """Seconds left in the budget (at most CAP); raises Budget when it is spent."""
    rest = deadline - time.monotonic()
    if rest <= 0:
        raise Budget("the test's time budget is spent")
    return rest if cap is None else min(rest, cap)


def parse_ts(s):
    """Docker's RFC 3339 timestamps (nanoseconds, Z) -> POSIX seconds (float)."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        raise Failure(f"cannot parse timestamp {s!r}")
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    tz = datetime.timezone.utc
    if m.group(3) != "Z":
        sign = 1 if m.group(3)[0] == "+" else -1
        hh, mm = m.group(3)[1:].split(":")
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(hh), minutes=int(mm)))
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return base.replace(tzinfo=tz).timestamp() + frac


def zero_time(s):
    return s.startswith("0001-01-01")


# --------------------------------------------------------------------------------------------
# The private engine
# --------------------------------------------------------------------------------------------
def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def kill_and_wait(pid, limit, what):
    """SIGTERM, then SIGKILL after LIMIT seconds. Only for processes this test started."""
    if not pid or not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:  # our child: reap it; otherwise just watch it go
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            if not pid_alive(pid):
                return
        time.sleep(0.1)
    log(f"{what} (pid {pid}) still running after {limit}s: SIGKILL")
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def cgroup_dirs(name):
    """Every cgroup directory named NAME at the top of a hierarchy (v1 controllers, v2)."""
    dirs = set(glob.glob(f"/sys/fs/cgroup/*/{name}")) | set(glob.glob(f"/sys/fs/cgroup/{name}"))
    return sorted(d for d in dirs if os.path.isdir(d))


def mounts_under(path):
    """Mount points at or below PATH (deepest first), from /proc/self/mountinfo."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), mp)
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return sorted(set(found), key=len, reverse=True)


class Engine:
    """dockerd with everything under DIR. stop() undoes all of it and is safe to call twice."""

    def __init__(self, d, docker_bin, dockerd_bin):
        self.d = d
        self.docker_bin = docker_bin
        self.dockerd_bin = dockerd_bin
        self.sock = os.path.join(d, "sock")
        self.cgparent = f"healthagg-e2e-{os.getpid()}"
        self.proc = None
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("DOCKER_", "COMPOSE_"))}
        self.env.update(DOCKER_HOST=f"unix://{self.sock}", DOCKER_BUILDKIT="0",
                        DOCKER_CONFIG=os.path.join(d, "client"), COMPOSE_INTERACTIVE_NO_CLI="1")

    def start(self, limit=60):
        d = self.d
        os.makedirs(os.path.join(d, "client"), exist_ok=True)
        with open(os.path.join(d, "daemon.json"), "w") as f:
            f.write("{}\n")  # not /etc/docker/daemon.json: nothing of the machine's setup
        with open(os.path.join(d, "cgroup-parent"), "w") as f:
            f.write(self.cgparent + "\n")
        argv = [self.dockerd_bin, "--config-file", os.path.join(d, "daemon.json"),
                "--data-root", os.path.join(d, "data"), "--exec-root", os.path.join(d, "exec"),
                "--pidfile", os.path.join(d, "pid"), "-H", f"unix://{self.sock}",
                "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
                "--cgroup-parent", "/" + self.cgparent,
                # dockerd runs its own containerd under D/exec unless the machine runs one at
                # /run/containerd/containerd.sock; then namespaces of our own keep the two apart.
                "--containerd-namespace", "healthagg-e2e",
                "--containerd-plugins-namespace", "healthagg-e2e-plugins"]
        self.logf = open(os.path.join(d, "dockerd.log"), "w+")
        log("starting " + " ".join(argv))
        if os.path.exists("/run/containerd/containerd.sock"):
            log("the machine runs containerd: the engine will use it, in namespace healthagg-e2e")
        # Its own session: a Ctrl-C meant for ctest reaches this script, which stops the daemon.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        t = time.monotonic()
        last = ""
        while time.monotonic() - t < limit:
            left()
            if self.proc.poll() is not None:
                raise Skip(self.daemon_error(f"dockerd exited with status {self.proc.returncode}"))
            r = subprocess.run([self.docker_bin, "version", "--format", "{{.Server.Version}}"],
                               env=self.env, capture_output=True, text=True, timeout=left(20))
            if r.returncode == 0 and r.stdout.strip():
                log(f"engine {r.stdout.strip()} answering on {self.sock} after "
                    f"{time.monotonic() - t:.1f}s")
                return
            last = (r.stderr or r.stdout).strip()
            time.sleep(0.25)
        raise Skip(self.daemon_error(f"no answer on {self.sock} within {limit}s ({last})"))

    def daemon_error(self, fallback):
        """The daemon's own reason: its last fatal/error line, else its last line."""
        try:
            self.logf.flush()
            with open(os.path.join(self.d, "dockerd.log")) as f:
                lines = [line.rstrip() for line in f if line.strip()]
        except OSError:
            lines = []
        bad = [line for line in lines
               if re.search(r"level=(fatal|error)|failed to start|needs to be started", line)]
        pick = bad[-1] if bad else (lines[-1] if lines else "")
        m = re.search(r'msg="((?:[^"\\]|\\.)*)"', pick)
        reason = m.group(1).replace('\\"', '"') if m else pick
        err = re.search(r'error="((?:[^"\\]|\\.)*)"', pick)
        if err:
            reason += ": " + err.group(1).replace('\\"', '"')
        return reason or fallback

    def docker(self, *args, check=True, timeout=60, input=None):
        r = subprocess.run([self.docker_bin, *args], env=self.env, capture_output=True,
                           text=input is None or isinstance(input, str), input=input,
                           timeout=left(timeout))
        if check and r.returncode != 0:
            raise Failure(f"docker {' '.join(args)}: exit {r.returncode}: "
                          f"{(r.stderr or r.stdout).strip()}")
        return r

    def inspect(self, name):
        return json.loads(self.docker("inspect", name).stdout)[0]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        d = self.d
        if self.alive():
            try:
                r = subprocess.run([self.docker_bin, "ps", "-aq"], env=self.env,
                                   capture_output=True, text=True, timeout=20)
                ids = r.stdout.split()
                if ids:
                    subprocess.run([self.docker_bin, "rm", "-f", *ids], env=self.env,
                                   capture_output=True, timeout=60)
            except subprocess.TimeoutExpired:
                log("removing containers timed out; stopping the daemon anyway")
            kill_and_wait(self.proc.pid, 30, "dockerd")
        elif self.proc is None:  # a leftover directory: its daemon, if still running
            pid = read_pid(os.path.join(d, "pid"))
            if pid and d in proc_cmdline(pid):
                kill_and_wait(pid, 30, "leftover dockerd")
        sweep(d, self.cgparent)
        if getattr(self, "logf", None):
            self.logf.close()


def sweep(d, cgparent):
    """Whatever a stopped (or killed) engine under D left: processes, mounts, files, cgroups."""
    # The engine's containerd (it exits with dockerd, unless dockerd was killed).
    for pidfile in glob.glob(os.path.join(d, "exec", "containerd", "*.pid")):
        pid = read_pid(pidfile)
        if pid and d in proc_cmdline(pid):
            kill_and_wait(pid, 10, "containerd")
    # Container processes still in our cgroup, then shims naming our containerd socket.
    if cgparent:
        for cg in cgroup_dirs(cgparent):
            for procs in glob.glob(os.path.join(cg, "**", "cgroup.procs"), recursive=True):
                try:
                    pids = [int(p) for p in open(procs).read().split()]
                except OSError:
                    continue
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and d + "/" in proc_cmdline(entry):
            kill_and_wait(int(entry), 5, f"leftover process {proc_cmdline(entry)[:80]}")
    for mp in mounts_under(d):
        subprocess.run(["umount", "-l", mp], capture_output=True)
    left_mounts = mounts_under(d)
    if left_mounts:
        log(f"could not unmount {left_mounts}")
    shutil.rmtree(d, ignore_errors=True)
    if os.path.exists(d):
        log(f"could not remove {d} entirely")
    if cgparent:
        for cg in cgroup_dirs(cgparent):
            for sub, _, _ in sorted(os.walk(cg), key=lambda w: len(w[0]), reverse=True):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass


def sweep_leftovers(workdir):
    """Directories of earlier runs that were killed before their cleanup (owner gone)."""
    for d in glob.glob(os.path.join(workdir, "docker-e2e.*")):
        owner = read_pid(os.path.join(d, "owner"))
        if owner and pid_alive(owner) and "docker_e2e" in proc_cmdline(owner):
            continue
        cg = ""
        try:
            cg = open(os.path.join(d, "cgroup-parent")).read().strip()
        except OSError:
            pass
        log(f"removing the leftovers of an earlier run: {d}")
        e = Engine(d, None, None)
        e.cgparent = cg
        e.stop()


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------
def build_images(eng, args):
    d = eng.d
    for name, binary, dockerfile, tag in (
            ("app", args.testapp, None, APP_IMAGE),
            ("healthagg", args.healthagg, args.dockerfile, HA_IMAGE)):
        ctx = os.path.join(d, "ctx-" + name)
        os.makedirs(ctx)
        dst = os.path.join(ctx, "testapp" if name == "app" else "healthagg")
        shutil.copyfile(binary, dst)
        os.chmod(dst, 0o755)
        build = ["build", "--no-cache", "-q", "-t", tag]
        if dockerfile is None:
            with open(os.path.join(d, "Dockerfile.app"), "w") as f:
                f.write(APP_DOCKERFILE)
            build += ["-f", os.path.join(d, "Dockerfile.app")]
        else:
            build += ["-f", dockerfile]
        t = time.monotonic()
        eng.docker(*build, ctx, timeout=120)
        log(f"built {tag} FROM scratch in {time.monotonic() - t:.1f}s (legacy builder, no pulls)")

    sizes = {}
    for line in eng.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}").stdout.split("\n"):
        if line.strip():
            ref, size = line.split()
            sizes[ref] = size
    for tag in (APP_IMAGE, HA_IMAGE):
        if tag not in sizes:
            raise Failure(f"`docker images` does not list {tag}: {sizes}")
    log(f"FIGURE docker images: {HA_IMAGE} {sizes[HA_IMAGE]}, {APP_IMAGE} {sizes[APP_IMAGE]}")

    # Each image holds exactly its binary: list every layer of `docker save`.
    for tag, want in ((APP_IMAGE, ["testapp"]), (HA_IMAGE, ["healthagg"])):
        raw = eng.docker("save", tag, input=b"", timeout=60).stdout
        files = []
        with tarfile.open(fileobj=io.BytesIO(raw)) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))
            for layer_path in manifest[0]["Layers"]:
                with tarfile.open(fileobj=outer.extractfile(layer_path)) as layer:
                    files += [x.name for x in layer.getmembers()]
        if sorted(files) != want:
            raise Failure(f"{tag} should hold only {want}, holds {sorted(files)}")
    cfg = eng.inspect(HA_IMAGE)["Config"]
    want = {"User": "65532:65532", "Entrypoint": ["/healthagg"], "Cmd": ["serve"]}
    got = {k: cfg.get(k) for k in want}
    if got != want:
        raise Failure(f"{HA_IMAGE} config {got}, expected {want}")
    hc = (cfg.get("Healthcheck") or {}).get("Test")
    if hc != ["CMD", "/healthagg", "probe"]:
        raise Failure(f"{HA_IMAGE} HEALTHCHECK is {hc}, expected the exec form "
                      "['CMD', '/healthagg', 'probe']")
    log("images hold only their binary; healthagg: USER 65532:65532, ENTRYPOINT ['/healthagg'], "
        "HEALTHCHECK ['CMD', '/healthagg', 'probe']")
    return sizes


def wait_health(eng, name, want, limit, seen):
    """Poll Health.Status every 0.1 s until WANT; appends each new status to SEEN."""
    t = time.monotonic()
    while True:
        st = eng.inspect(name)
        status = ((st.get("State") or {}).get("Health") or {}).get("Status")
        if not seen or seen[-1][0] != status:
            seen.append((status, time.time()))
        if status == want:
            return st
        if not st["State"].get("Running"):
            raise Failure(f"{name} stopped (exit {st['State'].get('ExitCode')}) while waiting "
                          f"for {want}; statuses {[s for s, _ in seen]}")
        if time.monotonic() - t > limit:
            raise Failure(f"{name} not {want} within {limit}s; statuses {[s for s, _ in seen]}; "
                          f"last health log {st['State']['Health'].get('Log')}")
        left()
        time.sleep(0.1)


def ha_log(eng, name):
    """healthagg's JSON log lines from `docker logs`."""
    out = eng.docker("logs", name).stdout
    lines = []
    for line in out.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return lines


def ha_config(base):
    """HEALTHAGG_CONFIG of compose.yaml with the test's shorter timings."""
    cfg = json.loads(base)
    cfg["defaults"] = dict(cfg.get("defaults", {}), **HA)
    return json.dumps(cfg, separators=(",", ":"))


def run_pair(eng, app_port, config):
    """docker run: app, then healthagg in its namespace; starting -> healthy -> unhealthy -> healthy."""
    eng.docker("run", "-d", "--name", "app", "--network", "none", APP_IMAGE,
               "--port", str(app_port))
    control = None
    t = time.monotonic()
    while control is None:
        m = re.search(r"^PORTS (\d+) (\d+)$", eng.docker("logs", "app").stdout, re.M)
        if m:
            control = int(m.group(2))
        elif time.monotonic() - t > 15:
            raise Failure("the app container printed no PORTS line")
        else:
            time.sleep(0.1)
    log(f"app running (--network none: its own namespace, loopback only): service port "
        f"{app_port}, control port {control}; no shell, no health check of its own")

    t_run = time.time()
    eng.docker("run", "-d", "--name", "healthagg", "--network", "container:app", "--read-only",
               "-e", f"HEALTHAGG_CONFIG={config}",
               "--health-interval", f"{DK_INTERVAL}s", "--health-timeout", f"{DK_TIMEOUT}s",
               "--health-retries", str(DK_RETRIES), "--health-start-period", f"{DK_START}s",
               HA_IMAGE)
    seen = []
    st = wait_health(eng, "healthagg", "healthy", DK_START + 10, seen)
    statuses = [s for s, _ in seen]
    if statuses[0] != "starting" or statuses[-1] != "healthy" or "unhealthy" in statuses:
        raise Failure(f"Health.Status went {statuses}, expected starting -> healthy")
    hc = st["Config"].get("Healthcheck") or {}
    want_hc = {"Test": ["CMD", "/healthagg", "probe"], "Interval": DK_INTERVAL * 10**9,
               "Timeout": DK_TIMEOUT * 10**9, "Retries": DK_RETRIES,
               "StartPeriod": DK_START * 10**9}
    if {k: hc.get(k) for k in want_hc} != want_hc:
        raise Failure(f"the container's health check is {hc}, expected {want_hc}")
    started = parse_ts(st["State"]["StartedAt"])
    first_ok = min(parse_ts(e["End"]) for e in st["State"]["Health"]["Log"] if e["ExitCode"] == 0)
    outs = {e["Output"] for e in st["State"]["Health"]["Log"] if e["ExitCode"] == 0}
    if outs != {"healthy\n"}:
        raise Failure(f"passing health checks printed {outs}, expected 'healthy'")
    healthy = {"docker": first_ok - started, "observed": seen[-1][1] - t_run}
    log(f"Health.Status {' -> '.join(statuses)}; exec form kept: {hc['Test']}, interval "
        f"{DK_INTERVAL}s timeout {DK_TIMEOUT}s retries {DK_RETRIES} start period {DK_START}s")
    log(f"FIGURE starting -> healthy: {healthy['docker']:.2f}s from container start to the first "
        f"passing `probe` (Docker's timestamps; polled from `docker run`: "
        f"{healthy['observed']:.2f}s). Docker runs the first check one interval "
        f"({DK_INTERVAL}s) after start")

    # No shell in the app image.
    r = eng.docker("exec", "app", "/bin/sh", "-c", "true", check=False)
    err = (r.stderr + r.stdout).strip()
    if r.returncode == 0 or not re.search(r"no such file|not found", err):
        raise Failure(f"`docker exec app /bin/sh` should fail for lack of a shell: exit "
                      f"{r.returncode}, {err!r}")
    log(f"`docker exec app /bin/sh`: exit {r.returncode}: {err.splitlines()[-1][:160]}")

    # The app fails: switched through its control port from inside the shared namespace.
    url = f"http://127.0.0.1:{control}/mode/status:503"
    t_fail = time.time()
    r = eng.docker("exec", "healthagg", "/healthagg", "check", url)
    log(f"app switched to status:503 via `docker exec healthagg /healthagg check {url}`: "
        f"{r.stdout.strip()}")
    seen = []
    ha_bound = HA_FAILURES * HA_INTERVAL + HA_TIMEOUT + 0.1 * HA_INTERVAL  # + scheduler jitter
    dk_bound = DK_INTERVAL * DK_RETRIES + DK_TIMEOUT
    st = wait_health(eng, "healthagg", "unhealthy", ha_bound + dk_bound + MARGIN + 20, seen)
    t_unhealthy = seen[-1][1]
    logs = st["State"]["Health"]["Log"]
    fails = [e for e in logs if e["ExitCode"] != 0]
    if not fails or any(e["ExitCode"] != 1 for e in fails):
        raise Failure(f"failing health checks must exit 1 (never 2): {logs}")
    if not all(e["Output"].startswith("unhealthy: ") and "HTTP 503" in e["Output"] for e in fails):
        raise Failure(f"failing health checks should say why (HTTP 503): {fails}")
    # The check that made it unhealthy: the DK_RETRIES-th failure after the last success.
    streak = []
    for e in logs:
        streak = streak + [e] if e["ExitCode"] != 0 else []
        if len(streak) == DK_RETRIES:
            break
    d_unhealthy = parse_ts(streak[-1]["End"]) if len(streak) == DK_RETRIES else t_unhealthy
    ha_fail = [e for e in ha_log(eng, "healthagg")
               if e.get("event") == "aggregate" and e.get("to") == "fail"]
    if not ha_fail:
        raise Failure("healthagg logged no aggregate transition to fail")
    t_ha = parse_ts(ha_fail[-1]["time"])
    total = d_unhealthy - t_fail
    ha_part, dk_part = t_ha - t_fail, d_unhealthy - t_ha
    log(f"FIGURE healthy -> unhealthy: {total:.2f}s from the app failing to Docker's unhealthy "
        f"verdict (polled: {t_unhealthy - t_fail:.2f}s): healthagg's /readyz turned 503 after "
        f"{ha_part:.2f}s (bound {ha_bound:.2f}s = {HA_FAILURES} x {HA_INTERVAL}s + "
        f"{HA_TIMEOUT}s), Docker's checks took {dk_part:.2f}s more (bound interval x retries + "
        f"timeout = {dk_bound}s); reason {fails[-1]['Output'].strip()!r}")
    if dk_part > dk_bound + 1.0:
        raise Failure(f"Docker's part took {dk_part:.2f}s, over interval x retries + timeout "
                      f"({dk_bound}s) + 1s")
    if total > ha_bound + dk_bound + MARGIN:
        raise Failure(f"unhealthy after {total:.2f}s, over {ha_bound + dk_bound + MARGIN:.2f}s")

    # Back to ok: healthy again (success_threshold 1, one passing check).
    t_ok = time.time()
    eng.docker("exec", "healthagg", "/healthagg", "check",
               f"http://127.0.0.1:{control}/mode/ok")
    seen = []
    st = wait_health(eng, "healthagg", "healthy", 20, seen)
    ok_entries = [parse_ts(e["End"]) for e in st["State"]["Health"]["Log"]
                  if e["ExitCode"] == 0 and parse_ts(e["End"]) >= t_ok]
    back = (min(ok_entries) if ok_entries else seen[-1][1]) - t_ok
    log(f"FIGURE unhealthy -> healthy: {back:.2f}s after the app answers again")

    # probe --mirror (default failures): Docker's failing health checks wrote their verdicts into
    # the container's log stream (PID 1's stdout), beside serve's own lines.
    mirrored = [e for e in ha_log(eng, "healthagg") if e.get("event") == "probe"]
    if not mirrored or not all(e.get("verdict") == "unhealthy" and "HTTP 503" in e.get("reason", "")
                               for e in mirrored):
        raise Failure(f"`docker logs healthagg` lacks the failing probes' lines: {mirrored}")
    log(f"docker logs: {len(mirrored)} mirrored probe line(s) while the app failed, e.g. "
        f"{json.dumps(mirrored[-1])}")
    # The wedged sidecar: serve, the container's PID 1, stopped from the host. It cannot log or
    # answer; the health check itself (here run as ECS would, with docker exec) says why in the
    # container's log.
    pid1 = int(eng.docker("inspect", "-f", "{{.State.Pid}}", "healthagg").stdout.strip())
    os.kill(pid1, signal.SIGSTOP)
    try:
        r = eng.docker("exec", "healthagg", "/healthagg", "probe", "--timeout", "500ms",
                       check=False)
        if r.returncode != 1 or "no answer from the sidecar" not in r.stdout or r.stderr.strip():
            raise Failure(f"probe against the stopped sidecar: exit {r.returncode}, "
                          f"{r.stdout!r} {r.stderr!r}")
        wedged = [e for e in ha_log(eng, "healthagg") if e.get("event") == "probe" and
                  "no answer from the sidecar" in e.get("reason", "")]
        if not wedged:
            raise Failure("`docker logs healthagg` has no probe line while serve was stopped")
        log(f"wedged sidecar (SIGSTOP of the container's PID 1 {pid1}): `docker logs` shows "
            f"{json.dumps(wedged[-1])}")
    finally:
        os.kill(pid1, signal.SIGCONT)
    eng.docker("rm", "-f", "healthagg", "app")
    return {"healthy": healthy["docker"], "unhealthy": total, "unhealthy_healthagg": ha_part,
            "unhealthy_docker": dk_part, "recovered": back}


def compose_file(src_path, app_failing=False, start_period=DK_START):
    """deploy/compose.yaml with local images, no build/ports, shorter timings."""
    import yaml  # Debian's python3-yaml (checked in main)
    with open(src_path) as f:
        src = yaml.safe_load(f)
    services = src["services"]
    ha_name = next((n for n, s in services.items()
                    if ((s.get("healthcheck") or {}).get("test") or [None])[0] == "CMD"
                    and "/healthagg" in s["healthcheck"]["test"]), None)
    if not ha_name:
        raise Failure(f"{src_path}: no service with an exec-form /healthagg healthcheck")
    ha = services[ha_name]
    m = re.fullmatch(r"service:(.+)", ha.get("network_mode", ""))
    if not m or m.group(1) not in services:
        raise Failure(f"{src_path}: {ha_name} does not share a service's network namespace")
    app_name = m.group(1)
    gated = [n for n, s in services.items()
             if isinstance(s.get("depends_on"), dict)
             and (s["depends_on"].get(ha_name) or {}).get("condition") == "service_healthy"]
    if not gated:
        raise Failure(f"{src_path}: nothing waits for {ha_name} with condition: service_healthy")
    env = ha.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    config = ha_config(env["HEALTHAGG_CONFIG"])
    app_url = json.loads(config)["checks"][0]["url"]
    app_port = int(re.match(r"\w+://127\.0\.0\.1:(\d+)", app_url).group(1))

    out = copy.deepcopy(src)
    svc = out["services"]
    app = svc[app_name]
    for k in ("build", "ports", "networks"):
        app.pop(k, None)
    app["image"] = APP_IMAGE
    app["network_mode"] = "none"  # a private namespace, loopback only (no bridge on this engine)
    app["command"] = ["--port", str(app_port)] + (["--mode", "status:503"] if app_failing else [])
    h = svc[ha_name]
    h.pop("build", None)
    h["image"] = HA_IMAGE
    h["environment"] = dict(env, HEALTHAGG_CONFIG=config)
    h["healthcheck"].update(interval=f"{DK_INTERVAL}s", timeout=f"{DK_TIMEOUT}s",
                            retries=DK_RETRIES, start_period=f"{start_period}s")
    for n in gated:
        image = svc[n].get("image", "")
        if "HEALTHAGG_IMAGE" not in image and not image.startswith("healthagg"):
            raise Failure(f"{src_path}: {n} uses {image}, which this offline test cannot run; "
                          "it can run only the healthagg and app images")
        svc[n].pop("build", None)
        svc[n]["image"] = HA_IMAGE
    return out, ha_name, app_name, gated, config, app_port


def compose_containers(eng, project):
    r = eng.docker("ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
                   "--format", "{{.Names}}")
    out = {}
    for name in r.stdout.split():
        st = eng.inspect(name)
        out[st["Config"]["Labels"]["com.docker.compose.service"]] = st
    return out


def run_compose(eng, args, compose_bin):
    import yaml
    results = {}
    for case in ("ok", "failing"):
        doc, ha_name, app_name, gated, _, _ = compose_file(
            args.compose, app_failing=case == "failing",
            start_period=DK_START if case == "ok" else 2)
        path = os.path.join(eng.d, f"compose-{case}.yaml")
        with open(path, "w") as f:
            f.write(f"# generated by docker_e2e_test.py from {args.compose}\n")
            yaml.safe_dump(doc, f, sort_keys=False)
        project = f"hae2e{case}"
        cmd = [compose_bin, "-p", project, "-f", path]
        r = subprocess.run(cmd + ["config", "-q"], env=eng.env, capture_output=True, text=True,
                           timeout=left(60))
        if r.returncode != 0:
            raise Failure(f"docker-compose config of the generated file: {r.stderr.strip()}")
        t = time.time()
        r = subprocess.run(cmd + ["up", "-d"], env=eng.env, capture_output=True, text=True,
                           timeout=left(120))
        took = time.time() - t
        out = (r.stdout + r.stderr).strip()
        cs = compose_containers(eng, project)
        try:
            if case == "ok":
                if r.returncode != 0:
                    raise Failure(f"docker-compose up -d: exit {r.returncode}: {out}")
                ha = cs[ha_name]
                oks = [parse_ts(e["End"]) for e in ha["State"]["Health"]["Log"]
                       if e["ExitCode"] == 0]
                if not oks:
                    raise Failure(f"compose: {ha_name} has no passing health check yet: "
                                  f"{ha['State']['Health']}")
                first_ok = min(oks)
                ha_started = parse_ts(ha["State"]["StartedAt"])
                for n in gated:
                    g = cs.get(n)
                    if g is None or zero_time(g["State"]["StartedAt"]):
                        raise Failure(f"compose: {n} did not start: {out}")
                    g_started = parse_ts(g["State"]["StartedAt"])
                    if g_started < first_ok:
                        raise Failure(f"compose: {n} started at {g['State']['StartedAt']}, "
                                      f"before {ha_name}'s first passing check")
                    # It is a one-shot `healthagg check` of the app: it must pass.
                    gname = g["Name"].lstrip("/")
                    rc = eng.docker("wait", gname, timeout=30).stdout.strip()
                    glog = eng.docker("logs", gname).stdout.strip()
                    if rc != "0":
                        raise Failure(f"compose: {n} exited {rc}: {glog}")
                    log(f"compose: {n} (depends_on {ha_name}: service_healthy) started "
                        f"{g_started - first_ok:.2f}s after {ha_name}'s first passing check, "
                        f"{g_started - ha_started:.2f}s after {ha_name} started; exit 0: {glog}")
                results["compose_healthy"] = first_ok - ha_started
                results["compose_up"] = took
                log(f"FIGURE compose: {ha_name} starting -> healthy {first_ok - ha_started:.2f}s; "
                    f"`docker-compose up -d` {took:.1f}s")
            else:
                if r.returncode == 0:
                    raise Failure(f"compose with a failing app: `up -d` succeeded: {out}")
                if "unhealthy" not in out:
                    raise Failure(f"compose with a failing app: `up -d` failed without saying "
                                  f"unhealthy: {out}")
                status = cs[ha_name]["State"]["Health"]["Status"]
                for n in gated:
                    g = cs.get(n)
                    if g is not None and not zero_time(g["State"]["StartedAt"]):
                        raise Failure(f"compose: {n} started although {ha_name} is {status}")
                why = next(line for line in out.splitlines() if "unhealthy" in line)
                log(f"compose with a failing app: `up -d` exit {r.returncode} after {took:.1f}s "
                    f"({why.strip()[:120]!r}); {ha_name} {status}; "
                    f"{', '.join(gated)} never started")
        finally:
            try:  # not bound by the budget: cleanup (the engine's stop removes anything left)
                subprocess.run(cmd + ["down", "-t", "2"], env=eng.env, capture_output=True,
                               timeout=60)
            except subprocess.TimeoutExpired:
                log(f"`docker-compose -p {project} down` timed out")
    return results


def main():
    global deadline
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--healthagg", required=True)
    ap.add_argument("--testapp", required=True)
    ap.add_argument("--dockerfile", required=True)
    ap.add_argument("--compose", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--budget", type=float, default=480)
    args = ap.parse_args()
    deadline = T0 + args.budget

    for path in (args.healthagg, args.testapp):
        if not os.access(path, os.X_OK):
            raise Failure(f"{path} not found (deploy/build-static.sh --testapp builds it; the "
                          "fixture test deploy.static_build runs that)")
    tools = {}
    for name, prefer in (("dockerd", "/usr/sbin/dockerd"), ("docker", "/usr/bin/docker"),
                         ("docker-compose", "/usr/bin/docker-compose"), ("umount", None)):
        # Debian's client first: another `docker` earlier in PATH may not match the engine.
        tools[name] = prefer if prefer and os.access(prefer, os.X_OK) else shutil.which(name)
        if not tools[name]:
            raise Failure(f"{name} not found: {SETUP_HINT}")
    try:
        import yaml  # noqa: F401
    except ImportError:
        raise Failure(f"python3-yaml is missing for {sys.executable}: {SETUP_HINT}")

    os.makedirs(args.workdir, exist_ok=True)
    workdir = os.path.realpath(args.workdir)
    sweep_leftovers(workdir)
    # Unix socket paths are limited to 107 bytes, and containerd's sockets live in
    # D/exec/containerd/ (D = WORKDIR/docker-e2e.XXXXXXXX): a long WORKDIR moves D to /tmp.
    if len(workdir) + len("/docker-e2e.XXXXXXXX/exec/containerd/containerd-debug.sock.ttrpc") > 107:
        log(f"{workdir} is too long for the engine's unix sockets: using /tmp instead")
        workdir = "/tmp"
        sweep_leftovers(workdir)
    d = tempfile.mkdtemp(prefix="docker-e2e.", dir=workdir)
    os.chmod(d, 0o711)
    with open(os.path.join(d, "owner"), "w") as f:
        f.write(f"{os.getpid()}\n")
    eng = Engine(d, tools["docker"], tools["dockerd"])

    def on_signal(signum, frame):
        raise Failure(f"interrupted by signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    ok = False
    try:
        try:
            eng.start()
        except Skip as e:
            print(f"SKIPPED: docker engine could not start: {e}", flush=True)
            return SKIP
        sizes = build_images(eng, args)
        # The same HEALTHAGG_CONFIG as deploy/compose.yaml, with the test's shorter timings.
        config, app_port = compose_file(args.compose)[4:]
        figures = run_pair(eng, app_port, config)
        figures.update(run_compose(eng, args, tools["docker-compose"]))
        ok = True
        print(f"PASSED: static binary {os.path.getsize(args.healthagg)} bytes; docker images "
              f"{HA_IMAGE} {sizes[HA_IMAGE]}, {APP_IMAGE} {sizes[APP_IMAGE]}; starting -> healthy "
              f"{figures['healthy']:.2f}s; healthy -> unhealthy {figures['unhealthy']:.2f}s "
              f"(healthagg {figures['unhealthy_healthagg']:.2f}s + Docker "
              f"{figures['unhealthy_docker']:.2f}s); unhealthy -> healthy "
              f"{figures['recovered']:.2f}s; compose healthy {figures['compose_healthy']:.2f}s; "
              f"total {time.monotonic() - T0:.1f}s", flush=True)
        return 0
    finally:
        if not ok and eng.alive():
            try:
                for name in ("healthagg", "app"):
                    r = subprocess.run([tools["docker"], "logs", name], env=eng.env,
                                       capture_output=True, text=True, timeout=20)
                    if r.returncode == 0:
                        print(f"--- docker logs {name}\n{(r.stdout + r.stderr)[-3000:]}",
                              flush=True)
                with open(os.path.join(d, "dockerd.log")) as f:
                    tail = f.readlines()[-25:]
                print("--- dockerd.log (last lines)\n" + "".join(tail), flush=True)
            except (OSError, subprocess.TimeoutExpired):
                pass
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        t = time.monotonic()
        eng.stop()
        log(f"engine stopped, {d} removed ({time.monotonic() - t:.1f}s); mounts left under it: "
            f"{mounts_under(d) or 'none'}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Failure, Budget, subprocess.TimeoutExpired) as e:
        print(f"FAILED: {e}", flush=True)
        sys.exit(1)
