#!/usr/bin/env python3
"""`imsat serve --config FILE`: settings from a TOML file, overridden by IMSAT_* variables,
overridden by flags; --print-config shows the merge with tokens masked; a key that is no option
is an error naming the key and the file; and a server started from a file behaves as one started
with the same flags (port, token, body limit).

Usage: config_test.py IMSAT_BINARY
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request








sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from serving import check, free_port, start_server, stop_server  # noqa: E402


def settings(text):
    out = {}
    for line in text.splitlines():
        if "=" in line:
            name, value = line.split("=", 1)
            out[name.strip()] = value.strip()
    return out


def request(port, method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else body.encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def main():
    imsat = sys.argv[1]
    work = tempfile.mkdtemp(prefix="imsat-config-")
    server = None
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMSAT_")}
        port = free_port()
        config = os.path.join(work, "serve.toml")
        with open(config, "w") as f:
            f.write(f'port = {port}\nthreads = 3\ntoken = "file-secret"\n'
                    f'data_dir = "{os.path.join(work, "data")}"\n\n'
                    "[serve]\nmax_body_bytes = 2000\nno_vector_cache = true\n")
        out = subprocess.run([imsat, "serve", "--config", config, "--print-config"], env=env,
                             capture_output=True, text=True)
        merged = settings(out.stdout)
        check(out.returncode == 0 and merged.get("port") == str(port) and
              merged.get("threads") == "3" and merged.get("max_body_bytes") == "2000" and
              merged.get("no_vector_cache") == "true",
              "--print-config shows the file's settings, top level and [serve]")
        check(merged.get("token") == '"***"' and "file-secret" not in out.stdout,
              "the token is masked")
        out = subprocess.run([imsat, "serve", "--config", config, "--threads", "7",
                              "--print-config"],
                             env=dict(env, IMSAT_THREADS="5", IMSAT_MAX_BODY_BYTES="3000"),
                             capture_output=True, text=True)
        merged = settings(out.stdout)
        check(merged.get("threads") == "7" and merged.get("max_body_bytes") == "3000",
              "the environment overrides the file, and a flag overrides both")
        bad = os.path.join(work, "bad.toml")
        with open(bad, "w") as f:
            f.write("prot = 8080\n")
        out = subprocess.run([imsat, "serve", "--config", bad, "--db", work], env=env,
                             capture_output=True, text=True)
        check(out.returncode == 2 and "'prot'" in out.stderr and "bad.toml" in out.stderr,
              "an unknown key is a usage error naming the key and the file")
        out = subprocess.run([imsat, "serve", "--config", os.path.join(work, "none.toml"),
                              "--db", work], env=env, capture_output=True, text=True)
        check(out.returncode == 2 and "none.toml" in out.stderr, "a missing file is named")

        server = start_server([imsat, "serve", "--config", config], port,
                              what="the server started from the file", env=env,
                              stderr=subprocess.DEVNULL)
        check(True, "the server listens on the file's port")
        status, _ = request(port, "PUT", "/v1/collections/c", '{"bits": 64}')
        check(status == 401, "writes need the file's token")
        status, _ = request(port, "PUT", "/v1/collections/c", '{"bits": 64}', "file-secret")
        check(status == 201, "the file's token is accepted")
        big = json.dumps([{"key": str(i), "code": "00" * 8} for i in range(100)])
        status, body = request(port, "POST", "/v1/collections/c/items", big, "file-secret")
        check(status == 413, "the file's body limit holds")
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
