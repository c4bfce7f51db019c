"""The TLS layer (src/checks/tls.c) alone, driven by tests/tls/tls_client over a blocking socket,
against openssl s_server and nginx with certificates made by the openssl CLI (tlsfixtures.py).

Each verification failure must give its precise reason; resumption must be in effect as counted
by the server; IP-address subjectAltNames must verify. The same cases through `healthagg`
(https:// checks) are in test_tls.py. Needs openssl and nginx (tests/deploy/deps.sh installs
them); without them: SKIPPED, exit 77.
"""
import os
import socket
import subprocess
import sys
import threading

import harness
from harness import expect, fail, test
import tlsfixtures

CERTS = None
TLS_CLIENT = os.environ.get("TLS_CLIENT", "")


def client(host, port, *args, count=1):
    r = subprocess.run([TLS_CLIENT, host, str(port)] + list(args) + ["--count", str(count)],
                               capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    return r.returncode, [l for l in out.splitlines() if l]


def ok_lines(lines):
    return [l for l in lines if l.startswith("ok ")]


def expect_fail(lines, needle):
    bad = [l for l in lines if l.startswith("fail ") or l.startswith("config ")]
    expect(bad and needle in bad[0], f"expected a failure containing {needle!r}, saw {lines!r}")


def ca():
    return ["--ca-file", CERTS.ca]


def sserver(ctx, name, *extra):
    crt, key = CERTS.path(name)
    return tlsfixtures.SServer(ctx, crt, key, extra)


@test
def good_certificate_tls13_and_tls12_resumed(ctx):
    for extra in ((), ("-tls1_2",)):
        s = sserver(ctx, "good", *extra)
        rc, lines = client("127.0.0.1", s.port, *ca(), count=3)
        expect(rc == 0 and len(ok_lines(lines)) == 3, f"3 good connections: {lines!r}")
        want = "TLSv1.2" if extra else "TLSv1.3"
        expect(all(f"version={want}" in l for l in ok_lines(lines)), f"{want}: {lines!r}")
        expect("resumed=0" in lines[0] and "resumed=1" in lines[1] and "resumed=1" in lines[2],
               f"first full, then resumed: {lines!r}")
        expect(lines[-1] == "handshakes full=1 resumed=2", f"counts: {lines!r}")
        # s_server's page says per connection whether the session was new or reused
        when = CERTS.not_after["good"].strftime("%Y-%m-%dT%H:%M:%SZ")
        expect(f"not_after={when}" in lines[0], f"notAfter {when}: {lines[0]!r}")


@test
def rsa_certificate(ctx):
    s = sserver(ctx, "rsa")
    rc, lines = client("localhost", s.port, *ca())
    expect(rc == 0, f"RSA certificate (rsa_pss in 1.3): {lines!r}")
    s2 = sserver(ctx, "rsa", "-tls1_2")
    rc, lines = client("localhost", s2.port, *ca())
    expect(rc == 0 and "TLSv1.2" in lines[0], f"ECDHE-RSA in 1.2: {lines!r}")


@test
def expired(ctx):
    s = sserver(ctx, "expired")
    rc, lines = client("127.0.0.1", s.port, *ca())
    when = CERTS.not_after["expired"].strftime("%Y-%m-%dT%H:%M:%SZ")
    expect(rc == 1, f"exit 1: {lines!r}")
    expect_fail(lines, f"tls: certificate verify failed: expired (notAfter {when})")


@test
def not_yet_valid(ctx):
    s = sserver(ctx, "future")
    rc, lines = client("127.0.0.1", s.port, *ca())
    expect_fail(lines, "tls: certificate verify failed: not yet valid (notBefore ")


@test
def name_mismatch(ctx):
    s = sserver(ctx, "wrongname")
    rc, lines = client("localhost", s.port, *ca())
    expect_fail(lines, "tls: certificate name mismatch: want localhost, got *.example.com")


@test
def self_signed_and_unknown_ca(ctx):
    s = sserver(ctx, "selfsigned")
    rc, lines = client("127.0.0.1", s.port, *ca())
    expect_fail(lines, "tls: unknown CA (self-signed certificate CN=localhost)")
    g = sserver(ctx, "good")
    rc, lines = client("127.0.0.1", g.port, "--ca-file", CERTS.other_ca)
    expect_fail(lines, "tls: unknown CA")
    # insecure_skip_verify connects, and still knows the certificate's notAfter
    rc, lines = client("127.0.0.1", s.port, "--insecure")
    expect(rc == 0 and "not_after=" in lines[0] and "not_after=1970" not in lines[0],
           f"insecure: {lines!r}")


@test
def ip_address_san(ctx):
    s = sserver(ctx, "iponly")
    rc, lines = client("127.0.0.1", s.port, *ca())
    expect(rc == 0, f"a certificate naming only IP 127.0.0.1 verifies for 127.0.0.1: {lines!r}")
    rc, lines = client("localhost", s.port, *ca())
    expect_fail(lines, "tls: certificate name mismatch: want localhost, got IP:127.0.0.1")
    rc, lines = client("127.0.0.1", s.port, *ca(), "--server-name", "127.0.0.2")
    expect_fail(lines, "want 127.0.0.2, got IP:127.0.0.1")


@test
def sni_server_name(ctx):
    crt, key = CERTS.path("sni")
    s = sserver(ctx, "wrongname", "-servername", "api.internal", "-cert2", crt, "-key2", key)
    rc, lines = client("127.0.0.1", s.port, *ca(), "--server-name", "api.internal")
    expect(rc == 0, f"SNI api.internal selects the api.internal certificate: {lines!r}")
    rc, lines = client("127.0.0.1", s.port, *ca())
    expect_fail(lines, "certificate name mismatch: want 127.0.0.1, got *.example.com")


@test
def min_version(ctx):
    s12 = sserver(ctx, "good", "-tls1_2")
    rc, lines = client("127.0.0.1", s12.port, *ca(), "--min-version", "13")
    expect(rc == 1, f"a TLS 1.2-only server fails min_version 1.3: {lines!r}")
    expect_fail(lines, "tls: ")
    expect("version" in lines[0] or "protocol_version" in lines[0], f"names the version: {lines!r}")
    s13 = sserver(ctx, "good", "-tls1_3")
    rc, lines = client("127.0.0.1", s13.port, *ca(), "--min-version", "13")
    expect(rc == 0 and "TLSv1.3" in lines[0], f"1.3-only server with min_version 1.3: {lines!r}")


@test
def client_certificate_required(ctx):
    s = sserver(ctx, "good", "-Verify", "1", "-CAfile", CERTS.ca)
    rc, lines = client("127.0.0.1", s.port, *ca())
    expect(rc == 1, f"no client certificate: {lines!r}")
    expect_fail(lines, "tls: alert ")
    expect("certificate_required" in lines[0] or "handshake_failure" in lines[0],
           f"the server's alert names it: {lines!r}")
    crt, key = CERTS.path("client")
    rc, lines = client("127.0.0.1", s.port, *ca(), "--client-cert", crt, "--client-key", key)
    expect(rc == 0, f"with the client certificate: {lines!r}")


@test
def plain_http_on_tls(ctx):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    ctx.sockets.append(srv)

    def answer():
        try:
            c, _ = srv.accept()
            c.recv(4096)
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            c.close()
        except OSError:
            pass
    threading.Thread(target=answer, daemon=True).start()
    rc, lines = client("127.0.0.1", srv.getsockname()[1], *ca())
    expect_fail(lines, 'tls: the server answered with non-TLS bytes "HTTP/1.1 400 Bad Request"; '
                       "is it plain HTTP on a TLS URL?")


@test
def nginx_counts_resumed_handshakes(ctx):
    for protocols in ("TLSv1.3", "TLSv1.2"):
        crt, key = CERTS.path("good")
        n = tlsfixtures.Nginx(ctx, crt, key, protocols=protocols)
        rc, lines = client("127.0.0.1", n.port, *ca(), count=4)
        expect(rc == 0, f"nginx {protocols}: {lines!r}")
        full, resumed = harness.wait_until(lambda: n.handshakes() if sum(n.handshakes()) == 4
                                           else None, 5, "4 nginx log lines")
        expect((full, resumed) == (1, 3),
               f"nginx {protocols}: 1 full and 3 resumed handshakes, server says {full} and {resumed}")


@test
def bad_files_are_config_errors(ctx):
    rc, lines = client("127.0.0.1", 1, "--ca-file", "/nonexistent/ca.pem")
    expect(rc == 2, f"exit 2: {lines!r}")
    expect_fail(lines, "ca_file: cannot read /nonexistent/ca.pem: No such file or directory")
    junk = os.path.join(CERTS.dir, "junk.pem")
    with open(junk, "w") as f:
        f.write("not a certificate\n")
    rc, lines = client("127.0.0.1", 1, "--ca-file", junk)
    expect_fail(lines, "ca_file: no certificate could be read from")
    crt, key = CERTS.path("client")
    rc, lines = client("127.0.0.1", 1, *ca(), "--client-cert", crt)
    expect_fail(lines, "client_key: missing")
    _, other_key = CERTS.path("good")
    rc, lines = client("127.0.0.1", 1, *ca(), "--client-cert", crt, "--client-key", other_key)
    expect_fail(lines, "is not the key of the certificate")


if __name__ == "__main__":
    gone = tlsfixtures.missing("openssl", "nginx")
    if gone:
        print(f"SKIPPED: {', '.join(gone)} not installed (tests/deploy/deps.sh installs them)")
        sys.exit(tlsfixtures.SKIP)
    if not os.access(TLS_CLIENT, os.X_OK):
        fail(f"TLS_CLIENT={TLS_CLIENT!r} is not an executable")
    CERTS = tlsfixtures.Certs()
    try:
        harness.run(__name__)
    finally:
        CERTS.cleanup()
