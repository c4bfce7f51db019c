#!/usr/bin/python3
"""make_images.py: write container images the way real tools lay them out, for lint's tests.

Python stdlib only (tarfile, gzip, hashlib, json); nothing is committed as a binary. An image
is a list of layers, each a list of entries:

    ("file", PATH, MODE[, DATA])   ("dir", PATH, MODE)        ("symlink", PATH, TARGET)
    ("hardlink", PATH, TARGET)     ("whiteout", PATH)         ("opaque", DIR)

Layouts:
  docker_save(path, img)   `docker save`: manifest.json, <id>.json config, <v1 id>/layer.tar
  crane_tarball(path, img) ko build --tarball / crane pull: Config "sha256:...", <digest>.tar.gz
  oci(path, imgs, as_tar)  OCI image layout (directory or tar): index.json -> one manifest, or
                           -> an image index of per-platform manifests when given several images
Per layer: tar format ("ustar", "pax", "gnu": long names as pax records or GNU 'L' entries),
gzip or not. Hostile variants (a flipped byte, zstd, "../" names) are made by the tests.

    make_images.py OUTDIR     writes a sample of each layout into OUTDIR
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

EPOCH = 1700000000


def sha(data):
    return hashlib.sha256(data).hexdigest()


def layer_tar(entries, fmt="pax"):
    """Uncompressed layer bytes."""
    fmts = {"ustar": tarfile.USTAR_FORMAT, "pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmts[fmt]) as t:
        for e in entries:
            kind, path = e[0], e[1]
            if kind == "whiteout":
                d, b = os.path.split(path)
                kind, path, e = "file", os.path.join(d, ".wh." + b), ("file", None, 0o644)
            elif kind == "opaque":
                kind, path, e = "file", os.path.join(path, ".wh..wh..opq"), ("file", None, 0o644)
            ti = tarfile.TarInfo(path)
            ti.mtime = EPOCH
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            data = None
            if kind == "file":
                ti.type = tarfile.REGTYPE
                ti.mode = e[2]
                data = e[3] if len(e) > 3 else b"#!fake\n"
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = e[2]
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e[2]
                ti.mode = 0o777
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e[2]
                ti.mode = 0o755
            else:
                raise ValueError(kind)
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gz(data):
    return gzip.compress(data, mtime=0)


class Image:
    """layers: list of (entries, fmt, gzip?); env: list of "K=V"; healthcheck: Test list."""

    def __init__(self, layers, env=None, healthcheck=None, os_="linux", arch="amd64",
                 variant=None):
        self.layers = [(lay if isinstance(lay, tuple) else (lay, "pax", True)) for lay in layers]
        self.env = env if env is not None else [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        self.healthcheck = healthcheck
        self.os, self.arch, self.variant = os_, arch, variant
        self.raw = [layer_tar(e, fmt) for e, fmt, _ in self.layers]
        self.blobs = [gz(r) if z else r for r, (_, _, z) in zip(self.raw, self.layers)]

    def config(self):
        cfg = {"Env": self.env, "Entrypoint": ["/app"], "User": "65532"}
        if self.healthcheck:
            cfg["Healthcheck"] = {"Test": self.healthcheck, "Interval": 30000000000}
        c = {"architecture": self.arch, "os": self.os, "created": "2026-11-20T10:00:00Z",
             "config": cfg,
             "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(r) for r in self.raw]},
             "history": [{"created_by": "make_images.py"} for _ in self.raw]}
        if self.variant:
            c["variant"] = self.variant
        return json.dumps(c, sort_keys=True).encode()

    def platform(self):
        p = {"os": self.os, "architecture": self.arch}
        if self.variant:
            p["variant"] = self.variant
        return p


def write_tar(path, members):
    """members: list of (name, bytes), written in this order."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        dirs = set()
        for name, data in members:
            d = os.path.dirname(name)
            if d and d not in dirs:
                dirs.add(d)
                ti = tarfile.TarInfo(d)
                ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, EPOCH
                t.addfile(ti)
            ti = tarfile.TarInfo(name)
            ti.mode, ti.mtime = 0o644, EPOCH
            if isinstance(data, tuple):  # ("symlink", target)
                ti.type, ti.linkname = tarfile.SYMTYPE, data[1]
                t.addfile(ti)
                continue
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))


def docker_save(path, img, tag="example/app:latest"):
    """Like Docker 20.10: layers uncompressed (gzip ones are stored as given), then the
    config, then manifest.json at the end. A layer that appears twice is stored once and the
    second name is a symlink to the first (`<id>/layer.tar -> ../<first id>/layer.tar`)."""
    members, names, parent, first = [], [], "", {}
    for blob in img.blobs:
        v1 = sha((parent + sha(blob)).encode())
        parent = v1
        members.append((f"{v1}/VERSION", b"1.0"))
        if sha(blob) in first:
            members.append((f"{v1}/layer.tar", ("symlink", f"../{first[sha(blob)]}/layer.tar")))
        else:
            first[sha(blob)] = v1
            members.append((f"{v1}/layer.tar", blob))
        names.append(f"{v1}/layer.tar")
    cfg = img.config()
    members.append((f"{sha(cfg)}.json", cfg))
    manifest = [{"Config": f"{sha(cfg)}.json", "RepoTags": [tag], "Layers": names}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    members.append(("repositories", json.dumps({tag.split(":")[0]: {"latest": parent}}).encode()))
    write_tar(path, members)


def crane_tarball(path, img, tag="ko.local/app:latest"):
    """Like go-containerregistry's tarball.Write (ko build --tarball, crane pull)."""
    cfg = img.config()
    members = [(f"sha256:{sha(cfg)}", cfg)]
    names = []
    for blob in img.blobs:
        names.append(f"{sha(blob)}.tar.gz")
        members.append((names[-1], blob))
    manifest = [{"Config": f"sha256:{sha(cfg)}", "RepoTags": [tag], "Layers": names}]
    members.insert(0, ("manifest.json", json.dumps(manifest).encode()))
    write_tar(path, members)


def _manifest(img, blobs):
    cfg = img.config()
    blobs[sha(cfg)] = cfg
    layers = []
    for blob, (_, _, z) in zip(img.blobs, img.layers):
        blobs[sha(blob)] = blob
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if z else ""),
                       "digest": "sha256:" + sha(blob), "size": len(blob)})
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": "sha256:" + sha(cfg), "size": len(cfg)},
         "layers": layers}
    data = json.dumps(m).encode()
    blobs[sha(data)] = data
    return {"mediaType": m["mediaType"], "digest": "sha256:" + sha(data), "size": len(data),
            "platform": img.platform()}


def oci(path, imgs, as_tar=False, nested=True):
    """One image: index.json lists its manifest. Several: index.json lists an image index blob
    (as ko writes) of per-platform manifests (or lists them directly with nested=False)."""
    if isinstance(imgs, Image):
        imgs = [imgs]
    blobs = {}
    descs = [_manifest(i, blobs) for i in imgs]
    if len(imgs) > 1 and nested:
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": descs}
        data = json.dumps(idx).encode()
        blobs[sha(data)] = data
        top = [{"mediaType": idx["mediaType"], "digest": "sha256:" + sha(data),
                "size": len(data)}]
    else:
        top = descs if len(imgs) > 1 else [dict(descs[0], annotations={
            "org.opencontainers.image.ref.name": "latest"})]
        if len(imgs) == 1:
            top[0].pop("platform")
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": top}
    members = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
               ("index.json", json.dumps(index).encode())]
    members += [(f"blobs/sha256/{h}", b) for h, b in sorted(blobs.items())]
    if as_tar:
        write_tar(path, members)
        return
    for name, data in members:
        full = os.path.join(path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)


# A few images the tests and the CLI share.
def ko_like():
    """ko's default: chainguard static base (no shell) + the Go binary under /ko-app."""
    base = [("dir", "etc", 0o755), ("file", "etc/passwd", 0o644, b"root:x:0:0::/root:/sbin/nologin\n"),
            ("dir", "etc/ssl/certs", 0o755), ("file", "etc/ssl/certs/ca-certificates.crt", 0o644),
            ("dir", "tmp", 0o1777)]
    app = [("dir", "ko-app", 0o755), ("file", "ko-app/app", 0o755)]
    return Image([base, app], env=["PATH=/usr/local/bin:/usr/bin:/bin:/ko-app",
                                   "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"])


def busybox_like():
    """A shell (busybox, via relative and absolute symlinks) and wget, but no curl."""
    return Image([[("dir", "bin", 0o755), ("file", "bin/busybox", 0o755),
                   ("symlink", "bin/sh", "busybox"), ("dir", "usr/bin", 0o755),
                   ("symlink", "usr/bin/wget", "/bin/busybox")],
                  [("file", "app", 0o755)]])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "images"
    os.makedirs(out, exist_ok=True)
    docker_save(os.path.join(out, "ko-like.docker.tar"), ko_like())
    crane_tarball(os.path.join(out, "ko-like.crane.tar"), ko_like())
    oci(os.path.join(out, "busybox-like.oci"), busybox_like())
    oci(os.path.join(out, "multi.oci.tar"),
        [ko_like(), Image(busybox_like().layers, arch="arm64", variant="v8")], as_tar=True)
    print(f"wrote images to {out}")


if __name__ == "__main__":
    main()
