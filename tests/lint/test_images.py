#!/usr/bin/python3
"""lint.images: `healthagg lint --image` against images written by make_images.py.

Every layout (docker save, ko/crane tarball, OCI directory, OCI tar, image index with several
platforms), every merge rule (whiteouts, opaque directories, hard links, absolute and relative
symlinks resolved inside the image, symlink loops, executable bits, the image's PATH, long
names as pax records and GNU entries, gzip and plain layers) and every refusal (a flipped byte,
a zstd layer, a "../" name, a gzip-compressed outer tarball, a truncated file) is one case with
the exact rule, exit code and the words of the message that matter.

Usage: test_images.py --healthagg BIN --source-dir REPO --workdir DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_images as mi  # noqa: E402

A = None
FAILED = []
SH = ["CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"]
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL " + what, flush=True)
    return cond


def taskdef(command, name="app", image="registry.example/app:1", extra=None):
    c = {"name": name, "image": image, "essential": True,
         "portMappings": [{"containerPort": 8080}]}
    if command:
        c["healthCheck"] = {"command": command}
    c.update(extra or {})
    td = {"family": "t", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
          "containerDefinitions": [c]}
    path = os.path.join(A.workdir, f"td-{abs(hash(json.dumps(td)))}.json")
    with open(path, "w") as f:
        json.dump(td, f)
    return path


def lint(td, image, *extra, name="app"):
    r = subprocess.run([A.healthagg, "lint", "--format", "json", "--image", f"{name}={image}",
                        *extra, td], capture_output=True, timeout=60)
    out, err = r.stdout.decode(), r.stderr.decode()
    try:
        findings = json.loads(out) if out else None
    except ValueError:
        findings = None
    return r.returncode, findings, err


def path(name):
    return os.path.join(A.workdir, name)


def expect(case, td, image, rule=None, words=(), rc=None, extra=(), note=None):
    """rule None: clean. rc: expected exit (default from the rule's severity)."""
    code, findings, err = lint(td, image, *extra)
    if findings is None:
        check(False, f"{case}: no JSON findings (exit {code}, stderr {err!r})")
        return
    rules = [f["rule"] for f in findings]
    if rule is None:
        check(code == 0 and findings == [], f"{case}: clean (exit {code}, {findings})")
    else:
        mine = [f for f in findings if f["rule"] == rule]
        if check(mine, f"{case}: rule {rule} fires (saw {rules}; stderr {err!r})"):
            text = mine[0]["message"]
            for w in words:
                check(w in text, f"{case}: message has {w!r}: {text!r}")
        want = rc if rc is not None else (1 if any(f["severity"] == "error" for f in findings) else 0)
        check(code == want, f"{case}: exit {code}, want {want}")
    if note:
        check(note in err, f"{case}: stderr names {note!r}: {err!r}")
    print(f"ok {case}" if not any(x.startswith(case + ":") for x in FAILED) else f"-- {case}",
          flush=True)


def refuse(case, image, words, td=None):
    td = td or taskdef(SH)
    code, findings, err = lint(td, image)
    check(code == 2 and all(w in err for w in words) and findings is None,
          f"{case}: exit 2 naming {words} (exit {code}, stderr {err!r})")
    print(f"ok {case}" if code == 2 else f"-- {case}", flush=True)


def base_files():
    return [("dir", "etc", 0o755), ("file", "etc/passwd", 0o644, b"root:x:0:0::/:/x\n")]


def test_layouts():
    field = os.path.join(A.source_dir,
                         "tests/lint/taskdefs/bad/cmd-shell-unverified--field-report.json")
    ko = mi.ko_like()
    mi.docker_save(path("ko.docker.tar"), ko)
    mi.crane_tarball(path("ko.crane.tar"), ko)
    mi.oci(path("ko.oci"), ko)
    mi.oci(path("ko.oci.tar"), ko, as_tar=True)
    for img, kind in (("ko.docker.tar", "docker save tarball"), ("ko.crane.tar", "ko/crane tarball"),
                      ("ko.oci", "OCI image layout directory"),
                      ("ko.oci.tar", "OCI image layout tar")):
        code, findings, err = lint(field, path(img), name="myapp")
        ok = findings and findings[0]["rule"] == "image-no-shell"
        check(code == 1 and ok and "/bin/sh does not exist in the image (there is no /bin)" in
              findings[0]["message"] and kind in findings[0]["message"],
              f"field report with the ko-like image as {kind}: image-no-shell proves /bin/sh is "
              f"missing (exit {code}, {findings}, {err!r})")
        check(f"{kind}, linux/amd64, 2 layers" in err, f"{kind}: stderr describes the image: {err!r}")
    # The text format of the same, as the closing note shows it.
    r = subprocess.run([A.healthagg, "lint", "--image", "myapp=" + path("ko.crane.tar"), field],
                       capture_output=True, timeout=60)
    check(r.returncode == 1 and r.stdout.decode().startswith(
        f"error {field} containerDefinitions[0].healthCheck.command: CMD-SHELL runs /bin/sh -c"),
        f"text output with --image: {r.stdout!r}")
    print("ok layouts", flush=True)


def test_merge_rules():
    bb = mi.busybox_like()
    mi.oci(path("bb.oci"), bb)
    expect("relative symlink /bin/sh -> busybox, curl missing", taskdef(SH), path("bb.oci"),
           "image-shell-command-missing", ['"curl"', "not an executable on the image's PATH"])
    expect("absolute symlink /usr/bin/wget -> /bin/busybox", taskdef(
        ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/ || exit 1"]), path("bb.oci"), None)
    expect("builtins are not looked up", taskdef(["CMD-SHELL", "test -f /app && exit 0"]),
           path("bb.oci"), None)

    img = mi.Image([base_files() + [("dir", "bin", 0o755), ("symlink", "bin/sh", "/bin/bash")]])
    mi.docker_save(path("dangling.tar"), img)
    expect("/bin/sh -> /bin/bash without bash", taskdef(SH), path("dangling.tar"),
           "image-no-shell", ["/bin/sh is a symlink (/bin/sh -> /bin/bash)",
                              "/bin/bash does not exist"])

    img = mi.Image([[("dir", "bin", 0o755), ("file", "bin/sh", 0o644), ("file", "bin/curl", 0o755)]])
    mi.docker_save(path("noexec.tar"), img)
    expect("/bin/sh without x bits", taskdef(SH), path("noexec.tar"), "image-no-shell",
           ["/bin/sh is not executable (mode 0644)"])

    shell = [("dir", "bin", 0o755), ("file", "bin/dash", 0o755), ("symlink", "bin/sh", "dash"),
             ("file", "bin/curl", 0o755)]
    img = mi.Image([shell, [("whiteout", "bin/sh")]])
    mi.crane_tarball(path("whiteout.tar"), img)
    expect("whiteout removes /bin/sh", taskdef(SH), path("whiteout.tar"), "image-no-shell",
           ["/bin/sh does not exist"])
    img = mi.Image([shell, [("dir", "bin", 0o755), ("opaque", "bin"), ("file", "bin/curl", 0o755)]])
    mi.crane_tarball(path("opaque.tar"), img)
    expect("opaque dir hides the lower /bin, keeps its own curl", taskdef(SH),
           path("opaque.tar"), "image-no-shell", ["/bin/sh does not exist"])
    img = mi.Image([shell, [("whiteout", "bin/sh")], [("symlink", "bin/sh", "dash")]])
    mi.crane_tarball(path("readd.tar"), img)
    expect("a later layer re-adds /bin/sh", taskdef(SH), path("readd.tar"), None)
    sh_only = [("dir", "bin", 0o755), ("file", "bin/dash", 0o755), ("symlink", "bin/sh", "dash")]
    img = mi.Image([sh_only, [("whiteout", "bin/sh")], sh_only])
    mi.docker_save(path("dup-layer.tar"), img)
    expect("docker save stores a repeated layer once, linked: the third layer re-adds /bin/sh",
           taskdef(["CMD", "/bin/sh"]), path("dup-layer.tar"), None, note="3 layers")
    img = mi.Image([shell, [("whiteout", "bin")]])
    mi.oci(path("wh-dir.oci"), img)
    expect("whiteout of a whole directory", taskdef(SH), path("wh-dir.oci"), "image-no-shell",
           ["there is no /bin"])

    img = mi.Image([[("dir", "bin", 0o755), ("file", "bin/dash", 0o755),
                     ("hardlink", "bin/sh", "bin/dash"), ("file", "bin/curl", 0o755)]])
    mi.docker_save(path("hardlink.tar"), img)
    expect("hard link /bin/sh to /bin/dash", taskdef(SH), path("hardlink.tar"), None)

    img = mi.Image([[("dir", "usr/bin", 0o755), ("symlink", "bin", "usr/bin"),
                     ("file", "usr/bin/dash", 0o755), ("symlink", "usr/bin/sh", "../../usr/bin/dash"),
                     ("file", "usr/bin/curl", 0o755)]], env=["PATH=/bin"])
    mi.oci(path("merged-usr.oci.tar"), img, as_tar=True)
    expect("merged /usr: /bin -> usr/bin, sh -> ../../usr/bin/dash, PATH=/bin", taskdef(SH),
           path("merged-usr.oci.tar"), None)

    img = mi.Image([[("dir", "bin", 0o755), ("symlink", "bin/sh", "sh2"),
                     ("symlink", "bin/sh2", "/bin/sh")]])
    mi.docker_save(path("loop.tar"), img)
    expect("symlink loop", taskdef(SH), path("loop.tar"), "image-no-shell", ["symlink loop"])

    img = mi.Image([[("symlink", "bin", "/"), ("dir", "x", 0o755)]])
    mi.docker_save(path("escape.tar"), img)
    expect("symlinks never leave the image root", taskdef(["CMD", "/bin/../../../usr/bin/env"]),
           path("escape.tar"), "image-cmd-missing", ["/usr does not exist"])
    print("ok merge rules", flush=True)


def test_exec_form_and_path():
    ko = mi.ko_like()
    mi.crane_tarball(path("ko2.tar"), ko)
    expect("CMD argv[0] relative, found on the image's Env PATH (/ko-app)",
           taskdef(["CMD", "app", "-healthcheck"]), path("ko2.tar"), None)
    expect("CMD argv[0] absolute and present", taskdef(["CMD", "/ko-app/app", "-health"]),
           path("ko2.tar"), None)
    expect("CMD argv[0] missing", taskdef(["CMD", "/healthagg", "check", "http://127.0.0.1:8080/"]),
           path("ko2.tar"), "image-cmd-missing", ["/healthagg does not exist in the image"])
    expect("CMD argv[0] relative, not on PATH", taskdef(["CMD", "curl", "-f", "http://x/"]),
           path("ko2.tar"), "image-cmd-missing", ['"curl"', "/ko-app"])
    expect("the task definition's PATH wins over the image's", taskdef(
        ["CMD", "app"], extra={"environment": [{"name": "PATH", "value": "/usr/bin"}]}),
        path("ko2.tar"), "image-cmd-missing", ["(/usr/bin)"])
    img = mi.Image([[("dir", "ko-app", 0o755), ("file", "ko-app/app", 0o644)]],
                   env=["PATH=/ko-app"])
    mi.crane_tarball(path("noexec-app.tar"), img)
    expect("CMD argv[0] not executable", taskdef(["CMD", "/ko-app/app"]), path("noexec-app.tar"),
           "image-cmd-missing", ["not executable (mode 0644)"])
    print("ok exec form and PATH", flush=True)


def test_long_names():
    deep = "opt/" + "/".join(["d%02d-long-directory-name" % i for i in range(12)])
    for fmt in ("pax", "gnu"):
        img = mi.Image([([("dir", deep, 0o755), ("file", deep + "/tool", 0o755),
                          ("symlink", deep + "/sh", "/" + deep + "/tool")], fmt, True)])
        mi.docker_save(path(f"long-{fmt}.tar"), img)
        expect(f"long names as {fmt} headers", taskdef(["CMD", "/" + deep + "/sh"]),
               path(f"long-{fmt}.tar"), None)
        expect(f"long names as {fmt} headers, missing", taskdef(["CMD", "/" + deep + "/nope"]),
               path(f"long-{fmt}.tar"), "image-cmd-missing", [deep + "/nope"])
    img = mi.Image([([("dir", "bin", 0o755), ("file", "bin/sh", 0o755),
                      ("file", "bin/curl", 0o755)], "ustar", False)])
    mi.oci(path("plain.oci"), img)
    expect("uncompressed ustar layer in OCI", taskdef(SH), path("plain.oci"), None)
    print("ok long names", flush=True)


def test_index_and_platforms():
    amd = mi.ko_like()
    arm = mi.Image(mi.busybox_like().layers, arch="arm64", variant="v8")
    mi.oci(path("multi.oci"), [amd, arm])
    mi.oci(path("multi-flat.oci.tar"), [amd, arm], as_tar=True, nested=False)
    for img in ("multi.oci", "multi-flat.oci.tar"):
        expect(f"{img}: default platform linux/amd64", taskdef(SH), path(img), "image-no-shell",
               [], note="image index of 2 platforms (linux/amd64, linux/arm64/v8): used linux/amd64")
        expect(f"{img}: --platform linux/arm64", taskdef(
            ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/"]), path(img), None,
            extra=("--platform", "linux/arm64"), note="used linux/arm64/v8")
    refuse_args = [A.healthagg, "lint", "--platform", "linux/s390x", "--image",
                   "app=" + path("multi.oci"), taskdef(SH)]
    r = subprocess.run(refuse_args, capture_output=True, timeout=60)
    err = r.stderr.decode()
    check(r.returncode == 2 and "no linux/s390x image (it has linux/amd64, linux/arm64/v8)" in err,
          f"unknown platform: exit 2 listing the platforms ({r.returncode}, {err!r})")
    print("ok index and platforms", flush=True)


def test_image_healthcheck():
    img = mi.Image([[("file", "app", 0o755)]], healthcheck=["CMD-SHELL", "curl -f http://localhost/"])
    mi.docker_save(path("hc.tar"), img)
    expect("image HEALTHCHECK that ECS ignores", taskdef(None), path("hc.tar"),
           "image-healthcheck-ignored", ['HEALTHCHECK ["CMD-SHELL","curl -f http://localhost/"]'])
    expect("image HEALTHCHECK overridden by the task's own", taskdef(["CMD", "/app"]),
           path("hc.tar"), None)
    print("ok image healthcheck", flush=True)


def test_refusals():
    img = mi.Image([([("dir", "bin", 0o755), ("file", "bin/sh", 0o755, b"x" * 5000)], "pax",
                     False)])
    mi.docker_save(path("good.tar"), img)
    data = bytearray(open(path("good.tar"), "rb").read())
    i = data.find(b"x" * 5000)
    data[i + 100] = ord("y")
    with open(path("flipped.tar"), "wb") as f:
        f.write(data)
    refuse("a flipped byte in a layer", path("flipped.tar"),
           ["layer 1", "does not match the config's rootfs.diff_ids[0]", "corrupt or was modified"])
    img = mi.Image([[("dir", "bin", 0o755), ("file", "bin/sh", 0o755, b"x" * 5000)]])
    mi.crane_tarball(path("good-crane.tar"), img)
    data = bytearray(open(path("good-crane.tar"), "rb").read())
    blob = img.blobs[0]
    i = data.find(blob)
    data[i + len(blob) - 12] ^= 0xff  # inside the gzip trailer's CRC
    with open(path("flipped-gz.tar"), "wb") as f:
        f.write(data)
    refuse("a flipped byte in a gzip layer", path("flipped-gz.tar"), ["layer 1", "gzip"])
    data[i + 40] ^= 0xff  # and one in the deflate data
    with open(path("flipped-gz2.tar"), "wb") as f:
        f.write(data)
    refuse("two flipped bytes in a gzip layer", path("flipped-gz2.tar"), ["layer 1"])
    with open(path("truncated.tar"), "wb") as f:
        f.write(open(path("good.tar"), "rb").read()[:3000])
    refuse("a truncated tarball", path("truncated.tar"), ["truncated"])
    with open(path("good.tar"), "rb") as f, open(path("good.tar.gz"), "wb") as g:
        g.write(mi.gz(f.read()))
    refuse("a gzip-compressed docker save", path("good.tar.gz"), ["gunzip it first"])

    trav = mi.Image([[("file", "../../etc/evil", 0o755)]])
    mi.docker_save(path("traversal.tar"), trav)
    refuse("a ../ layer entry", path("traversal.tar"), ["leads outside the image root"])
    trav = mi.Image([[("file", "a/../../evil", 0o755)]])
    mi.oci(path("traversal.oci"), trav)
    refuse("a/../../ in a layer entry", path("traversal.oci"), ["leads outside the image root"])

    zimg = mi.Image([[("file", "bin/sh", 0o755)]])
    mi.oci(path("zstd.oci"), zimg)
    idx = json.load(open(path("zstd.oci/index.json")))
    mdig = idx["manifests"][0]["digest"][7:]
    m = json.load(open(path(f"zstd.oci/blobs/sha256/{mdig}")))
    zblob = b"\x28\xb5\x2f\xfd" + b"\0" * 60
    h = mi.sha(zblob)
    with open(path(f"zstd.oci/blobs/sha256/{h}"), "wb") as f:
        f.write(zblob)
    m["layers"][0] = {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                      "digest": "sha256:" + h, "size": len(zblob)}
    mdata = json.dumps(m).encode()
    with open(path(f"zstd.oci/blobs/sha256/{mi.sha(mdata)}"), "wb") as f:
        f.write(mdata)
    idx["manifests"][0].update(digest="sha256:" + mi.sha(mdata), size=len(mdata))
    json.dump(idx, open(path("zstd.oci/index.json"), "w"))
    refuse("a zstd layer", path("zstd.oci"), ["zstd-compressed", "gzip layers"])
    os.makedirs(path("empty-dir"), exist_ok=True)
    refuse("a directory that is no image", path("empty-dir"), ["neither a docker save tarball"])
    print("ok refusals", flush=True)


def test_memory_bound():
    """A 96 MiB file in a gzip layer and 5000 paths: lint streams the layer, so its peak RSS
    stays far below the layer's size (the path index is what it keeps)."""
    entries = [("dir", "data", 0o755), ("file", "data/blob", 0o644, bytes(96 * 1024 * 1024)),
               ("dir", "bin", 0o755), ("file", "bin/sh", 0o755)]
    entries += [("file", f"usr/share/doc/p{i // 100}/f{i}", 0o644, b"x") for i in range(5000)]
    img = mi.Image([entries])
    mi.docker_save(path("big.tar"), img)
    del img, entries
    size = os.path.getsize(path("big.tar"))
    # The proof: lint runs with its address space capped well below the layer's 96 MiB
    # (RLIMIT_AS, set in the child just before exec), so holding the layer would fail.
    cap = 48 * 1024 * 1024
    with open(A.healthagg, "rb") as f:
        asan = b"__asan_init" in f.read()  # ASan reserves terabytes of shadow: no cap then

    def limit():
        import resource
        if not asan:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    r = subprocess.run([A.healthagg, "lint", "--image", "app=" + path("big.tar"),
                        taskdef(["CMD", "/bin/sh"])], capture_output=True, timeout=120,
                       preexec_fn=limit)
    err = r.stderr.decode()
    print(f"  image file {size // 1024} KiB holding a 96 MiB file and 5004 paths, read with "
          f"the address space capped at {cap >> 20} MiB{' (not under ASan)' if asan else ''}: "
          f"exit {r.returncode}", flush=True)
    check(r.returncode == 0 and r.stdout == b"" and "1 layer, 5057 paths" in err,
          f"big image lints clean under a {cap >> 20} MiB address-space cap: exit "
          f"{r.returncode}, {r.stdout!r}, {err!r}")
    print("ok memory bound", flush=True)


def test_sidecar_image():
    """healthagg's own image: FROM scratch, /healthagg only (deploy/Dockerfile.prebuilt)."""
    img = mi.Image([[("file", "healthagg", 0o755)]], env=[PATH_ENV],
                   healthcheck=["CMD", "/healthagg", "probe"])
    mi.docker_save(path("healthagg.tar"), img)
    td = os.path.join(A.source_dir, "deploy/ecs/task-definition.json")
    code, findings, err = lint(td, path("healthagg.tar"), "--strict", name="healthagg")
    check(code == 0 and findings == [], f"deploy recipe with healthagg's image: clean ({code} "
          f"{findings} {err!r})")
    print("ok sidecar image", flush=True)


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--healthagg", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--workdir", required=True)
    A = ap.parse_args()
    A.healthagg = os.path.abspath(A.healthagg)
    shutil.rmtree(A.workdir, ignore_errors=True)
    os.makedirs(A.workdir)
    for t in (test_layouts, test_merge_rules, test_exec_form_and_path, test_long_names,
              test_index_and_platforms, test_image_healthcheck, test_refusals, test_memory_bound, test_sidecar_image):
        before = len(FAILED)
        t()
        print(("PASS " if len(FAILED) == before else "FAIL ") + t.__name__, flush=True)
    if FAILED:
        print(f"{len(FAILED)} check(s) failed", flush=True)
        sys.exit(1)
    print("all lint image checks passed", flush=True)


if __name__ == "__main__":
    main()
