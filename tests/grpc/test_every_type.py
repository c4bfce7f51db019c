"""One sidecar with every check type configured, each once passing and once failing: http
(testapp), https (openssl s_server, test CA), tcp send/expect (redis-server), file (a heartbeat
file), grpc and grpcs (the Node gRPC server), plus groups. `promtool check metrics` (Debian
`prometheus`) must accept /metrics; /health must name every check with its type. The /health
and /metrics bodies are printed (the issue's closing note quotes them)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import grpcpeer
import tlsfixtures
from grpcpeer import GrpcServer
from harness import expect, expect_eq, poll, run, test

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from peers import Redis  # noqa: E402


@test
def every_type_promtool(ctx):
    grpcpeer.require_peer()
    promtool = shutil.which("promtool")
    expect(promtool, "promtool is missing: deploy/deps.sh --tests installs Debian's prometheus")
    gone = tlsfixtures.missing("openssl")
    expect(not gone, f"openssl is missing ({gone})")
    d = tempfile.mkdtemp(prefix="healthagg-every-")
    ctx.on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    certs = tlsfixtures.Certs()
    ctx.on_cleanup(certs.cleanup)
    crt, key = certs.path("good")
    app = ctx.testapp()
    tls = tlsfixtures.SServer(ctx, crt, key)
    redis = Redis(ctx)
    grpc = GrpcServer(ctx, statuses={"": "SERVING", "shop.v1.Orders": "NOT_SERVING"})
    grpcs = GrpcServer(ctx, statuses={"": "SERVING"}, tls=(crt, key))
    beat = os.path.join(d, "beat")
    open(beat, "w").close()
    dead = ctx.dead_port()
    checks = [
        {"name": "app", "url": app.url, "groups": ["live"]},
        {"name": "app_wrong_status", "url": app.url, "expect_status": [204], "critical": False},
        {"name": "tls", "url": f"https://127.0.0.1:{tls.port}/", "tls": {"ca_file": certs.ca}},
        {"name": "tls_wrong_ca", "url": f"https://127.0.0.1:{tls.port}/",
         "tls": {"ca_file": certs.other_ca}, "critical": False},
        {"name": "redis", "url": f"tcp://127.0.0.1:{redis.port}", "send": "PING\r\n",
         "expect": "+PONG", "groups": ["deps"]},
        {"name": "redis_wrong", "url": f"tcp://127.0.0.1:{redis.port}", "send": "PING\r\n",
         "expect": "+OK", "critical": False},
        {"name": "tcp_down", "url": f"tcp://127.0.0.1:{dead}", "critical": False},
        {"name": "worker", "url": "file://" + beat, "max_age": "30s", "groups": ["live"]},
        {"name": "worker_gone", "url": "file://" + beat + ".missing", "critical": False},
        {"name": "grpc", "url": f"grpc://{grpc.addr}", "groups": ["deps"]},
        {"name": "grpc_orders", "url": f"grpc://{grpc.addr}/shop.v1.Orders", "critical": False},
        {"name": "grpcs", "url": f"grpcs://{grpcs.addr}", "tls": {"ca_file": certs.ca}},
        {"name": "grpcs_down", "url": f"grpcs://127.0.0.1:{dead}", "tls": {"ca_file": certs.ca},
         "critical": False},
    ]
    path = os.path.join(d, "config.json")
    with open(path, "w") as f:
        json.dump({"defaults": {"interval": "500ms", "timeout": "400ms", "failure_threshold": 1,
                                "success_threshold": 1}, "checks": checks}, f)
    ha = ctx.healthagg(["--config", path])
    want_fail = {c["name"] for c in checks if c.get("critical") is False}

    def settled():
        st, _, body = ha.get("/health")
        doc = json.loads(body)
        states = {n: e[0]["state"] for n, e in doc["checks"].items()}
        return all(states[n] == ("fail" if n in want_fail else "pass") for n in states) and doc
    doc = poll(settled, bool, 20, "every check to settle: the *_wrong/_down/_gone ones failing")
    types = {n: e[0]["componentType"] for n, e in doc["checks"].items()}
    expect_eq(sorted(set(types.values())), ["file", "grpc", "http", "tcp"],
              "componentType of every check type")
    expect_eq((doc["status"], doc["state"]), ("warn", "warn"), "only non-critical checks fail")
    st, _, metrics = ha.get("/metrics")
    expect_eq(st, 200, "/metrics status")
    r = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True,
                       timeout=60)
    expect(r.returncode == 0, f"promtool check metrics: {r.stdout!r} {r.stderr!r}")
    text = metrics.decode()
    for c in checks:
        expect(f'healthagg_check_up{{check="{c["name"]}"}} {0 if c["name"] in want_fail else 1}'
               in text, f"healthagg_check_up of {c['name']}")
    expect('healthagg_group_up{group="live"} 1' in text and
           'healthagg_group_up{group="deps"} 1' in text, "group series")
    # Now the passing ones fail too (the app, the heartbeat, redis): still accepted by promtool.
    app.set_mode("status:503")
    os.unlink(beat)
    redis.stop()
    poll(lambda: ha.get("/readyz")[0], lambda s: s == 503, 10, "/readyz 503")
    for name in ("redis", "app", "worker"):
        poll(lambda: json.loads(ha.get("/health")[2])["checks"][name][0]["state"],
             lambda s: s == "fail", 10, f"{name} to fail")
    st, _, metrics2 = ha.get("/metrics")
    r = subprocess.run([promtool, "check", "metrics"], input=metrics2, capture_output=True,
                       timeout=60)
    expect(r.returncode == 0, f"promtool check metrics (failing): {r.stdout!r} {r.stderr!r}")
    expect('healthagg_group_up{group="live"} 0' in metrics2.decode(), "live fails with the app")
    print("---- /health (every check type, settled) ----")
    print(json.dumps(doc, indent=1))
    print("---- /metrics (every check type, settled) ----")
    print(text)
    print("---- promtool check metrics: exit 0 on both pages ----", flush=True)


run(__name__)
