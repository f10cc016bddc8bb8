#!/usr/bin/env python3
"""Replica lag under a steady write load.

Starts a primary (`imsat serve --db NEW --bits 64`) and a follower (`imsat serve --follow`, caught
up every INTERVAL_MS, the default 500). A writer thread adds items to the primary at a steady rate
(batches of BATCH random 64-bit codes, RATE items/s in all) for the whole run; meanwhile a probe
writes a marker item to the primary at random moments (50 to 350 ms apart, so that they do not
lock to the follower's catch-up phase) and polls the follower for it every 5 ms: the lag
is the time from the primary's acknowledgement to the first successful read on the follower.
Prints the load achieved and the lag distribution. Usage:

    python3 bench/replica_lag.py build/tools/imsat [SECONDS] [RATE] [INTERVAL_MS] [BATCH]
"""
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def wait_ready(port, proc, what):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            if call(port, "GET", "/healthz", timeout=1) == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"{what} did not answer on port {port}")


def main():
    imsat = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 2000
    interval_ms = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    tmp = tempfile.mkdtemp(prefix="imsat-lag-")
    db = os.path.join(tmp, "db")
    pp, fp = free_port(), free_port()
    procs = []
    try:
        primary = subprocess.Popen([imsat, "serve", "--db", db, "--bits", "64", "--port", str(pp)],
                                   stderr=subprocess.DEVNULL)
        procs.append(primary)
        wait_ready(pp, primary, "the primary")
        follower = subprocess.Popen([imsat, "serve", "--follow", db, "--port", str(fp),
                                     "--follow-interval-ms", str(interval_ms)],
                                    stderr=subprocess.DEVNULL)
        procs.append(follower)
        wait_ready(fp, follower, "the follower")

        stop = threading.Event()
        written = [0]
        failures = [0]

        def writer():
            rng = random.Random(1)
            period = batch / rate
            next_at = time.time()
            n = 0
            while not stop.is_set():
                items = [{"key": f"load-{n + i}", "code": "%016x" % rng.getrandbits(64)}
                         for i in range(batch)]
                if call(pp, "POST", "/v1/items", items) == 200:
                    written[0] += batch
                else:
                    failures[0] += 1
                n += batch
                next_at += period
                time.sleep(max(0.0, next_at - time.time()))

        lags = []

        def probe():
            rng = random.Random(2)
            k = 0
            while not stop.is_set():
                key = f"marker-{k}"
                k += 1
                if call(pp, "POST", "/v1/items", [{"key": key, "code": "00000000000000ff"}]) != 200:
                    failures[0] += 1
                    continue
                acked = time.time()
                while call(fp, "GET", f"/v1/items/{key}") != 200:
                    if time.time() - acked > 30:
                        sys.exit(f"{key} not visible on the follower after 30 s")
                    time.sleep(0.005)
                lags.append(time.time() - acked)
                time.sleep(rng.uniform(0.05, 0.35))

        threads = [threading.Thread(target=writer), threading.Thread(target=probe)]
        t0 = time.time()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.time() - t0
        lags.sort()
        ms = [1000 * x for x in lags]

        def pct(p):
            return ms[min(len(ms) - 1, int(p / 100 * len(ms)))]

        print(f"steady load on the primary: {written[0] / elapsed:,.0f} items/s in batches of "
              f"{batch} ({written[0]:,} items in {elapsed:.1f} s, {failures[0]} failed requests)")
        print(f"follower caught up every {interval_ms} ms; {len(ms)} markers, lag from the "
              f"primary's acknowledgement to a read on the follower:")
        print(f"  median {statistics.median(ms):.0f} ms, p90 {pct(90):.0f} ms, p99 {pct(99):.0f} ms, "
              f"max {ms[-1]:.0f} ms")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
