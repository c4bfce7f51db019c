"""Real servers the integration tests start on 127.0.0.1: redis-server and PostgreSQL.

Owns: finding the binaries, picking a free loopback port, starting each server as a child of
the test (PostgreSQL as the unprivileged user `nobody`, through setpriv, so the server is the
direct child and is stopped by its pid), waiting until it answers, and stopping it cleanly
(SIGTERM / SIGINT before SIGKILL, see harness.Proc.stop_signal) and removing its temporary
directory when the test ends. A missing binary is a skip naming the package
(deploy/deps.sh --tests installs both).
"""
import glob
import os
import pwd
import shutil
import signal
import socket
import tempfile

from harness import skip, wait_until


def free_port():
    """A loopback port nothing listens on right now (servers that cannot take port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port, send, expect):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            if send:
                s.sendall(send)
            return s.recv(64).startswith(expect)
    except OSError:
        return False


class Redis:
    def __init__(self, ctx, password=None):
        exe = shutil.which("redis-server")
        if not exe:
            skip("redis-server is not installed (Debian redis-server; deploy/deps.sh --tests)")
        self.dir = tempfile.mkdtemp(prefix="healthagg-redis-")
        ctx.on_cleanup(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        for _ in range(5):  # the free port may be taken between the probe and the bind
            self.port = free_port()
            argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
                    "--protected-mode", "no"]
            if password:
                argv += ["--requirepass", password]
            self.proc = ctx.spawn("redis-server", argv, stop_signal=signal.SIGTERM)
            try:
                wait_until(lambda: not self.proc.alive() or
                           _answers(self.port, b"PING\r\n", b"+PONG" if not password else
                                    b"-NOAUTH"), 10, "redis-server to answer PING")
            except Exception:  # noqa: BLE001 - retried on another port, then re-raised
                if self.proc.alive():
                    raise
            if self.proc.alive():
                return
        raise RuntimeError("redis-server did not start: " + " | ".join(self.proc.lines[-5:]))

    def stop(self):
        self.proc.kill()  # SIGTERM first (stop_signal)


def postgres_bindir():
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(cand, "postgres"), os.X_OK):
            return cand
    exe = shutil.which("postgres")
    return os.path.dirname(os.path.realpath(exe)) if exe else None


class Postgres:
    """initdb in a temporary directory, then postgres on a loopback port, as `nobody`."""

    def __init__(self, ctx, user="nobody"):
        bindir = postgres_bindir()
        if not bindir:
            skip("PostgreSQL is not installed (Debian postgresql; deploy/deps.sh --tests)")
        setpriv = shutil.which("setpriv")
        if not setpriv:
            skip("setpriv (util-linux) is missing")
        as_user = []
        if os.getuid() == 0:  # postgres refuses to run as root
            pw = pwd.getpwnam(user)
            as_user = [setpriv, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                       "--clear-groups", "--"]
        self.dir = tempfile.mkdtemp(prefix="healthagg-pg-")
        ctx.on_cleanup(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        data = os.path.join(self.dir, "data")
        if as_user:
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        init = ctx.spawn("initdb", as_user + [os.path.join(bindir, "initdb"), "-D", data,
                                              "-U", "postgres", "--auth=trust", "-E", "UTF8",
                                              "--no-sync"])
        rc = init.wait_exit(120)
        if rc != 0:
            raise RuntimeError(f"initdb exited {rc}: " + " | ".join(init.err_lines[-5:]))
        for _ in range(5):
            self.port = free_port()
            self.proc = ctx.spawn("postgres", as_user + [
                os.path.join(bindir, "postgres"), "-D", data, "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
                "-c", "fsync=off", "-c", "ssl=off", "-c", "logging_collector=off"],
                stop_signal=signal.SIGINT)  # fast shutdown: a SIGKILL leaves shared memory
            ssl_request = bytes.fromhex("0000000804d2162f")
            wait_until(lambda: not self.proc.alive() or
                       _answers(self.port, ssl_request, b"N"), 30,
                       "postgres to answer an SSLRequest")
            if self.proc.alive():
                return
        raise RuntimeError("postgres did not start: " + " | ".join(self.proc.err_lines[-5:]))

    def stop(self):
        self.proc.kill()  # SIGINT first (stop_signal)
