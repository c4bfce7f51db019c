#!/usr/bin/python3
"""bench/detect_defaults.py - time from the app failing to `healthagg probe` exiting 1, with
healthagg's default settings (interval 5s, timeout 2s, failure_threshold 3).

For each trial: start the test app and `healthagg serve` on 127.0.0.1, wait until the probe
says healthy, wait a varying fraction of the interval (so the failure lands at different
points of the probe cycle), then make the app fail - switch it to 503, or kill it - and poll
`healthagg probe` every 50 ms until it exits 1. Prints every time and the median.

    bench/detect_defaults.py [--trials N] [--healthagg PATH] [--testapp PATH]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--healthagg", default=os.path.join(ROOT, "build", "healthagg"))
    ap.add_argument("--testapp", default=os.path.join(ROOT, "build", "tests", "testapp", "testapp"))
    a = ap.parse_args()

    def probe(port):
        return subprocess.run([a.healthagg, "probe", "--url", f"http://127.0.0.1:{port}/readyz"],
                              capture_output=True, timeout=5).returncode

    results = {"503": [], "kill": []}
    for trial in range(a.trials):
        for mode in results:
            app = subprocess.Popen([a.testapp], stdout=subprocess.PIPE, text=True)
            ha = None
            try:
                service, control = app.stdout.readline().split()[1:3]
                ha = subprocess.Popen([a.healthagg, "serve", "--listen", "127.0.0.1:0", "--check",
                                       f"app=http://127.0.0.1:{service}/healthz"],
                                      stdout=subprocess.PIPE, text=True)
                port = ha.stdout.readline().split('"listen":"127.0.0.1:')[1].split('"')[0]
                deadline = time.monotonic() + 10
                while probe(port) != 0:
                    if time.monotonic() > deadline:
                        sys.exit("healthagg never became healthy")
                    time.sleep(0.05)
                time.sleep((trial * 1.7) % 5)  # land the failure at a different point of the cycle
                t0 = time.monotonic()
                if mode == "503":
                    urllib.request.urlopen(f"http://127.0.0.1:{control}/mode/status:503").read()
                else:
                    app.kill()
                while probe(port) == 0:
                    if time.monotonic() - t0 > 40:
                        sys.exit("probe never turned unhealthy")
                    time.sleep(0.05)
                results[mode].append(time.monotonic() - t0)
            finally:
                for p in (ha, app):
                    if p and p.poll() is None:
                        p.terminate()
                        p.wait(timeout=10)
    for mode, times in results.items():
        print(f"app {'answers 503' if mode == '503' else 'killed'}: "
              f"{', '.join(f'{t:.2f}' for t in times)} s; median {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()
