"""https:// checks end to end: `healthagg check` and `healthagg serve` against openssl s_server and
nginx with certificates made by the openssl CLI (tlsfixtures.py).

Covers every verification failure and its reason, the expiry warning (warn, still ready; the
notAfter in /health and /metrics), SNI / server_name, a TLS 1.3-only server with min_version, a
server stalling mid-handshake (the timeout names the phase), plain HTTP on an https:// URL (a
clear reason, not a hang), resumption in effect (nginx counts full handshakes), mTLS, and the
config errors of the `tls` object. Needs openssl and nginx (tests/deploy/deps.sh installs them);
without them: SKIPPED, exit 77.
"""
import json
import os
import socket
import sys
import threading

import harness
from harness import cli, expect, expect_eq, test
import tlsfixtures

CERTS = None
# Under valgrind (tests/sanitizers.sh sets HEALTHAGG_TEST_SLOW) a full handshake takes seconds:
# every interval and timeout here is multiplied by it.
SLOW = max(1, int(os.environ.get("HEALTHAGG_TEST_SLOW", "1")))


def ms(n):
    return f"{n * SLOW}ms"


def ca_flags():
    return ["--ca-file", CERTS.ca]


def server(ctx, name, *extra):
    crt, key = CERTS.path(name)
    return tlsfixtures.SServer(ctx, crt, key, extra)


def check(url, *flags, timeout=None):
    return cli(["check", "--timeout", timeout or ms(2000)] + list(flags) + [url],
               timeout=15 * SLOW)


def expect_fail(r, needle):
    expect(r.rc == 1 and r.out.startswith("fail ") and needle in r.out,
           f"expected exit 1 and a reason containing {needle!r}; {r!r}")


def write_config(checks, **top):
    doc = dict(top)
    doc["checks"] = checks
    path = os.path.join(CERTS.dir, "config-%d.json" % id(checks))
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


@test
def check_passes_tls13_and_tls12(ctx):
    for extra in ((), ("-tls1_2",)):
        s = server(ctx, "good", *extra)
        r = check(f"https://127.0.0.1:{s.port}/", *ca_flags())
        expect(r.rc == 0 and r.out.startswith("pass ") and "HTTP 200" in r.out, f"{extra}: {r!r}")
        r = check(f"https://localhost:{s.port}/", *ca_flags())
        expect(r.rc == 0, f"by name (DNS SAN localhost): {r!r}")
    rsa = server(ctx, "rsa")
    expect_eq(check(f"https://127.0.0.1:{rsa.port}/", *ca_flags()).rc, 0, "RSA certificate")


@test
def verification_failures_name_the_reason(ctx):
    when = CERTS.not_after["expired"].strftime("%Y-%m-%dT%H:%M:%SZ")
    cases = [("expired", "127.0.0.1", f"tls: certificate verify failed: expired (notAfter {when})"),
             ("future", "127.0.0.1", "tls: certificate verify failed: not yet valid (notBefore "),
             ("wrongname", "localhost",
              "tls: certificate name mismatch: want localhost, got *.example.com"),
             ("selfsigned", "127.0.0.1", "tls: unknown CA (self-signed certificate CN=localhost)")]
    for name, host, reason in cases:
        s = server(ctx, name)
        r = check(f"https://{host}:{s.port}/", *ca_flags())
        expect_fail(r, reason)
        expect(f"(127.0.0.1:{s.port})" in r.out, f"the reason names the address: {r!r}")
    g = server(ctx, "good")
    expect_fail(check(f"https://127.0.0.1:{g.port}/", "--ca-file", CERTS.other_ca),
                "tls: unknown CA")
    # the system trust store does not know the private CA either
    expect_fail(check(f"https://127.0.0.1:{g.port}/"), "tls: unknown CA")
    # insecure_skip_verify accepts the self-signed certificate
    s = server(ctx, "selfsigned")
    r = check(f"https://127.0.0.1:{s.port}/", "--insecure-skip-verify")
    expect(r.rc == 0, f"--insecure-skip-verify: {r!r}")


@test
def ip_address_san_and_server_name(ctx):
    s = server(ctx, "iponly")
    expect_eq(check(f"https://127.0.0.1:{s.port}/", *ca_flags()).rc, 0, "IP SAN 127.0.0.1")
    expect_fail(check(f"https://localhost:{s.port}/", *ca_flags()),
                "certificate name mismatch: want localhost, got IP:127.0.0.1")
    crt, key = CERTS.path("sni")
    sni = server(ctx, "wrongname", "-servername", "api.internal", "-cert2", crt, "-key2", key)
    r = check(f"https://127.0.0.1:{sni.port}/", *ca_flags(), "--server-name", "api.internal")
    expect(r.rc == 0, f"SNI api.internal picks the right certificate: {r!r}")
    expect_fail(check(f"https://127.0.0.1:{sni.port}/", *ca_flags()),
                "want 127.0.0.1, got *.example.com")


@test
def min_version_against_tls13_only_and_tls12_only(ctx):
    s13 = server(ctx, "good", "-tls1_3")
    path = write_config([{"name": "t13", "url": f"https://127.0.0.1:{s13.port}/",
                          "tls": {"ca_file": CERTS.ca, "min_version": "1.3"}}])
    expect_eq(cli(["validate", "--config", path]).rc, 0, "valid config")
    h = ctx.healthagg(["--config", path, "--interval", ms(300), "--timeout", ms(250)])
    h.wait_transition("t13", "pass", 5 * SLOW)
    h.proc.kill()  # one sidecar at a time (under valgrind, two compete for the CPU)
    s12 = server(ctx, "good", "-tls1_2")
    path = write_config([{"name": "t12", "url": f"https://127.0.0.1:{s12.port}/",
                          "tls": {"ca_file": CERTS.ca, "min_version": "1.3"}}])
    h2 = ctx.healthagg(["--config", path, "--interval", ms(300), "--timeout", ms(250),
                        "--failure-threshold", "1"])
    line = h2.wait_transition("t12", "fail", 5 * SLOW)
    expect("tls: " in line["reason"] and ("version" in line["reason"]),
           f"the reason names the version: {line!r}")


@test
def handshake_stall_times_out_naming_the_phase(ctx):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    ctx.sockets.append(srv)
    held = []

    def accept_and_stall():
        try:
            while True:
                c, _ = srv.accept()
                c.recv(4096)  # the ClientHello; never answered
                held.append(c)
        except OSError:
            pass
    threading.Thread(target=accept_and_stall, daemon=True).start()
    r = check(f"https://127.0.0.1:{srv.getsockname()[1]}/", *ca_flags(), timeout=ms(800))
    expect_fail(r, f"timeout after {800 * SLOW}ms (tls handshake)")
    expect(r.elapsed < 5 * SLOW, f"bounded by the timeout: {r!r}")
    for c in held:
        c.close()


@test
def plain_http_on_https_url(ctx):
    crt, key = CERTS.path("good")
    n = tlsfixtures.Nginx(ctx, crt, key, ssl=False)
    r = check(f"https://127.0.0.1:{n.port}/", *ca_flags(), timeout=ms(5000))
    expect(r.rc == 1 and r.elapsed < 2 * SLOW, f"fails at once, not at the timeout: {r!r}")
    expect('tls: the server answered with non-TLS bytes "HTTP/1.1 400 Bad Request"; is it plain '
           f'HTTP on a TLS URL? (127.0.0.1:{n.port})' in r.out, f"says it is not TLS: {r!r}")


@test
def client_certificate(ctx):
    s = server(ctx, "good", "-Verify", "1", "-CAfile", CERTS.ca)
    r = check(f"https://127.0.0.1:{s.port}/", *ca_flags())
    # TLS 1.3: the server rejects us after our Finished; we read its alert, or our request
    # races its close and the write fails
    expect(r.rc == 1 and any(w in r.out for w in ("tls: alert ", "write: broken pipe",
                                                  "connection reset")),
           f"no client certificate: {r!r}")
    crt, key = CERTS.path("client")
    r = check(f"https://127.0.0.1:{s.port}/", *ca_flags(), "--client-cert", crt, "--client-key", key)
    expect(r.rc == 0, f"with --client-cert/--client-key: {r!r}")


@test
def expiry_warning_health_and_metrics(ctx):
    s = server(ctx, "soon")
    path = write_config([{"name": "soon", "url": f"https://127.0.0.1:{s.port}/",
                          "tls": {"ca_file": CERTS.ca, "warn_cert_expiry": "14d"}}])
    h = ctx.healthagg(["--config", path, "--interval", ms(300), "--timeout", ms(250)])
    h.wait_transition("soon", "pass", 5 * SLOW)

    def health():
        st, _, body = h.get("/health")
        return json.loads(body)
    doc = harness.poll(health, lambda d: d["status"] == "warn", 5 * SLOW, "/health warn")
    entry = doc["checks"]["soon"][0]
    expect("certificate expires in 3d (notAfter " in entry["output"], f"reason: {entry!r}")
    when = CERTS.not_after["soon"]
    expect(entry.get("certNotAfter") == when.strftime("%Y-%m-%dT%H:%M:%SZ"),
           f"/health carries the notAfter: {entry!r}")
    expect_eq(h.readyz()[0], 200, "a warning is still ready")
    _, _, metrics = h.get("/metrics")
    line = [l for l in metrics.decode().splitlines()
            if l.startswith('healthagg_check_cert_expiry_timestamp_seconds{check="soon"}')]
    expect(line and int(float(line[0].split()[-1])) == int(when.timestamp()),
           f"metric = notAfter {int(when.timestamp())}: {line!r}")


@test
def resumption_in_effect(ctx):
    crt, key = CERTS.path("good")
    for protocols in ("TLSv1.3", "TLSv1.2"):
        n = tlsfixtures.Nginx(ctx, crt, key, protocols=protocols)
        path = write_config([{"name": "n", "url": f"https://127.0.0.1:{n.port}/",
                              "tls": {"ca_file": CERTS.ca}}])
        h = ctx.healthagg(["--config", path, "--interval", ms(150), "--timeout", ms(120)])
        h.wait_transition("n", "pass", 5 * SLOW)
        full, resumed = harness.poll(n.handshakes, lambda c: c[1] >= 5, 10 * SLOW,
                                     "5 resumed handshakes")
        expect(full == 1, f"{protocols}: one full handshake, then resumed ones; nginx saw "
                          f"{full} full and {resumed} resumed")
        h.proc.kill()


@test
def tls_config_errors(ctx):
    cases = [
        ({"url": "https://127.0.0.1:1/", "tls": {"ca_file": "/nonexistent/ca.pem"}},
         "checks[0].tls.ca_file: cannot read /nonexistent/ca.pem"),
        ({"url": "https://127.0.0.1:1/", "tls": {"ca_file": CERTS.ca, "min_version": "1.4"}},
         "checks[0].tls.min_version: must be \"1.2\" or \"1.3\""),
        ({"url": "https://127.0.0.1:1/", "tls": {"ca_file": CERTS.ca, "warn_cert_expiry": "2w"}},
         "checks[0].tls.warn_cert_expiry: "),
        ({"url": "https://127.0.0.1:1/", "tls": {"ca_file": CERTS.ca, "verify": False}},
         "checks[0].tls.verify: unknown key"),
        ({"url": "https://127.0.0.1:1/", "tls": {"ca_file": CERTS.ca,
                                                 "client_cert": CERTS.path("client")[0]}},
         "checks[0].tls.client_key: missing"),
        ({"url": "http://127.0.0.1:1/", "tls": {"ca_file": CERTS.ca}}, "checks[0].tls"),
    ]
    for chk, needle in cases:
        path = write_config([chk])
        r = cli(["validate", "--config", path])
        expect(r.rc == 2 and needle in r.err, f"{chk!r}: expected exit 2 with {needle!r}; {r!r}")
    # `check` flags: a bad file is named by its flag's key
    r = check("https://127.0.0.1:1/", "--ca-file", "/nonexistent/ca.pem")
    expect(r.rc == 1 and "--ca-file: cannot read /nonexistent/ca.pem" in r.out, f"{r!r}")
    r = check("http://127.0.0.1:1/", "--ca-file", CERTS.ca)
    expect(r.rc == 1 and "TLS flags apply to https://" in r.out, f"{r!r}")


@test
def insecure_skip_verify_is_logged_at_start(ctx):
    s = server(ctx, "selfsigned")
    path = write_config([{"name": "lax", "url": f"https://127.0.0.1:{s.port}/",
                          "tls": {"insecure_skip_verify": True}}])
    h = ctx.healthagg(["--config", path, "--interval", ms(300), "--timeout", ms(250)])
    h.wait_event(lambda e: e.get("event") == "tls_insecure" and e.get("check") == "lax" and
                 e.get("level") == "warn", 5 * SLOW, "a tls_insecure warning")
    h.wait_transition("lax", "pass", 5 * SLOW)


if __name__ == "__main__":
    gone = tlsfixtures.missing("openssl", "nginx")
    if gone:
        print(f"SKIPPED: {', '.join(gone)} not installed (tests/deploy/deps.sh installs them)")
        sys.exit(tlsfixtures.SKIP)
    CERTS = tlsfixtures.Certs()
    harness.TEST_LIMIT_S *= SLOW
    try:
        harness.run(__name__)
    finally:
        CERTS.cleanup()
