"""TLS test fixtures: certificates made with the openssl CLI, and real TLS servers on loopback.

Owns: a private CA and the server/client certificates the TLS tests need (good, RSA, expired,
not-yet-valid, wrong-name, soon-expiring, self-signed, IP-SAN-only, SNI-only, client), generated
into a temporary directory once per test file (`openssl ca` sets exact validity dates, which
`openssl x509` of Debian's OpenSSL 3.0 cannot); `openssl s_server` and nginx (with ssl) started as
harness processes on ephemeral ports, so ctx.cleanup() kills them with the test.

Peers missing (openssl, nginx) -> `missing()` names them; the test file prints `SKIPPED: ...` and
exits 77. tests/deploy/deps.sh installs both, so CI never skips.
"""
import datetime
import os
import shutil
import socket
import subprocess
import tempfile

import harness

SKIP = 77


def missing(*tools):
    """Names of tools (openssl, nginx) not found on this machine."""
    found = {"openssl": shutil.which("openssl"),
             "nginx": shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")}
    return [t for t in tools if not found.get(t)]


def _run(argv, cwd):
    r = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr.decode(errors='replace')[-600:]}")


def _stamp(dt):
    return dt.strftime("%Y%m%d%H%M%SZ")


CA_CONFIG = """[ca]
default_ca = ca_default
[ca_default]
dir = {d}
database = {d}/index.txt
new_certs_dir = {d}/newcerts
serial = {d}/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
[policy_any]
commonName = supplied
"""


class Certs:
    """Generates everything into `dir` (a new temporary directory by default).
    Attributes: ca (PEM path), ca_key, other_ca; path(name) -> (crt, key) for servers."""

    SERVER_SANS = "DNS:localhost,IP:127.0.0.1,IP:::1,DNS:api.internal"

    def __init__(self, dir=None):
        self.dir = dir or tempfile.mkdtemp(prefix="healthagg-tls-")
        d = self.dir
        os.makedirs(os.path.join(d, "newcerts"), exist_ok=True)
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write(CA_CONFIG.format(d=d))
        self.ca, self.ca_key = self._self_signed("ca", "healthagg test CA", ca=True)
        self.other_ca, _ = self._self_signed("other-ca", "some other CA", ca=True)
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        day = datetime.timedelta(days=1)
        hour = datetime.timedelta(hours=1)
        self.not_after = {}
        self._issue("good", "good", self.SERVER_SANS, now - hour, now + 90 * day)
        self._issue("rsa", "rsa", self.SERVER_SANS, now - hour, now + 90 * day, rsa=True)
        self._issue("expired", "expired", self.SERVER_SANS, now - 60 * day, now - 2 * day)
        self._issue("future", "future", self.SERVER_SANS, now + 30 * day, now + 60 * day)
        self._issue("wrongname", "*.example.com", "DNS:*.example.com", now - hour, now + 90 * day)
        self._issue("soon", "soon", self.SERVER_SANS, now - hour, now + 3 * day + hour)
        self._issue("iponly", "iponly", "IP:127.0.0.1", now - hour, now + 90 * day)
        self._issue("sni", "api.internal", "DNS:api.internal", now - hour, now + 90 * day)
        self._issue("client", "healthagg-client", None, now - hour, now + 90 * day, client=True)
        self._self_signed("selfsigned", "localhost", san=self.SERVER_SANS)

    def path(self, name):
        return os.path.join(self.dir, name + ".crt"), os.path.join(self.dir, name + ".key")

    def _key(self, name, rsa=False):
        key = os.path.join(self.dir, name + ".key")
        if rsa:
            _run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                  "-out", key], self.dir)
        else:
            _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", key], self.dir)
        return key

    def _self_signed(self, name, cn, ca=False, san=None):
        key = self._key(name)
        crt = os.path.join(self.dir, name + ".crt")
        argv = ["openssl", "req", "-x509", "-new", "-key", key, "-out", crt, "-days", "30",
                "-subj", "/CN=" + cn]
        if ca:
            argv += ["-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
        else:
            argv += ["-addext", "basicConstraints=CA:FALSE"]
        if san:
            argv += ["-addext", "subjectAltName=" + san]
        _run(argv, self.dir)
        return crt, key

    def _issue(self, name, cn, san, start, end, rsa=False, client=False):
        key = self._key(name, rsa)
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".crt")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
            if san:
                f.write("subjectAltName=%s\n" % san)
        _run(["openssl", "req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn], self.dir)
        _run(["openssl", "ca", "-batch", "-config", os.path.join(self.dir, "ca.cnf"),
              "-cert", self.ca, "-keyfile", self.ca_key, "-in", csr, "-out", crt, "-notext",
              "-startdate", _stamp(start), "-enddate", _stamp(end), "-extfile", ext], self.dir)
        self.not_after[name] = end

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SServer:
    """`openssl s_server -www` on 127.0.0.1:<ephemeral>: answers an HTTP GET with a status page
    that says whether the session was `New` or `Reused`, and logs handshake failures on stderr.
    extra: more s_server options (-tls1_3, -Verify 1 -CAfile ..., -servername/-cert2 ...)."""

    def __init__(self, ctx, crt, key, extra=(), www=True):
        argv = ["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", crt, "-key", key,
                "-naccept", "1000"] + (["-www"] if www else []) + list(extra)
        self.proc = ctx.spawn("s_server", argv)
        line = self.proc.wait_line(lambda l: l.startswith("ACCEPT "), 10, "s_server's ACCEPT line")
        self.port = int(line.rsplit(":", 1)[1])


class Nginx:
    """nginx with ssl on 127.0.0.1:<ephemeral>, one process (master_process off, so killing it
    leaves no worker behind), its own prefix in a temporary directory. Its
    access log records `$ssl_session_reused` ('r' or '.') per request: the server-side count of
    full and resumed handshakes. `locations` is raw nginx config for the server block."""

    def __init__(self, ctx, crt, key, protocols="TLSv1.2 TLSv1.3", extra="", locations=None,
                 ssl=True):
        self.dir = tempfile.mkdtemp(prefix="healthagg-nginx-")
        self.port = free_port()
        self.log = os.path.join(self.dir, "access.log")
        locations = locations or 'location / { return 200 "ok\\n"; }'
        conf = f"""
user root;
daemon off;
master_process off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 64; }}
http {{
    log_format reused '$ssl_session_reused $ssl_protocol $status';
    access_log {self.log} reused;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    ssl_session_cache shared:tls:1m;
    ssl_session_tickets on;
    server {{
        listen 127.0.0.1:{self.port}{" ssl" if ssl else ""};
        {f"ssl_certificate {crt}; ssl_certificate_key {key}; ssl_protocols {protocols};" if ssl else ""}
        {extra}
        {locations}
    }}
}}
"""
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = ctx.spawn("nginx", [nginx, "-p", self.dir, "-c", path, "-e",
                                        os.path.join(self.dir, "error.log")])
        harness.wait_until(self._listening, 10, "nginx listening on %d" % self.port)

    def _listening(self):
        if not self.proc.alive():
            with open(os.path.join(self.dir, "error.log")) as f:
                harness.fail("nginx exited: " + f.read()[-500:])
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def handshakes(self):
        """(full, resumed) over the requests logged so far."""
        try:
            with open(self.log) as f:
                marks = [l.split()[0] for l in f if l.strip()]
        except FileNotFoundError:
            marks = []
        return marks.count("."), marks.count("r")
