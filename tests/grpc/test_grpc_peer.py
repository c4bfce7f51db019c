"""The gRPC layer (src/checks/grpc_call.c over h2_client.c, driven by tests/grpc/grpc_call_live)
against the real @grpc/grpc-js server with the grpc-health-check package's health service:
every answer the reference implementation gives, switched at run time, and the Node client
(tests/grpc/client.js) agreeing on the same server.

    python3 test_grpc_peer.py --healthagg H --testapp T   (HA_GRPC_PEER, HA_GRPC_CALL_LIVE set)
"""
import os
import subprocess

import grpcpeer
from grpcpeer import GrpcServer
from harness import expect, expect_eq, fail, run, test

LIVE = os.environ.get("HA_GRPC_CALL_LIVE", "")


def call(server, service=None):
    host, port = server.addr.split(":")
    argv = [LIVE, host, port] + ([service] if service is not None else [])
    r = subprocess.run(argv, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.decode().strip()


def node_client(server, service=""):
    r = subprocess.run(["node", grpcpeer.CLIENT_JS, server.addr, service], capture_output=True,
                       timeout=20, env=dict(os.environ, **grpcpeer.node_env()),
                       stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.decode().strip()


@test
def serving_and_not_serving(ctx):
    s = GrpcServer(ctx, statuses={"": "SERVING", "pkg.Down": "NOT_SERVING"})
    expect_eq(call(s), (0, "pass SERVING"), "the server as a whole")
    expect_eq(call(s, "pkg.Down"), (1, "fail NOT_SERVING"), "a NOT_SERVING service")
    expect_eq(node_client(s), (0, "SERVING"), "the Node client on the same server")


@test
def unknown_service_is_not_found(ctx):
    s = GrpcServer(ctx, statuses={"": "SERVING"})
    expect_eq(call(s, "x"),
              (1, "fail grpc-status 5 (NOT_FOUND): Health status unknown for service x"),
              "an unknown service (trailers-only, percent-encoded grpc-message)")
    s.set("pkg.Svc", "SERVICE_UNKNOWN")
    expect_eq(call(s, "pkg.Svc"), (1, "fail SERVICE_UNKNOWN"), "status SERVICE_UNKNOWN")


@test
def switched_at_run_time(ctx):
    s = GrpcServer(ctx, statuses={"pkg.Svc": "NOT_SERVING"})
    expect_eq(call(s, "pkg.Svc"), (1, "fail NOT_SERVING"), "before the switch")
    s.set("pkg.Svc", "SERVING")
    expect_eq(call(s, "pkg.Svc"), (0, "pass SERVING"), "after set SERVING")
    s.clear("pkg.Svc")
    rc, out = call(s, "pkg.Svc")
    expect(rc == 1 and "NOT_FOUND" in out, f"after clear: {rc} {out!r}")


@test
def many_services(ctx):
    names = [f"svc.S{i}" for i in range(25)]
    s = GrpcServer(ctx, statuses={n: ("SERVING" if i % 2 else "NOT_SERVING")
                                  for i, n in enumerate(names)})
    for i, n in enumerate(names):
        want = (0, "pass SERVING") if i % 2 else (1, "fail NOT_SERVING")
        expect_eq(call(s, n), want, n)


@test
def no_health_service_is_unimplemented(ctx):
    s = GrpcServer(ctx, mode="nohealth")
    expect_eq(call(s), (1, "fail grpc-status 12 (UNIMPLEMENTED): The server does not implement "
                           "the method /grpc.health.v1.Health/Check"), "a server without health")


@test
def goaway_from_node_http2(ctx):
    s = GrpcServer(ctx, mode="goaway")
    rc, out = call(s, "pkg.Svc")
    expect((rc, out) == (1, "fail GOAWAY (ENHANCE_YOUR_CALM): test server says go away"),
           f"a server answering GOAWAY: {rc} {out!r}")


@test
def long_service_name(ctx):
    s = GrpcServer(ctx, statuses={"": "SERVING"})
    name = "a." + "b" * 500
    s.set(name, "SERVING")
    expect_eq(call(s, name), (0, "pass SERVING"), "a 502-byte service name")


if __name__ == "__main__":
    grpcpeer.require_peer()
    if not os.access(LIVE, os.X_OK):
        fail(f"HA_GRPC_CALL_LIVE={LIVE!r} is not an executable")
run(__name__)
