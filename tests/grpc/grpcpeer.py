"""The gRPC test peer for the grpc:// tests: the real Node server (tests/grpc/server.js on
@grpc/grpc-js + grpc-health-check) started per test on an ephemeral 127.0.0.1 port, and raw-socket
fakes for what no real server does (garbage, oversized frames, accepting and never answering).

The npm packages live in the build directory (ctest's fixture grpc.npm_install runs setup.sh);
the directory comes from HA_GRPC_PEER. When node or the packages are missing, require_peer()
prints `SKIPPED: <why>` and exits 77, which ctest reports as a skip."""
import os
import shutil
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

SERVER_JS = os.path.join(HERE, "server.js")
CLIENT_JS = os.path.join(HERE, "client.js")


def peer_dir():
    return os.environ.get("HA_GRPC_PEER", "")


def node_env():
    return {"NODE_PATH": os.path.join(peer_dir(), "node_modules")}


def require_peer():
    """Exit 77 with SKIPPED when the Node peer cannot run here."""
    if not shutil.which("node"):
        print("SKIPPED: node not found (deploy/deps.sh --tests installs nodejs)", flush=True)
        sys.exit(77)
    mods = os.path.join(peer_dir(), "node_modules", "@grpc", "grpc-js")
    if not peer_dir() or not os.path.isdir(mods):
        print(f"SKIPPED: the gRPC peer's npm packages are not installed in {peer_dir()!r} "
              "(ctest's grpc.npm_install runs tests/grpc/setup.sh DIR)", flush=True)
        sys.exit(77)


class GrpcServer:
    """server.js in one mode; set()/clear() switch service statuses at run time."""

    def __init__(self, ctx, mode="health", statuses=None, port=0, require=None, tls=None,
                 client_ca=None):
        argv = ["node", SERVER_JS, "--mode", mode, "--port", str(port)]
        if tls:
            argv += ["--tls", tls[0], tls[1]]
            if client_ca:  # mTLS: the server requires a client certificate signed by it
                argv += ["--client-ca", client_ca]
        for svc, st in (statuses or {}).items():
            argv += ["--status", f"{svc or '-'}={st}"]
        for k, v in (require or {}).items():
            argv += ["--require-metadata", f"{k}={v}"]
        self.proc = ctx.spawn(f"grpc-server({mode})", argv, env=node_env(),
                              stdin=subprocess.PIPE)
        line = self.proc.wait_line(lambda l: l.startswith("listening "), 20,
                                   "the server's 'listening' line")
        self.port = int(line.split()[1])
        self.addr = f"127.0.0.1:{self.port}"
        self.acks = 0

    def _control(self, line):
        start = len(self.proc.lines)
        self.proc.p.stdin.write((line + "\n").encode())
        self.proc.p.stdin.flush()
        got = self.proc.wait_line(lambda l: l == "ok" or l.startswith("error"), 5,
                                  f"the answer to {line!r}", start)
        if got != "ok":
            harness.fail(f"grpc server: {line!r}: {got}")

    def set(self, service, status):
        self._control(f"set {service or '-'} {status}")

    def clear(self, service):
        self._control(f"clear {service or '-'}")

    def kill(self):
        self.proc.kill()


class RawFake:
    """A TCP listener that answers every connection with `reply` (bytes, sent once the client's
    first bytes arrive), then keeps it open (`hold`) or ends it: a FIN that still reads what the
    client sends (so its late writes cannot fail), then close. reply=None: accept, read and never
    answer."""

    def __init__(self, ctx, reply=None, hold=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.reply, self.hold = reply, hold
        self.conns = []
        self.stopped = False
        ctx.sockets.append(self)  # Ctx.cleanup() calls close()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            c.settimeout(10)
            c.recv(65536)
            if self.reply is not None:
                c.sendall(self.reply)
                if not self.hold:
                    c.shutdown(socket.SHUT_WR)
            while c.recv(65536):
                pass
        except OSError:
            pass
        finally:
            if not self.hold or self.stopped:
                try:
                    c.close()
                except OSError:
                    pass

    def close(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
