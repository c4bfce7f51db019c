"""Run a command (healthagg under valgrind or an ASan build) so that it always exits through
its own SIGTERM path, even when whoever started it uses SIGKILL.

    python3 sanitizers-wrap.py PIDDIR -- COMMAND ARGS...

The integration harness stops every process it started with SIGKILL; a process killed that way
never runs valgrind's or LeakSanitizer's leak check. So this wrapper sits in between: the command
runs as its child with PR_SET_PDEATHSIG = SIGTERM (the kernel sends it SIGTERM when the wrapper
dies, however it dies), SIGTERM/SIGINT/SIGHUP sent to the wrapper are forwarded, and the wrapper
exits with the child's exit status. The child's pid is written to PIDDIR/<pid> so that
tests/sanitizers.sh can wait for orphaned children to finish their leak check before it reads
the reports. stdin/stdout/stderr are inherited.
"""
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print("usage: sanitizers-wrap.py PIDDIR -- COMMAND ARGS...", file=sys.stderr)
        return 2
    piddir, argv = sys.argv[1], sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)

    def in_child():
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() == 1:  # the wrapper died before prctl: don't outlive it
            os.kill(os.getpid(), signal.SIGTERM)

    child = subprocess.Popen(argv, preexec_fn=in_child)
    try:
        os.makedirs(piddir, exist_ok=True)
        with open(os.path.join(piddir, str(child.pid)), "w") as f:
            f.write(" ".join(argv) + "\n")
    except OSError:
        pass

    def forward(signum, frame):
        try:
            child.send_signal(signum)
        except OSError:
            pass
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCONT):
        signal.signal(s, forward)
    while True:
        try:
            rc = child.wait()
            break
        except InterruptedError:
            continue
    if rc < 0:  # killed by a signal: die the same way
        signal.signal(-rc, signal.SIG_DFL)
        os.kill(os.getpid(), -rc)
        return 128 - rc
    return rc


if __name__ == "__main__":
    sys.exit(main())
