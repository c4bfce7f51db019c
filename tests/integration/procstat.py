"""Resource and metrics helpers shared by test_faults.py and test_limits.py (stdlib only).

fd counts and RSS come from /proc/<pid>; probe counts from healthagg's own /metrics, so a test
can wait for "N more probe cycles" instead of sleeping."""
import json
import os
import re
import socket
import time

from harness import expect, fail, http_request, poll


def fd_targets(pid):
    """{fd: target} of a process's open file descriptors."""
    out = {}
    base = f"/proc/{pid}/fd"
    for name in os.listdir(base):
        try:
            out[int(name)] = os.readlink(os.path.join(base, name))
        except OSError:
            pass  # closed between listdir and readlink
    return out


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    fail(f"no VmRSS in /proc/{pid}/status")


def settled_fds(pid, window=0.6):
    """The fd count with no probe or request in flight: the minimum over a short window (a probe
    holds its socket for about a millisecond per interval)."""
    low = None
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        n = fd_count(pid)
        low = n if low is None else min(low, n)
        time.sleep(0.005)
    return low


def expect_fds_back(pid, baseline, before_targets, what, timeout=3.0):
    """Waits until the process holds no more fds than `baseline`; on failure lists the extra ones."""
    deadline = time.monotonic() + timeout
    while True:
        n = fd_count(pid)
        if n <= baseline:
            return n
        if time.monotonic() > deadline:
            now = fd_targets(pid)
            extra = {fd: t for fd, t in now.items() if before_targets.get(fd) != t}
            fail(f"{what}: fd leak: {n} open fds, {baseline} before; new or changed: {extra}")
        time.sleep(0.005)


def metrics(port):
    st, _, body = http_request("GET", port, "/metrics")
    expect(st == 200, f"/metrics answered {st}")
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-z_]+)(\{[^}]*\})? ([-+0-9.eE]+|NaN)', line)
        if not m:
            fail(f"/metrics: unparsable line {line!r}")
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def check_metric(port, name, check):
    return metrics(port)[f'{name}{{check="{check}"}}']


def probes(port, check="app"):
    return int(check_metric(port, "healthagg_check_probes_total", check))


def wait_probes(port, n, check="app", per_probe_s=1.5):
    """Waits until `n` more probes of `check` have completed; returns the new total."""
    start = probes(port, check)
    return poll(lambda: probes(port, check), lambda v: v >= start + n, n * per_probe_s + 2,
                f"{n} more probes of {check!r} (from {start})", interval=0.05)


def health_entry(port, check):
    st, _, body = http_request("GET", port, "/health")
    doc = json.loads(body)
    entries = doc.get("checks", {}).get(check)
    expect(isinstance(entries, list) and entries, f"/health has no entry for {check!r}: {doc}")
    return entries[0]


def open_idle(port, n, timeout=2.0):
    """n connected sockets that send nothing."""
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            socks.append(s)
    except OSError:
        for s in socks:
            s.close()
        raise
    return socks


def peer_closed(s, timeout=0.05):
    """True when the peer has closed (EOF or reset) within `timeout`; False while it stays open."""
    s.settimeout(timeout)
    try:
        data = s.recv(65536)
        return data == b""
    except socket.timeout:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
