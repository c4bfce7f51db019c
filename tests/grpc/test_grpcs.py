"""grpcs:// checks: gRPC over the TLS transport (ALPN h2), against the real @grpc/grpc-js server
with TLS credentials (tests/grpc/server.js --tls), certificates made by the openssl CLI
(tests/integration/tlsfixtures.py): verification, its reasons, SNI, mTLS required by the server,
and the config path through `serve`.

    python3 test_grpcs.py --healthagg H --testapp T        (HA_GRPC_PEER set by ctest)
"""
import json
import os

import grpcpeer
from grpcpeer import GrpcServer
from harness import cli, expect, run, test
import tlsfixtures

CERTS = None


def check(*args, timeout="5s"):
    return cli(["check", "--timeout", timeout] + list(args), timeout=20)


@test
def grpcs_serving_with_ca_file(ctx):
    s = GrpcServer(ctx, statuses={"": "SERVING", "pkg.Svc": "NOT_SERVING"},
                   tls=CERTS.path("good"))
    r = check("--ca-file", CERTS.ca, f"grpcs://{s.addr}")
    expect(r.rc == 0 and r.out.startswith(f"pass grpcs://{s.addr}: SERVING"), f"{r!r}")
    r = check("--ca-file", CERTS.ca, f"grpcs://localhost:{s.port}/pkg.Svc")
    expect(r.rc == 1 and "NOT_SERVING" in r.out, f"over TLS the verdict is the service's: {r!r}")
    # the plain scheme against a TLS server fails, and says something about it
    r = check(f"grpc://{s.addr}", timeout="2s")
    expect(r.rc == 1, f"grpc:// against a TLS server: {r!r}")


@test
def grpcs_verification_reasons(ctx):
    s = GrpcServer(ctx, statuses={"": "SERVING"}, tls=CERTS.path("expired"))
    when = CERTS.not_after["expired"].strftime("%Y-%m-%dT%H:%M:%SZ")
    r = check("--ca-file", CERTS.ca, f"grpcs://{s.addr}")
    expect(r.rc == 1 and f"tls: certificate verify failed: expired (notAfter {when})" in r.out,
           f"{r!r}")
    g = GrpcServer(ctx, statuses={"": "SERVING"}, tls=CERTS.path("good"))
    r = check(f"grpcs://{g.addr}")  # the system store does not know the private CA
    expect(r.rc == 1 and "tls: unknown CA" in r.out, f"{r!r}")
    r = check("--ca-file", CERTS.ca, "--server-name", "other.example", f"grpcs://{g.addr}")
    expect(r.rc == 1 and "certificate name mismatch: want other.example" in r.out, f"{r!r}")
    r = check("--ca-file", CERTS.ca, "--server-name", "api.internal", f"grpcs://{g.addr}")
    expect(r.rc == 0, f"server_name api.internal is in the certificate: {r!r}")


@test
def grpcs_mtls(ctx):
    crt, key = CERTS.path("good")
    s = GrpcServer(ctx, statuses={"": "SERVING"}, tls=(crt, key), client_ca=CERTS.ca)
    r = check("--ca-file", CERTS.ca, f"grpcs://{s.addr}")
    # TLS 1.3: the server rejects us after our Finished; we see its alert, or, when our first
    # request bytes race its close, the write failing
    expect(r.rc == 1 and any(w in r.out for w in ("tls: alert", "write: broken pipe",
                                                  "connection reset")),
           f"no client certificate: {r!r}")
    ccrt, ckey = CERTS.path("client")
    r = check("--ca-file", CERTS.ca, "--client-cert", ccrt, "--client-key", ckey,
              f"grpcs://{s.addr}")
    expect(r.rc == 0 and "SERVING" in r.out, f"with the client certificate: {r!r}")


@test
def grpcs_in_serve_config(ctx):
    s = GrpcServer(ctx, statuses={"pkg.Svc": "SERVING"}, tls=CERTS.path("soon"))
    path = os.path.join(CERTS.dir, "grpcs.json")
    with open(path, "w") as f:
        json.dump({"checks": [{"name": "g", "url": f"grpcs://{s.addr}/pkg.Svc",
                               "tls": {"ca_file": CERTS.ca, "warn_cert_expiry": "7d"}}]}, f)
    h = ctx.healthagg(["--config", path, "--interval", "500ms", "--timeout", "400ms"])
    line = h.wait_transition("g", "pass", 10)
    expect("SERVING; certificate expires in 3d" in line["reason"], f"{line!r}")


if __name__ == "__main__":
    grpcpeer.require_peer()
    gone = tlsfixtures.missing("openssl")
    if gone:
        print("SKIPPED: openssl not installed (tests/deploy/deps.sh installs it)", flush=True)
        raise SystemExit(77)
    CERTS = tlsfixtures.Certs()
    try:
        run(__name__)
    finally:
        CERTS.cleanup()
