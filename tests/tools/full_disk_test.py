#!/usr/bin/env python3
"""A full disk under a running server, end to end on a small tmpfs.

`imsat serve --data-dir` runs on a 12 MiB tmpfs. Checked:
  1. a batch larger than the free space fails inside RocksDB (the write-ahead log append): the
     answer is 507, and the server stays up well past the 5 s after which RocksDB's own recovery
     used to abort it;
  2. /healthz says "degraded" and names the collection, /metrics has imsat_store_writable 0, reads
     (count, search, item) go on;
  3. once space is freed (the tmpfs grown), writes resume by themselves;
  4. batches until the free-space reserve is reached get 507, reads go on, writes resume again
     when space returns;
  5. killed with SIGKILL and restarted, the store holds every acknowledged item: 0 lost;
  6. restarted on a disk filled to the last byte, it starts and serves reads, and writes get 507.

Usage: full_disk_test.py IMSAT_BINARY. Exits 77 (skipped, with the reason) only when this
process may not mount a tmpfs (not root, or no CAP_SYS_ADMIN).
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TOKEN = "t0ken"


def request(port, method, path, body=None, timeout=20):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}")


class Server:
    def __init__(self, binary, data_dir, log):
        self.log = open(log, "w+")
        self.proc = subprocess.Popen([binary, "serve", "--data-dir", data_dir, "--port", "0",
                                      "--token", TOKEN], stderr=self.log)
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise SystemExit(f"FAIL: imsat serve exited: {self.log.read()}")
            self.log.seek(0)
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", self.log.read())
            if m:
                self.port = int(m.group(1))
            time.sleep(0.05)
        if self.port is None:
            raise SystemExit("FAIL: imsat serve did not start within 30 s")

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def items(prefix, n, pad):
    return [{"key": f"{prefix}{i}", "code": "%016x" % random.getrandbits(64),
             "metadata": {"pad": "x" * pad}} for i in range(n)]


def main():
    binary = sys.argv[1]
    random.seed(7)
    mount = tempfile.mkdtemp(prefix="imsat-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", mount],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"SKIP: cannot mount a tmpfs here ({r.stderr.strip()}); run as root")
        os.rmdir(mount)
        sys.exit(77)
    server = None
    try:
        data_dir = os.path.join(mount, "data")
        server = Server(binary, data_dir, os.path.join(tempfile.gettempdir(), "full_disk_serve.log"))
        port = server.port
        check(request(port, "PUT", "/v1/collections/c", {"bits": 64})[0] == 201, "collection made")
        acked = []
        batch = items("a", 100, 100)
        check(request(port, "POST", "/v1/collections/c/items", batch)[0] == 200, "first batch")
        acked += [i["key"] for i in batch]

        # 1. Larger than the free space: RocksDB's log append fails.
        status, body = request(port, "POST", "/v1/collections/c/items", items("big", 650, 20000))
        check(status == 507 and body["code"] == "insufficient_storage",
              f"a batch larger than the disk gets 507 ({status} {body})")
        time.sleep(7)
        check(server.alive(), "the server is up 7 s after RocksDB ran out of space")

        # 2. Reads go on; health and metrics say so.
        status, health = request(port, "GET", "/healthz")
        check(status == 200 and health["status"] == "degraded" and "c" in health["not_writable"],
              f"/healthz is degraded naming the collection ({health})")
        status, metrics = request(port, "GET", "/metrics")
        check('imsat_store_writable{collection="c"} 0' in metrics, "metrics: not writable")
        check(request(port, "POST", "/v1/collections/c/items/count", {})[1]["count"] == len(acked),
              "count during the full disk")
        status, hits = request(port, "POST", "/v1/collections/c/search", {"key": "a1", "k": 3})
        check(status == 200 and len(hits["hits"]) == 3, "search during the full disk")

        # 3. Space freed: writes resume without a restart.
        subprocess.run(["mount", "-o", "remount,size=48m", mount], check=True)
        batch = items("b", 100, 100)
        status, body = request(port, "POST", "/v1/collections/c/items", batch)
        check(status == 200, f"writes resume once space is freed ({status} {body})")
        acked += [i["key"] for i in batch]
        check(request(port, "GET", "/healthz")[1]["status"] == "ok", "/healthz ok again")

        # 4. Small batches until the reserve: 507 before RocksDB sees the disk full.
        refused = None
        for b in range(200):
            batch = items(f"c{b}_", 200, 2000)
            status, body = request(port, "POST", "/v1/collections/c/items", batch)
            if status != 200:
                refused = (status, body)
                break
            acked += [i["key"] for i in batch]
        check(refused is not None and refused[0] == 507 and "reserve" in refused[1]["error"],
              f"the reserve check refuses with 507 ({refused})")
        check(request(port, "POST", "/v1/collections/c/items/count", {})[1]["count"] == len(acked),
              f"every acknowledged item is counted ({len(acked)})")
        subprocess.run(["mount", "-o", "remount,size=96m", mount], check=True)
        batch = items("d", 50, 100)
        check(request(port, "POST", "/v1/collections/c/items", batch)[0] == 200,
              "writes resume after the reserve is back")
        acked += [i["key"] for i in batch]

        # 5. SIGKILL and restart: nothing acknowledged is lost.
        server.kill()
        server = Server(binary, data_dir, os.path.join(tempfile.gettempdir(), "full_disk_serve2.log"))
        port = server.port
        check(request(port, "POST", "/v1/collections/c/items/count", {})[1]["count"] == len(acked),
              f"after SIGKILL and restart the store holds all {len(acked)} acknowledged items")
        for key in random.sample(acked, 50) + [acked[0], acked[-1]]:
            if request(port, "GET", f"/v1/collections/c/items/{key}")[0] != 200:
                raise SystemExit(f"FAIL: acknowledged item {key} is missing after the restart")
        print("ok: 52 acknowledged items read back one by one")

        # 6. Restart on a disk filled to the last byte: it starts, reads go on, writes get 507.
        server.kill()
        with open(os.path.join(mount, "filler"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        server = Server(binary, data_dir, os.path.join(tempfile.gettempdir(), "full_disk_serve3.log"))
        port = server.port
        check(request(port, "POST", "/v1/collections/c/items/count", {})[1]["count"] == len(acked),
              "started on a full disk, it serves reads")
        status, body = request(port, "POST", "/v1/collections/c/items", items("e", 10, 10))
        check(status == 507, f"writes on the full disk get 507 ({status} {body})")
        os.remove(os.path.join(mount, "filler"))
        status, body = request(port, "POST", "/v1/collections/c/items", items("e", 10, 10))
        check(status == 200, f"and resume once the filler is removed ({status} {body})")
        print("full_disk_test: all checks passed")
    finally:
        if server is not None and server.alive():
            server.kill()
        subprocess.run(["umount", mount])
        os.rmdir(mount)


if __name__ == "__main__":
    main()
