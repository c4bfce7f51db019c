"""grpc:// checks end to end: `healthagg check` and `healthagg serve` against the real
@grpc/grpc-js server with the grpc-health-check package's health service (tests/grpc/server.js),
switched at run time, plus raw-socket fakes for what no real server does. Every failure reason
the issue lists is asserted as the user sees it.

    python3 test_grpc_check.py --healthagg H --testapp T        (HA_GRPC_PEER set by ctest)
"""
import json
import os
import struct

import grpcpeer
import tlsfixtures
from grpcpeer import GrpcServer, RawFake
from harness import (cli, expect, expect_eq, fail, lines_of, poll, run, serve_args, test,
                     wait_until)

SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def frame(ftype, flags, stream, payload=b"", length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def check(*urls, timeout="2s", env=None):
    return cli(["check", "--timeout", timeout] + list(urls), env=env, timeout=20)


def one_line(r, verdict, url, reason):
    """r is a single-URL check: one line `VERDICT URL: REASON (N ms)`."""
    lines = lines_of(r.out)
    expect(len(lines) == 1, f"one line expected: {r!r}")
    head = f"{verdict} {url}: {reason} ("
    expect(lines[0].startswith(head) and lines[0].endswith(" ms)"),
           f"expected a line starting {head!r}: {r!r}")
    expect_eq(r.rc, 0 if verdict == "pass" else 1, f"exit code of {r!r}")
    expect_eq(r.err, "", "stderr")


# --- healthagg check, one URL per failure reason ------------------------------------------

@test
def check_serving(ctx):
    s = GrpcServer(ctx, statuses={"": "SERVING", "pkg.Svc": "SERVING"})
    one_line(check(f"grpc://{s.addr}"), "pass", f"grpc://{s.addr}", "SERVING")
    one_line(check(f"grpc://{s.addr}/pkg.Svc"), "pass", f"grpc://{s.addr}/pkg.Svc", "SERVING")


@test
def check_not_serving(ctx):
    s = GrpcServer(ctx, statuses={"pkg.Svc": "NOT_SERVING"})
    one_line(check(f"grpc://{s.addr}/pkg.Svc"), "fail", f"grpc://{s.addr}/pkg.Svc", "NOT_SERVING")
    s.set("pkg.Svc", "SERVICE_UNKNOWN")
    one_line(check(f"grpc://{s.addr}/pkg.Svc"), "fail", f"grpc://{s.addr}/pkg.Svc",
             "SERVICE_UNKNOWN")


@test
def check_unknown_service(ctx):
    s = GrpcServer(ctx, statuses={"": "SERVING"})
    one_line(check(f"grpc://{s.addr}/x"), "fail", f"grpc://{s.addr}/x",
             "grpc-status 5 (NOT_FOUND): Health status unknown for service x")


@test
def check_no_health_service(ctx):
    s = GrpcServer(ctx, mode="nohealth")
    one_line(check(f"grpc://{s.addr}"), "fail", f"grpc://{s.addr}",
             "grpc-status 12 (UNIMPLEMENTED): The server does not implement the method "
             "/grpc.health.v1.Health/Check")


@test
def check_refused_after_kill(ctx):
    s = GrpcServer(ctx, statuses={"": "SERVING"})
    one_line(check(f"grpc://{s.addr}"), "pass", f"grpc://{s.addr}", "SERVING")
    s.kill()
    one_line(check(f"grpc://{s.addr}"), "fail", f"grpc://{s.addr}",
             f"connect: connection refused ({s.addr})")


@test
def check_accepts_never_answers(ctx):
    fake = RawFake(ctx, reply=None)
    r = check(f"grpc://{fake.addr}", timeout="500ms")
    one_line(r, "fail", f"grpc://{fake.addr}", "timeout after 500ms (waiting for response)")
    expect(r.elapsed < 3, f"the timeout is kept: {r!r}")
    # A real HTTP/2 server that takes the request and never answers: its SETTINGS arrive, the
    # answer does not.
    s = GrpcServer(ctx, mode="hang")
    r = check(f"grpc://{s.addr}", timeout="500ms")
    one_line(r, "fail", f"grpc://{s.addr}", "timeout after 500ms (waiting for response)")


@test
def check_goaway(ctx):
    s = GrpcServer(ctx, mode="goaway")
    one_line(check(f"grpc://{s.addr}/pkg.Svc"), "fail", f"grpc://{s.addr}/pkg.Svc",
             "GOAWAY (ENHANCE_YOUR_CALM): test server says go away")


@test
def check_rst_stream(ctx):
    # SETTINGS, then RST_STREAM(REFUSED_STREAM) on our stream 1.
    fake = RawFake(ctx, reply=SETTINGS + frame(3, 0, 1, struct.pack(">I", 7)), hold=True)
    one_line(check(f"grpc://{fake.addr}"), "fail", f"grpc://{fake.addr}",
             "RST_STREAM (REFUSED_STREAM)")


@test
def check_hostile_bytes(ctx):
    cases = [
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", False,
         "invalid response: HTTP/2: Remote peer returned unexpected data while we expected "
         "SETTINGS frame.  Perhaps, peer does not support HTTP/2 properly."),
        (SETTINGS + frame(0, 0, 1, b"x" * 64, length=0xFFFFFF), True,
         "invalid response: HTTP/2: too large frame size (FRAME_SIZE_ERROR)"),
        (SETTINGS + frame(8, 0, 0, struct.pack(">I", 1)) * 6000, True,
         "invalid response: more than 65536 bytes from the server"),
        (SETTINGS + frame(0, 0, 2, b"xx"), True,
         "invalid response: HTTP/2: DATA: stream in idle (PROTOCOL_ERROR)"),
        (SETTINGS, False, "connection closed before response headers"),
    ]
    for reply, hold, reason in cases:
        fake = RawFake(ctx, reply=reply, hold=hold)
        r = check(f"grpc://{fake.addr}")
        if reason.startswith("connection closed"):
            reason += f" ({fake.addr})"
        one_line(r, "fail", f"grpc://{fake.addr}", reason)


@test
def check_several_urls(ctx):
    """The grpc-health-probe #92 ask: several services in one call, a line each."""
    s = GrpcServer(ctx, statuses={"": "SERVING", "pkg.A": "SERVING", "pkg.B": "NOT_SERVING"})
    urls = [f"grpc://{s.addr}", f"grpc://{s.addr}/pkg.A", f"grpc://{s.addr}/pkg.B",
            f"grpc://{s.addr}/pkg.C"]
    r = check(*urls)
    lines = lines_of(r.out)
    expect_eq(len(lines), 4, f"a line per URL: {r!r}")
    expect(lines[0].startswith(f"pass {urls[0]}: SERVING"), lines[0])
    expect(lines[1].startswith(f"pass {urls[1]}: SERVING"), lines[1])
    expect(lines[2].startswith(f"fail {urls[2]}: NOT_SERVING"), lines[2])
    expect(lines[3].startswith(f"fail {urls[3]}: grpc-status 5 (NOT_FOUND)"), lines[3])
    expect_eq(r.rc, 1, "exit code with one failing")
    s.set("pkg.B", "SERVING")
    s.set("pkg.C", "SERVING")
    r = check(*urls)
    expect_eq(r.rc, 0, f"all SERVING: {r!r}")
    expect_eq(len(lines_of(r.out)), 4, "a line per URL")
    # Never exit 2 (Docker reserves it), even for a URL that cannot be parsed.
    r = check(f"grpc://{s.addr}", "grpc://nohost")
    expect_eq(r.rc, 1, f"a bad URL among good ones: {r!r}")


@test
def check_metadata_and_secrets(ctx):
    s = GrpcServer(ctx, statuses={"pkg.Svc": "SERVING"},
                   require={"authorization": "Bearer s3cret-t0ken"})
    url = f"grpc://{s.addr}/pkg.Svc"
    one_line(check(url), "fail", url, "grpc-status 16 (UNAUTHENTICATED): missing authorization")
    cfg = {"checks": [{"name": "api", "url": url,
                       "metadata": {"Authorization": "Bearer ${GRPC_TOKEN}", "x-env": "test"}}],
           "defaults": {"interval": "200ms", "timeout": "150ms"}}
    env = {"GRPC_TOKEN": "s3cret-t0ken", "HEALTHAGG_CONFIG": json.dumps(cfg)}
    ha = ctx.healthagg([], env=env)
    ha.wait_transition("api", "pass", 5)
    startup = ha.events("startup")[0]
    text = json.dumps(startup)
    expect("s3cret" not in text, f"the secret is in the startup line: {text}")
    chk = startup["checks"][0]
    expect_eq(chk.get("metadata"), {"Authorization": "<redacted>", "x-env": "<redacted>"},
              "metadata in the startup line")
    status, _, body = ha.get("/health")
    expect("s3cret" not in body.decode(), "the secret is in /health")
    wait_until(lambda: any(l == "metadata authorization,user-agent,x-env" for l in s.proc.lines),
               5, "the server to report the metadata it received")
    # A wrong token that the server echoes back: the reason shows <redacted>, never the value.
    cfg["checks"][0]["name"] = "bad"
    cfg["listen"] = "127.0.0.1:0"
    env = {"GRPC_TOKEN": "wr0ng-t0ken-echoed", "HEALTHAGG_CONFIG": json.dumps(cfg)}
    ha2 = ctx.healthagg([], env=env)
    t = ha2.wait_transition("bad", "fail", 10)
    expect_eq(t["reason"], "grpc-status 16 (UNAUTHENTICATED): bad authorization: <redacted>",
              "an echoed secret in the reason")
    r = cli(["validate"], env=env)
    expect("wr0ng" not in r.out + r.err, f"validate shows the secret: {r!r}")


@test
def check_config_errors(ctx):
    def bad(check_obj, want, env=None):
        cfg = {"checks": [dict({"name": "g"}, **check_obj)]}
        r = cli(["validate"], env=dict({"HEALTHAGG_CONFIG": json.dumps(cfg)}, **(env or {})))
        expect(r.rc == 2 and want in r.err, f"expected exit 2 with {want!r}: {r!r}")
    bad({"url": "grpc://127.0.0.1"}, "needs a port")
    bad({"url": "grpc://127.0.0.1:1/a/b"}, "the service name")
    bad({"url": "grpc://127.0.0.1:1/a", "service": "b"}, "checks[0].service")
    bad({"url": "grpc://127.0.0.1:1", "metadata": {"grpc-timeout": "1S"}},
        "checks[0].metadata.grpc-timeout: reserved")
    bad({"url": "grpc://127.0.0.1:1", "metadata": {"te": "x"}}, "checks[0].metadata.te: reserved")
    bad({"url": "grpc://127.0.0.1:1", "metadata": {"x": 1}}, "checks[0].metadata.x")
    bad({"url": "grpc://127.0.0.1:1", "metadata": {"x": "${HA_TEST_UNSET_VAR}"}},
        "HA_TEST_UNSET_VAR")
    bad({"url": "grpc://127.0.0.1:1", "expect_status": [200]}, "checks[0].expect_status")
    bad({"url": "grpc://127.0.0.1:1", "service": "a b"}, "checks[0].service")
    bad({"url": "grpc://127.0.0.1:1", "service": "s" * 513}, "checks[0].service")


@test
def check_grpcs(ctx):
    """grpcs://: the same check over the TLS transport (ALPN h2), certificates from tlsfixtures."""
    gone = tlsfixtures.missing("openssl")
    if gone:
        fail(f"openssl not found ({gone}): tests/deploy/deps.sh installs it")
    certs = tlsfixtures.Certs()
    try:
        crt, key = certs.path("good")
        s = GrpcServer(ctx, statuses={"pkg.Svc": "SERVING"}, tls=(crt, key))
        url = f"grpcs://{s.addr}/pkg.Svc"
        r = cli(["check", "--ca-file", certs.ca, url], timeout=20)
        one_line(r, "pass", url, "SERVING")
        s.set("pkg.Svc", "NOT_SERVING")
        one_line(cli(["check", "--ca-file", certs.ca, url], timeout=20), "fail", url, "NOT_SERVING")
        # Verification is on: another CA fails the handshake, with the TLS layer's reason.
        r = cli(["check", "--ca-file", certs.other_ca, url], timeout=20)
        expect(r.rc == 1 and r.out.startswith(f"fail {url}: tls: "), f"wrong CA: {r!r}")
        # grpcs:// to a plaintext gRPC port, grpc:// to a TLS port: both say what is wrong.
        r = check(f"grpc://{s.addr}/pkg.Svc")
        # (the TLS server hangs up on the cleartext preface: which side notices first varies)
        expect(r.rc == 1 and any(w in r.out for w in (
            f"connection closed before response ({s.addr})", "invalid response: HTTP/2:",
            f"write: broken pipe ({s.addr})", f"connection reset by peer ({s.addr})")),
            f"h2c to a TLS port: {r!r}")
        plain = GrpcServer(ctx, statuses={"pkg.Svc": "SERVING"})
        r = cli(["check", "--ca-file", certs.ca, f"grpcs://{plain.addr}/pkg.Svc"], timeout=20)
        expect(r.rc == 1 and "tls: " in r.out, f"TLS to a plaintext port: {r!r}")
        # In serve, with the tls object.
        cfg = {"checks": [{"name": "s", "url": url, "tls": {"ca_file": certs.ca}}],
               "defaults": {"interval": "300ms", "timeout": "250ms", "failure_threshold": 1}}
        s.set("pkg.Svc", "SERVING")
        ha = ctx.healthagg([], env={"HEALTHAGG_CONFIG": json.dumps(cfg)})
        ha.wait_transition("s", "pass", 10)
    finally:
        certs.cleanup()


def wait_fail_reason(ha, check, reason, timeout, start=0):
    """The first transition of `check` to fail whose reason starts with `reason`. Other failures
    (a probe timing out on a loaded machine) may come and go before it."""
    return ha.wait_event(lambda o: o.get("event") == "transition" and o.get("check") == check and
                         o.get("to") == "fail" and o.get("reason", "").startswith(reason),
                         timeout, f"{check} failing with {reason!r}", start)


# --- healthagg serve ----------------------------------------------------------------------

@test
def serve_recovery(ctx):
    s = GrpcServer(ctx, statuses={"pkg.Svc": "SERVING"})
    ha = ctx.healthagg(serve_args(f"api=grpc://{s.addr}/pkg.Svc", interval="500ms",
                                  timeout="400ms", failure_threshold=1, success_threshold=1))
    ha.wait_transition("api", "pass", 10)
    mark = ha.mark()
    s.set("pkg.Svc", "NOT_SERVING")
    wait_fail_reason(ha, "api", "NOT_SERVING", 10, start=mark)
    poll(lambda: ha.get("/readyz"), lambda r: (r[0], r[2].decode().strip()) ==
         (503, "api: NOT_SERVING"), 5, "/readyz saying why")
    mark = ha.mark()
    s.set("pkg.Svc", "SERVING")
    ha.wait_transition("api", "pass", 10, start=mark)
    mark = ha.mark()
    s.kill()
    wait_fail_reason(ha, "api", f"connect: connection refused ({s.addr})", 10, start=mark)
    health = json.loads(ha.get("/health")[2])
    expect_eq(health["checks"]["api"][0]["componentType"], "grpc", "componentType in /health")


@test
def serve_many_services(ctx):
    n = 30
    statuses = {f"svc.S{i}": "SERVING" for i in range(n)}
    s = GrpcServer(ctx, statuses=statuses)
    checks = [f"s{i}=grpc://{s.addr}/svc.S{i}" for i in range(n)]
    ha = ctx.healthagg(serve_args(*checks, interval="1s", timeout="800ms", failure_threshold=1,
                                  success_threshold=1))
    wait_until(lambda: ha.get("/readyz")[0] == 200, 15, "every service SERVING")
    mark = ha.mark()
    s.set("svc.S7", "NOT_SERVING")
    wait_fail_reason(ha, "s7", "NOT_SERVING", 10, start=mark)

    def only_s7():
        status, _, body = ha.get("/readyz")
        health = json.loads(ha.get("/health")[2])
        failing = sorted(k for k, v in health["checks"].items() if v[0]["status"] == "fail")
        return status, body.decode().strip(), failing
    poll(only_s7, lambda r: r == (503, "s7: NOT_SERVING", ["s7"]), 10,
         "/readyz and /health naming only s7")


if __name__ == "__main__":
    grpcpeer.require_peer()
run(__name__)
