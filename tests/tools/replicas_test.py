#!/usr/bin/env python3
"""Read replicas behind HAProxy, end to end on 127.0.0.1.

Starts one primary (`imsat serve --db`), two followers (`imsat serve --follow`, caught up every
200 ms) and HAProxy with the configuration shipped in tools/haproxy/replicas.cfg. Writes go to
the primary; reads go through HAProxy. Checks that every write becomes visible through HAProxy
within the follow interval plus a margin, that a follower refuses writes with 403 naming the
primary, and that reads keep succeeding while one follower is killed.

Usage: replicas_test.py IMSAT_BINARY REPO_ROOT. Exits 77 (skipped, with the reason) only when
haproxy is not installed; tools/setup.sh installs it.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

INTERVAL_MS = 200
MARGIN_S = 2.0  # allowed lag beyond the interval (a loaded 2-core CI machine)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, timeout=5):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_ready(port, proc, what):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"FAIL: {what} exited with {proc.returncode}")
        try:
            if request(port, "GET", "/healthz", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"FAIL: {what} did not answer on port {port} within 30 s")


def main():
    imsat, root = sys.argv[1], sys.argv[2]
    haproxy = shutil.which("haproxy") or (os.path.exists("/usr/sbin/haproxy") and "/usr/sbin/haproxy")
    if not haproxy:
        print("SKIPPED: haproxy is not installed (Debian package haproxy; tools/setup.sh "
              "installs it)")
        return 77
    work = tempfile.mkdtemp(prefix="imsat-replicas-")
    procs = []
    try:
        store = os.path.join(work, "db")
        ports = {name: free_port() for name in ("primary", "f1", "f2", "lb")}
        log = open(os.path.join(work, "servers.log"), "w")
        primary = subprocess.Popen([imsat, "serve", "--db", store, "--bits", "64", "--port",
                                    str(ports["primary"])], stdout=log, stderr=log)
        procs.append(primary)
        wait_ready(ports["primary"], primary, "the primary")
        followers = []
        for name in ("f1", "f2"):
            p = subprocess.Popen([imsat, "serve", "--follow", store, "--port", str(ports[name]),
                                  "--follow-interval-ms", str(INTERVAL_MS)], stdout=log,
                                 stderr=log)
            procs.append(p)
            followers.append(p)
            wait_ready(ports[name], p, f"follower {name}")
        env = dict(os.environ, IMSAT_LB_PORT=str(ports["lb"]), IMSAT_FOLLOWER1=str(ports["f1"]),
                   IMSAT_FOLLOWER2=str(ports["f2"]))
        cfg = os.path.join(root, "tools", "haproxy", "replicas.cfg")
        lb = subprocess.Popen([haproxy, "-f", cfg, "-db"], env=env, stdout=log, stderr=log)
        procs.append(lb)
        wait_ready(ports["lb"], lb, "haproxy")

        # A follower refuses writes, naming the primary (by its folder's name: error messages
        # never show the server's directory layout).
        status, body = request(ports["f1"], "POST", "/v1/items",
                               [{"key": "x", "code": "00" * 8}])
        assert status == 403 and body["code"] == "read_only_follower" and \
            f"follows {os.path.basename(store)} " in body["error"] and \
            os.path.dirname(store) not in body["error"], (status, body)

        # Every write through the primary is visible through HAProxy within the interval.
        lags = []
        for i in range(40):
            key = f"item-{i}"
            status, body = request(ports["primary"], "POST", "/v1/items",
                                   [{"key": key, "code": f"{i:016x}", "label": i % 3}])
            assert status == 200, (status, body)
            written = time.time()
            while True:
                status, body = request(ports["lb"], "GET", f"/v1/items/{key}")
                if status == 200:
                    break
                assert status == 404, (status, body)
                if time.time() - written > INTERVAL_MS / 1000 + MARGIN_S:
                    raise SystemExit(f"FAIL: {key} not visible through haproxy after "
                                     f"{time.time() - written:.2f} s")
                time.sleep(0.01)
            lags.append(time.time() - written)
        lags.sort()
        print(f"replica lag over {len(lags)} writes: median {lags[len(lags) // 2] * 1000:.0f} ms, "
              f"max {lags[-1] * 1000:.0f} ms (interval {INTERVAL_MS} ms)")

        # Reads go on while one follower is killed.
        followers[0].send_signal(signal.SIGKILL)
        followers[0].wait()
        failures = 0
        reads = 0
        end = time.time() + 3
        while time.time() < end:
            status, body = request(ports["lb"], "POST", "/v1/search",
                                   {"code": "00" * 8, "k": 5})
            reads += 1
            if status != 200 or len(body["hits"]) != 5:
                failures += 1
        print(f"{reads} reads through haproxy while one follower was down: {failures} failed")
        assert failures == 0, failures
        # A write made now still reaches the surviving follower.
        status, _ = request(ports["primary"], "POST", "/v1/items",
                            [{"key": "late", "code": "ff" * 8}])
        assert status == 200
        deadline = time.time() + INTERVAL_MS / 1000 + MARGIN_S
        while request(ports["lb"], "GET", "/v1/items/late")[0] != 200:
            if time.time() > deadline:
                raise SystemExit("FAIL: a write after the kill never became visible")
            time.sleep(0.01)
        print("PASS")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
