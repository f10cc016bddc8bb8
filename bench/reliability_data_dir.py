"""Reliability trials of the data directory and the service's edges, used by
bench/reliability.py (group "surfaces"); each function returns (tried, passed, notes).

Crash points: each multi-step command (snapshot restore --force, snapshot delete, collection
create and drop, ingest) runs under strace, killed by SIGKILL just before its Nth call of one
system call (rename, fsync, unlink, mkdir; N = 1, 2, ... until the command makes fewer calls and
finishes). After each kill, the next command that opens the data directory must find it either
as it was or as the command leaves it, with nothing left over.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SYSCALLS = ("rename", "fsync", "unlink", "mkdir")


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hidden(folder):
    """Leftovers of interrupted work anywhere under folder."""
    out = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            if name == ".imsat-lock":  # the data directory's lock
                continue
            if name.startswith(".") or name.endswith(".partial"):
                out.append(os.path.relpath(os.path.join(root, name), folder))
    return out


def _collections(imsat, dd):
    r = _run([imsat, "collections", "list", "--data-dir", dd, "--json"])
    if r.returncode != 0:
        return None, r.stderr.strip()
    return {c["name"]: c for c in json.loads(r.stdout)}, ""


def _snapshots(imsat, dd, name):
    r = _run([imsat, "snapshot", "list", "--data-dir", dd, "--collection", name, "--json"])
    return [s["id"] for s in json.loads(r.stdout)] if r.returncode == 0 else None


def _sweep(imsat, work, base, args, check, limit=400):
    """Runs `imsat args` killed before the Nth call of each system call; returns tried, passed,
    failures. `base` is copied to work/dd before each run; check(dd) returns "" when it holds."""
    tried = passed = 0
    failures = []
    dd = os.path.join(work, "dd")
    for syscall in SYSCALLS:
        for n in range(1, limit):
            shutil.rmtree(dd, ignore_errors=True)
            shutil.copytree(base, dd, symlinks=True)
            cmd = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}", "-e",
                   f"inject={syscall}:signal=SIGKILL:when={n}", imsat] + \
                  [a.replace("{dd}", dd) for a in args]
            r = _run(cmd)
            if r.returncode == 0:
                break  # fewer than n calls: every crash point of this call was tried
            tried += 1
            why = check(dd)
            if not why:
                passed += 1
            elif len(failures) < 5:
                failures.append(f"{syscall} #{n}: {why}")
    return tried, passed, failures


def crash_points(imsat, work, data, model):
    """Every crash point of five data-directory commands; one note line per command."""
    base = os.path.join(work, "base")
    shutil.rmtree(base, ignore_errors=True)
    _run([imsat, "collections", "create", "--data-dir", base, "--name", "rows", "--model", model])
    store = os.path.join(base, "rows", "store")
    _run([imsat, "index", "--model", model, "--data", data, "--db", store, "--quiet"])
    small = json.loads(_run([imsat, "snapshot", "create", "--data-dir", base, "--collection",
                             "rows", "--json"]).stdout)["id"]
    _run([imsat, "index", "--model", model, "--data", data, "--db", store, "--quiet",
          "--key-prefix", "x"])
    large = json.loads(_run([imsat, "snapshot", "create", "--data-dir", base, "--collection",
                             "rows", "--json"]).stdout)["id"]
    listed, err = _collections(imsat, base)
    n_small = listed["rows"]["items"] // 2
    n_large = listed["rows"]["items"]
    shards = []
    for i in range(3):
        out = os.path.join(work, f"s{i}.codes")
        _run([imsat, "encode", "--model", model, "--data", data, "--shard", f"{i}/3", "--quiet",
              "--out", out])
        shards.append(out)
    ingest_base = os.path.join(work, "ingest-base")
    shutil.rmtree(ingest_base, ignore_errors=True)
    os.makedirs(ingest_base)
    _run([imsat, "ingest", "--db", os.path.join(ingest_base, "db"), shards[0]])
    before = json.loads(_run([imsat, "inspect", "--db", os.path.join(ingest_base, "db"),
                              "--json"]).stdout)["items"]

    def restore_check(dd):
        cols, err = _collections(imsat, dd)
        if cols is None:
            return f"the data directory does not open: {err}"
        if cols.get("rows", {}).get("items") not in (n_small, n_large):
            return f"collection rows holds {cols.get('rows')}"
        if _snapshots(imsat, dd, "rows") != [small, large]:
            return f"snapshots {_snapshots(imsat, dd, 'rows')}"
        return f"left over: {_hidden(dd)}" if _hidden(dd) else ""

    def delete_check(dd):
        cols, err = _collections(imsat, dd)
        if cols is None:
            return f"the data directory does not open: {err}"
        snaps = _snapshots(imsat, dd, "rows")
        if snaps not in ([small, large], [large]):
            return f"snapshots {snaps}"
        if small in snaps:
            r = _run([imsat, "snapshot", "restore", "--data-dir", dd, "--collection", "rows",
                      "--snapshot", small, "--as", "probe"])
            cols, _ = _collections(imsat, dd)
            if r.returncode != 0 or cols.get("probe", {}).get("items") != n_small:
                return f"a listed snapshot does not restore: {r.stderr.strip()}"
            _run([imsat, "collections", "drop", "--data-dir", dd, "--name", "probe"])
        return f"left over: {_hidden(dd)}" if _hidden(dd) else ""

    def create_check(dd):
        cols, err = _collections(imsat, dd)
        if cols is None:
            return f"the data directory does not open: {err}"
        if "fresh" in cols and (cols["fresh"]["items"] != 0 or not cols["fresh"]["model_fingerprint"]):
            return f"half a collection: {cols['fresh']}"
        if cols.get("rows", {}).get("items") != n_large:
            return "collection rows changed"
        return f"left over: {_hidden(dd)}" if _hidden(dd) else ""

    def drop_check(dd):
        cols, err = _collections(imsat, dd)
        if cols is None:
            return f"the data directory does not open: {err}"
        if "rows" in cols and cols["rows"]["items"] != n_large:
            return f"half a collection: {cols['rows']}"
        return f"left over: {_hidden(dd)}" if _hidden(dd) else ""

    def ingest_check(dd):
        db = os.path.join(dd, "db")
        r = _run([imsat, "inspect", "--db", db, "--json", "--verify"])
        if r.returncode != 0:
            return f"the store does not verify: {r.stderr.strip()}"
        items = json.loads(r.stdout)["items"]
        if items not in (before, n_small):
            return f"{items} items (before {before}, after {n_small})"
        r = _run([imsat, "ingest", "--db", db] + shards[1:])
        after = json.loads(_run([imsat, "inspect", "--db", db, "--json"]).stdout)["items"]
        if r.returncode != 0 or after != n_small:
            return f"running the ingest again: {r.returncode} {after} {r.stderr.strip()[-200:]}"
        return ""

    ops = [
        ("snapshot restore --force", base, ["snapshot", "restore", "--data-dir", "{dd}",
                                            "--collection", "rows", "--snapshot", small,
                                            "--force"], restore_check),
        ("snapshot delete", base, ["snapshot", "delete", "--data-dir", "{dd}", "--collection",
                                   "rows", "--snapshot", small], delete_check),
        ("collections create (with a model)", base, ["collections", "create", "--data-dir",
                                                     "{dd}", "--name", "fresh", "--model",
                                                     model], create_check),
        ("collections drop", base, ["collections", "drop", "--data-dir", "{dd}", "--name",
                                    "rows"], drop_check),
        ("ingest (2 shards onto 1)", ingest_base, ["ingest", "--db", "{dd}/db"] + shards[1:],
         ingest_check),
    ]
    rows, notes = [], []
    for name, op_base, args, check in ops:
        t0 = time.time()
        tried, passed, failures = _sweep(imsat, work, op_base, args, check)
        rows.append((f"crash points: {name}", tried, passed))
        notes.append(f"{'ok  ' if tried == passed else 'FAIL'} {name}: {tried} crash points "
                     f"({', '.join(SYSCALLS)}), {passed} passed, {time.time() - t0:.0f} s" +
                     ("; " + "; ".join(failures) if failures else ""))
    return rows, notes


def _request(port, method, path, body=None, headers=None, timeout=30):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _serve(imsat, args, env=None, preexec=None):
    port = _free_port()
    proc = subprocess.Popen([imsat, "serve", "--port", str(port)] + args,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            preexec_fn=preexec)
    deadline = time.time() + 20
    while time.time() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return port, proc
        except Exception:
            time.sleep(0.05)
    return port, proc


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def edges(imsat, work, data, model):
    """Field names, concurrent creates, filters, descriptors, tokens: (tried, passed, notes)."""
    notes = []
    tried = passed = 0

    def record(ok, line):
        nonlocal tried, passed
        tried += 1
        passed += bool(ok)
        notes.append(("ok   " if ok else "FAIL ") + line)

    token = {"Authorization": "Bearer w"}
    dd = os.path.join(work, "edges")
    shutil.rmtree(dd, ignore_errors=True)
    port, proc = _serve(imsat, ["--data-dir", dd, "--token", "w"])
    # A field name with a line break.
    _request(port, "PUT", "/v1/collections/c", {"bits": 16}, token)
    status, body = _request(port, "PUT", "/v1/collections/c/index/a%0Ab", b"", token)
    record(status == 400, f"field name 'a\\nb': {status} {body[:90]!r}")
    # Concurrent creates with uploaded models of two code lengths.
    models = {}
    for bits in (64, 32):
        out = os.path.join(work, f"m{bits}.model")
        _run([imsat, "train", "--data", data, "--method", "lsh", "--bits", str(bits), "--quiet",
              "--out", out])
        models[bits] = open(out, "rb").read()
    right = 0
    for pair in range(15):
        answers = {}

        def create(bits):
            answers[bits] = _request(port, "PUT", f"/v1/collections/race{pair}", models[bits],
                                     dict(token, **{"Content-Type": "application/octet-stream"}))
        threads = [threading.Thread(target=create, args=(b,)) for b in (64, 32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wins = [b for b, (s, _) in answers.items() if s == 201]
        losers = [s for b, (s, _) in answers.items() if s != 201]
        if len(wins) == 1 and losers == [409] and \
                json.loads(answers[wins[0]][1])["model"]["bits"] == wins[0]:
            right += 1
    record(right == 15, f"15 pairs of concurrent creates: {right} with one 201 naming its own "
                        "model and one 409")
    _stop(proc)
    # Filters: a store of the 60,000 rows, a 9,000-value match_any, a 100,000-value one.
    db = os.path.join(work, "filters-db")
    _run([imsat, "index", "--model", model, "--data", data, "--db", db, "--quiet"])
    port, proc = _serve(imsat, ["--db", db, "--model", model])
    many = {"filter": {"must": [{"key": "row", "match_any": list(range(0, 18000, 2))}]}}
    t0 = time.time()
    status, body = _request(port, "POST", "/v1/items/count", many)
    secs = time.time() - t0
    record(status == 200 and json.loads(body)["count"] == 9000 and secs < 2,
           f"count with a 9,000-value match_any over 60,000 items: {status} {body[:40]!r} in "
           f"{secs:.2f} s")
    huge = {"filter": {"must": [{"key": "row", "match_any": list(range(100000))}]}}
    t0 = time.time()
    status, body = _request(port, "POST", "/v1/items/count", huge)
    secs = time.time() - t0
    record(status == 400 and b"max_filter_terms" in body and secs < 2,
           f"a 100,000-value match_any: {status} in {secs:.2f} s {body[:80]!r}")
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            _request(port, "POST", "/v1/items/count", many)
    clients = [threading.Thread(target=hammer) for _ in range(2)]
    for c in clients:
        c.start()
    lat = []
    for i in range(200):
        t0 = time.time()
        _request(port, "POST", "/v1/search", {"key": str(i), "k": 10})
        lat.append(time.time() - t0)
    stop.set()
    for c in clients:
        c.join()
    lat.sort()
    record(lat[len(lat) // 2] < 0.05,
           f"k = 10 search beside 2 clients counting with 9,000-value filters: p50 "
           f"{lat[len(lat) // 2] * 1000:.1f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms")
    _stop(proc)
    # Descriptors: 256 of them, 306 idle connections.
    import resource

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    port, proc = _serve(imsat, ["--db", db, "--model", model], preexec=low_limit)
    conns = []
    for _ in range(306):
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        conns.append(s)
    time.sleep(0.5)
    with open(f"/proc/{proc.pid}/stat") as f:
        cpu0 = sum(int(x) for x in f.read().split()[13:15])
    t0 = time.time()
    status, _ = _request(port, "GET", "/healthz", timeout=5)
    secs = time.time() - t0
    time.sleep(2)
    with open(f"/proc/{proc.pid}/stat") as f:
        cpu1 = sum(int(x) for x in f.read().split()[13:15])
    cpu_s = (cpu1 - cpu0) / os.sysconf("SC_CLK_TCK")
    record(status == 200 and secs < 1 and cpu_s < 0.5,
           f"306 idle connections with 256 descriptors: /healthz {status} in {secs:.3f} s, "
           f"server CPU {cpu_s:.2f} s over 2 s")
    for s in conns:
        s.close()
    _stop(proc)
    # Tokens.
    r = _run([imsat, "serve", "--db", db, "--read-token", "r", "--port", "0"], timeout=20)
    record(r.returncode != 0 and "write token" in r.stderr,
           f"--read-token without --token: exit {r.returncode}, {r.stderr.strip()[-90:]!r}")
    port, proc = _serve(imsat, ["--db", db, "--model", model, "--token", "w"])
    body = json.dumps({"queries": [{"key": str(i)} for i in range(400000)]}).encode()
    t0 = time.time()
    status, _ = _request(port, "POST", "/v1/items", body)
    secs = time.time() - t0
    record(status == 401 and secs < 0.5,
           f"{len(body) / 1e6:.1f} MB body without the token: {status} in {secs:.3f} s")
    # A model path on the server: /dev/zero, a FIFO, a missing file.
    _stop(proc)
    port, proc = _serve(imsat, ["--data-dir", dd, "--token", "w"])
    fifo = os.path.join(work, "fifo")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    answers = []
    for path in ("/dev/zero", fifo, "/no/such/file", "/etc/passwd"):
        t0 = time.time()
        status, body = _request(port, "PUT", "/v1/collections/bypath", {"model": path}, token,
                                timeout=5)
        answers.append((status, json.loads(body)["error"].replace(path, "PATH"),
                        time.time() - t0))
    same = len({a[1] for a in answers}) == 1
    record(all(a[0] == 400 and a[2] < 1 for a in answers) and same,
           f"model paths /dev/zero, a FIFO, a missing file, /etc/passwd: "
           f"{[a[0] for a in answers]}, one message: {same}")
    _stop(proc)
    return tried, passed, notes


def full_disk(imsat, root):
    """tests/tools/full_disk_test.py: each 'ok:' line is a check passed."""
    r = _run(["python3", os.path.join(root, "tests", "tools", "full_disk_test.py"), imsat],
             timeout=600)
    lines = r.stdout.splitlines()
    passed = sum(1 for line in lines if line.startswith("ok:"))
    failed = sum(1 for line in lines if line.startswith("FAIL")) + (r.returncode not in (0, 77))
    if r.returncode == 77:
        return 0, 0, ["full disk: skipped (" + r.stdout.strip() + ")"]
    return passed + failed, passed, ["full disk: " + line for line in lines]
