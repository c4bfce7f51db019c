#!/usr/bin/python3
"""lint.skopeo and lint.docker_save: `healthagg lint --image` on images that real tools wrote.

--mode skopeo: `skopeo copy` (Debian's skopeo, offline: docker-archive -> oci / oci-archive,
  nothing is pulled) turns make_images.py's docker-save tarballs into OCI layouts the way
  `skopeo copy ... oci:` does for users; lint must read both and find the same things.
--mode docker: a private Docker engine (started as deploy.docker_e2e starts it, reusing its
  Engine class: everything under one temporary directory, no host networking changes) builds
  images FROM scratch with the legacy builder, no pulls:
    lint-ko        the static test app alone under /ko-app (like a ko image): no shell
    lint-busybox   busybox-static with `busybox --install -s /bin` run by the engine (absolute
                   symlinks /bin/sh -> /bin/busybox), then `rm /bin/wget` in a later layer (a
                   whiteout written by the engine's own layer diff)
    lint-noshell   FROM lint-busybox, `rm /bin/sh` (another real whiteout)
    healthagg      deploy/Dockerfile.prebuilt on the static healthagg
  and `docker save` writes each; lint reads them (and skopeo's OCI copies of them). When the
  engine cannot start here, it prints `SKIPPED: ...` and exits 77 (ctest: skipped).

Missing tools are failures naming tests/deploy/deps.sh (which installs skopeo, docker.io and
busybox-static).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "deploy"))
import make_images as mi  # noqa: E402

SKIP = 77
HINT = "run tests/deploy/deps.sh as root (installs skopeo, docker.io and busybox-static)"
A = None


class Failure(Exception):
    pass


def log(msg):
    print(f"lint.real_images: {msg}", flush=True)


def taskdef(d, name, command, image="registry.example/app:1"):
    c = {"name": name, "image": image, "essential": True}
    if command:
        c["healthCheck"] = {"command": command}
    td = {"family": "t", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
          "containerDefinitions": [c]}
    path = os.path.join(d, f"td-{name}-{abs(hash(json.dumps(command)))}.json")
    with open(path, "w") as f:
        json.dump(td, f)
    return path


def lint(image, td, name="app", strict=False):
    args = [A.healthagg, "lint", "--format", "json"] + (["--strict"] if strict else []) + \
        ["--image", f"{name}={image}", td]
    r = subprocess.run(args, capture_output=True, timeout=120)
    out, err = r.stdout.decode(), r.stderr.decode()
    if r.returncode == 2 or not out:
        raise Failure(f"lint {image}: exit {r.returncode}: {err.strip()}")
    return r.returncode, json.loads(out), err


def expect(image, td, rule, words=(), name="app", kind=None):
    rc, findings, err = lint(image, td, name)
    rules = [f["rule"] for f in findings]
    if rule is None:
        if findings or rc != 0:
            raise Failure(f"{image}: expected no finding, got exit {rc}: {findings}")
    else:
        mine = [f for f in findings if f["rule"] == rule]
        if not mine:
            raise Failure(f"{image}: expected {rule}, got {rules} ({err.strip()})")
        for w in words:
            if w not in mine[0]["message"]:
                raise Failure(f"{image}: {rule} message lacks {w!r}: {mine[0]['message']!r}")
    if kind and kind not in err:
        raise Failure(f"{image}: stderr should describe it as {kind!r}: {err!r}")
    log(f"ok: {os.path.basename(image)}: {rule or 'clean'}")


def skopeo(src, dst):
    r = subprocess.run([A.skopeo, "--insecure-policy", "copy", "--quiet", src, dst],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise Failure(f"skopeo copy {src} {dst}: exit {r.returncode}: {r.stderr.strip()}")


def both_oci(d, docker_tar, base):
    """skopeo's OCI directory and OCI archive of a docker-save tarball."""
    oci_dir, oci_tar = os.path.join(d, base + ".oci"), os.path.join(d, base + ".oci.tar")
    skopeo(f"docker-archive:{docker_tar}", f"oci:{oci_dir}:latest")
    skopeo(f"docker-archive:{docker_tar}", f"oci-archive:{oci_tar}:latest")
    return oci_dir, oci_tar


def mode_skopeo(d):
    sh = taskdef(d, "app", ["CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"])
    mi.docker_save(os.path.join(d, "ko.tar"), mi.ko_like())
    mi.docker_save(os.path.join(d, "bb.tar"), mi.busybox_like())
    wh = mi.Image([[("dir", "bin", 0o755), ("file", "bin/dash", 0o755),
                    ("symlink", "bin/sh", "dash"), ("file", "bin/curl", 0o755)],
                   [("whiteout", "bin/sh")]])
    mi.docker_save(os.path.join(d, "wh.tar"), wh)
    for base in ("ko", "bb", "wh"):
        for img in both_oci(d, os.path.join(d, base + ".tar"), base):
            kind = "OCI image layout directory" if img.endswith(".oci") else "OCI image layout tar"
            if base == "ko":
                expect(img, sh, "image-no-shell", ["/bin/sh does not exist"], kind=kind)
            elif base == "bb":
                expect(img, sh, "image-shell-command-missing", ['"curl"'], kind=kind)
                expect(img, taskdef(d, "app", ["CMD-SHELL", "wget -q -O- http://127.0.0.1/"]),
                       None)
            else:
                expect(img, sh, "image-no-shell", ["/bin/sh does not exist"], kind=kind)
    print("PASSED: skopeo-written OCI layouts (directory and archive) of docker-save, busybox-like "
          "and whiteout images read as their sources", flush=True)
    return 0


def sweep_leftovers(de, workdir):
    """Engine directories of earlier runs of this test that were killed before their cleanup."""
    import glob
    for ed in glob.glob(os.path.join(workdir, "docker-lint.*")):
        owner = de.read_pid(os.path.join(ed, "owner"))
        if owner and de.pid_alive(owner) and "test_real_images" in de.proc_cmdline(owner):
            continue
        log(f"removing the leftovers of an earlier run: {ed}")
        eng = de.Engine(ed, None, None)
        try:
            eng.cgparent = open(os.path.join(ed, "cgroup-parent")).read().strip()
        except OSError:
            eng.cgparent = ""
        eng.stop()


DOCKERFILES = {
    "lint-ko": ("FROM scratch\nCOPY testapp /ko-app/app\nENV PATH=/ko-app\n"
                "ENTRYPOINT [\"app\"]\n", {"testapp": "testapp"}),
    "lint-busybox": ("FROM scratch\nCOPY busybox /bin/busybox\n"
                     "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
                     "RUN [\"/bin/busybox\", \"rm\", \"/bin/wget\"]\n"
                     "HEALTHCHECK CMD [\"/bin/busybox\", \"true\"]\n", {"busybox": "busybox"}),
    "lint-noshell": ("FROM lint-busybox\nRUN [\"/bin/busybox\", \"rm\", \"/bin/sh\"]\n", {}),
}


def mode_docker(d):
    import docker_e2e_test as de
    de.deadline = time.monotonic() + A.budget
    tools = {}
    for name, prefer in (("dockerd", "/usr/sbin/dockerd"), ("docker", "/usr/bin/docker")):
        tools[name] = prefer if os.access(prefer, os.X_OK) else shutil.which(name)
        if not tools[name]:
            raise Failure(f"{name} not found: {HINT}")
    for path in (A.testapp, A.healthagg_static, A.busybox):
        if not os.access(path, os.X_OK):
            raise Failure(f"{path} not found: {HINT} (the static binaries come from the "
                          "deploy.static_build fixture)")
    workdir = os.path.realpath(A.workdir)
    if len(workdir) + len("/docker-e2e.XXXXXXXX/exec/containerd/containerd-debug.sock.ttrpc") > 107:
        workdir = "/tmp"  # unix socket path limit, as in deploy.docker_e2e
    sweep_leftovers(de, workdir)
    # Not "docker-e2e.": deploy.docker_e2e sweeps those whose owner is not itself, and the two
    # tests may run at the same time.
    ed = tempfile.mkdtemp(prefix="docker-lint.", dir=workdir)
    os.chmod(ed, 0o711)
    with open(os.path.join(ed, "owner"), "w") as f:
        f.write(f"{os.getpid()}\n")
    eng = de.Engine(ed, tools["docker"], tools["dockerd"])
    eng.cgparent = f"healthagg-lint-{os.getpid()}"
    try:
        try:
            eng.start()
        except de.Skip as e:
            print(f"SKIPPED: docker engine could not start: {e}", flush=True)
            return SKIP
        sources = {"testapp": A.testapp, "busybox": A.busybox, "healthagg": A.healthagg_static}
        for tag in ("lint-ko", "lint-busybox", "lint-noshell"):
            text, files = DOCKERFILES[tag]
            ctx = os.path.join(ed, "ctx-" + tag)
            os.makedirs(ctx)
            for dst, src in files.items():
                shutil.copyfile(sources[src], os.path.join(ctx, dst))
                os.chmod(os.path.join(ctx, dst), 0o755)
            with open(os.path.join(ctx, "Dockerfile"), "w") as f:
                f.write(text)
            eng.docker("build", "--no-cache", "-q", "-t", tag, ctx, timeout=180)
        ctx = os.path.join(ed, "ctx-healthagg")
        os.makedirs(ctx)
        shutil.copyfile(A.healthagg_static, os.path.join(ctx, "healthagg"))
        os.chmod(os.path.join(ctx, "healthagg"), 0o755)
        eng.docker("build", "--no-cache", "-q", "-t", "lint-healthagg", "-f", A.dockerfile, ctx,
                   timeout=180)
        log("built lint-ko, lint-busybox, lint-noshell, lint-healthagg FROM scratch")
        tars = {}
        for tag in ("lint-ko", "lint-busybox", "lint-noshell", "lint-healthagg"):
            tars[tag] = os.path.join(d, tag + ".tar")
            eng.docker("save", "-o", tars[tag], tag, timeout=120)
        field = os.path.join(A.source_dir,
                             "tests/lint/taskdefs/bad/cmd-shell-unverified--field-report.json")
        sh = taskdef(d, "app", ["CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"])
        wget = taskdef(d, "app", ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/ || exit 1"])
        nc = taskdef(d, "app", ["CMD-SHELL", "nc -z 127.0.0.1 8080"])
        images = [(tars[t], t) for t in tars]
        for tag in ("lint-ko", "lint-busybox", "lint-noshell"):
            for img in both_oci(d, tars[tag], tag):
                images.append((img, tag))
        for img, tag in images:
            if tag == "lint-ko":
                expect(img, field, "image-no-shell", ["/bin/sh does not exist"], name="myapp")
                expect(img, taskdef(d, "app", ["CMD", "app", "--help"]), None)
            elif tag == "lint-busybox":
                expect(img, sh, "image-shell-command-missing", ['"curl"'])
                expect(img, wget, "image-shell-command-missing", ['"wget"'])
                expect(img, nc, None)
                if img.endswith(".tar") and not img.endswith(".oci.tar"):
                    expect(img, taskdef(d, "app", None), "image-healthcheck-ignored",
                           ['HEALTHCHECK ["CMD","/bin/busybox","true"]'])
                else:  # skopeo's docker -> OCI conversion drops Docker's Healthcheck field
                    expect(img, taskdef(d, "app", None), None)
            elif tag == "lint-noshell":
                expect(img, nc, "image-no-shell", ["/bin/sh does not exist"])
            else:
                rc, findings, err = lint(img, os.path.join(A.source_dir,
                                                           "deploy/ecs/task-definition.json"),
                                         name="healthagg", strict=True)
                if rc != 0 or findings:
                    raise Failure(f"deploy recipe with the real healthagg image: {findings}")
                log("ok: deploy/ecs/task-definition.json with the real healthagg image: clean")
        print(f"PASSED: docker save of 4 images from a real engine and their skopeo OCI copies "
              f"({len(images)} image files)", flush=True)
        return 0
    finally:
        eng.stop()


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("skopeo", "docker"), required=True)
    ap.add_argument("--healthagg", required=True, help="the healthagg to run lint with")
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--healthagg-static", help="docker mode: the static binary for the image")
    ap.add_argument("--testapp", help="docker mode: the static test app")
    ap.add_argument("--dockerfile", help="docker mode: deploy/Dockerfile.prebuilt")
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--budget", type=float, default=240)
    A = ap.parse_args()
    A.healthagg = os.path.abspath(A.healthagg)
    A.skopeo = shutil.which("skopeo")
    if not A.skopeo:
        raise Failure(f"skopeo not found: {HINT}")
    os.makedirs(A.workdir, exist_ok=True)
    d = tempfile.mkdtemp(prefix="lint-real.", dir=A.workdir)
    try:
        return mode_skopeo(d) if A.mode == "skopeo" else mode_docker(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 - every failure is reported as one
        print(f"FAILED: {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
