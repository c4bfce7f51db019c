"""server.public_details with a real non-loopback peer: a veth pair between this network
namespace and one the test creates (ip netns add). healthagg listens on 0.0.0.0; a client in the
other namespace reaches it over the veth address, so healthagg sees a non-loopback peer.
/livez and /readyz answer it, /health and /metrics answer it 403 unless server.public_details is
true, and loopback clients get everything. Needs root (ip netns): without it, SKIPPED."""
import os
import random
import shutil
import subprocess
import tempfile

from harness import *  # noqa: F401,F403

CLIENT = r"""
import http.client, sys
host, port = sys.argv[1], int(sys.argv[2])
for path in sys.argv[3:]:
    c = http.client.HTTPConnection(host, port, timeout=3)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read().decode("utf-8", "replace").splitlines()
    print(path, r.status, body[0] if body else "")
    c.close()
"""


def ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, timeout=10)
    if check and r.returncode != 0:
        fail(f"ip {' '.join(args)}: {r.stderr.decode().strip()}")
    return r


def veth_namespace(ctx):
    """Creates namespace + veth pair; returns (namespace, host-side address, peer address)."""
    if os.geteuid() != 0:
        skip("needs root to create a network namespace and a veth pair")
    if not shutil.which("ip"):
        skip("ip (Debian iproute2) not found")
    tag = f"{os.getpid() % 10000}{random.randint(0, 99):02d}"
    ns, a, b = f"haops{tag}", f"vha{tag}a", f"vha{tag}b"
    r = ip("netns", "add", ns, check=False)
    if r.returncode != 0:
        skip(f"ip netns add is not permitted here: {r.stderr.decode().strip()}")
    ctx.on_cleanup(lambda: ip("netns", "del", ns, check=False))
    r = ip("link", "add", a, "type", "veth", "peer", "name", b, check=False)
    if r.returncode != 0:
        skip(f"cannot create a veth pair here: {r.stderr.decode().strip()}")
    ctx.on_cleanup(lambda: ip("link", "del", a, check=False))
    net = f"10.{random.randint(64, 250)}.{random.randint(0, 250)}"
    host, peer = f"{net}.1", f"{net}.2"
    ip("link", "set", b, "netns", ns)
    ip("addr", "add", f"{host}/30", "dev", a)
    ip("link", "set", a, "up")
    ip("-n", ns, "addr", "add", f"{peer}/30", "dev", b)
    ip("-n", ns, "link", "set", b, "up")
    ip("-n", ns, "link", "set", "lo", "up")
    return ns, host, peer


def from_namespace(ns, host, port, *paths):
    r = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", CLIENT, host,
                        str(port)] + list(paths), capture_output=True, timeout=20)
    expect(r.returncode == 0, f"client in {ns} failed: {r.stderr.decode()}")
    out = {}
    for line in r.stdout.decode().splitlines():
        path, status, first = line.split(" ", 2)
        out[path] = (int(status), first)
    return out


def config(ctx, doc):
    fd, path = tempfile.mkstemp(prefix="healthagg-netns-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    ctx.on_cleanup(lambda: os.unlink(path))
    return path


@test
def details_answer_only_loopback_peers_by_default(ctx):
    ns, host, peer = veth_namespace(ctx)
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"), listen="0.0.0.0:0")
    expect_eq(ha.startup["server"]["details_loopback_only"], True, "startup: details guarded")
    ha.wait_transition("app", "pass", 3)
    poll(lambda: ha.readyz()[0], lambda s: s == 200, 2, "ready")
    seen = from_namespace(ns, host, ha.port, "/livez", "/readyz", "/health", "/metrics",
                          "/health?history=1")
    expect_eq(seen["/livez"], (200, "alive"), f"/livez from {peer}")
    expect_eq(seen["/readyz"], (200, "ok"), f"/readyz from {peer}")
    for path in ("/health", "/metrics", "/health?history=1"):
        expect(seen[path][0] == 403 and "server.public_details" in seen[path][1],
               f"{path} from {peer}: {seen[path]}")
    # Loopback clients of the same listener get the details.
    expect_eq(ha.get("/health")[0], 200, "/health from 127.0.0.1")
    expect_eq(ha.get("/metrics")[0], 200, "/metrics from 127.0.0.1")
    # ... and the host-side veth address is not loopback either, even from this namespace.
    st, _, body = http_request_to(host, ha.port, "/health")
    expect_eq(st, 403, f"/health from this host via {host}")


def http_request_to(addr, port, path):
    import http.client
    c = http.client.HTTPConnection(addr, port, timeout=3)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


@test
def public_details_true_answers_everyone(ctx):
    ns, host, peer = veth_namespace(ctx)
    app = ctx.testapp()
    path = config(ctx, {"server": {"public_details": True},
                        "checks": [{"name": "app", "url": app.url, "interval": "500ms",
                                    "timeout": "300ms"}]})
    ha = ctx.healthagg(["--config", path], listen="0.0.0.0:0")
    expect_eq(ha.startup["server"]["details_loopback_only"], False, "startup: not guarded")
    ha.wait_transition("app", "pass", 3)
    seen = from_namespace(ns, host, ha.port, "/health", "/metrics", "/readyz")
    expect_eq(seen["/health"][0], 200, f"/health from {peer} with public_details")
    expect_eq(seen["/metrics"], (200, "# HELP healthagg_up 1 when the aggregate is pass or warn "
                                      "(the real verdict, also in report-only mode)."),
              f"/metrics from {peer}")


@test
def loopback_listen_is_never_guarded(ctx):
    ns, host, peer = veth_namespace(ctx)
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    expect_eq(ha.startup["server"]["details_loopback_only"], False, "127.0.0.1 listen")
    r = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", CLIENT, host,
                        str(ha.port), "/health"], capture_output=True, timeout=20)
    expect(r.returncode != 0 and b"refused" in r.stderr.lower(),
           f"a 127.0.0.1 listener is unreachable from {peer}: {r}")


run(__name__)
