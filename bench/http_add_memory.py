#!/usr/bin/env python3
"""Resident memory of `imsat serve` after N items arrive over HTTP.

Starts `imsat serve --db NEW --bits 64` on a free port, adds N random 64-bit codes with string
keys and labels through POST /v1/items in batches, and prints the server's resident memory
(VmRSS) before, right after, and 5 s after the load, per item. Usage:

    python3 bench/http_add_memory.py build/tools/imsat [N] [BATCH]
"""
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    imsat = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    work = tempfile.mkdtemp(prefix="imsat-httpmem-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([imsat, "serve", "--db", os.path.join(work, "db"), "--bits", "64",
                               "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        idle = rss_kib(server.pid)
        rng = random.Random(1)
        t0 = time.time()
        for start in range(0, n, batch):
            items = [{"key": f"item-{i}", "code": f"{rng.getrandbits(64):016x}", "label": i % 10}
                     for i in range(start, min(n, start + batch))]
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/items",
                                         data=json.dumps(items).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=120).read()
        seconds = time.time() - t0
        after = rss_kib(server.pid)
        time.sleep(5)
        settled = rss_kib(server.pid)
        info = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/info").read())
        print(f"| N | batch | items/s | RSS idle (MiB) | RSS after (MiB) | RSS 5 s later (MiB) "
              f"| bytes/item (5 s later - idle) | in-memory arrays (bytes/item) |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        print(f"| {n} | {batch} | {n / seconds:,.0f} | {idle / 1024:.0f} | {after / 1024:.0f} | "
              f"{settled / 1024:.0f} | {(settled - idle) * 1024 / n:.1f} | "
              f"{info['memory_bytes'] / n:.1f} |")
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
