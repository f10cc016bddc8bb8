#!/usr/bin/env python3
"""The server's log: `imsat serve --log-format json` writes start-up, collection opens, one
access line per request (method, route, collection, status, bytes in and out, ms, client,
request id; the error code of a refused request) and shutdown, as one JSON object per line; the
request id comes from X-Request-Id or is made and echoed back; no token or request body ever
reaches the log; /readyz answers 200 while serving. Text format: the same lines as key=value.

Usage: logging_test.py IMSAT_BINARY
"""
import json
import os
import shutil
import signal
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from serving import check, free_port, start_server  # noqa: E402

TOKEN = "log-test-secret-token"
MARKER = "body-marker-8f3a"








def request(port, method, path, body=None, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers=dict({"Content-Type": "application/json"},
                                              **(headers or {})))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def serve(imsat, data_dir, port, fmt, log_path):
    with open(log_path, "w") as log:
        return start_server([imsat, "serve", "--data-dir", data_dir, "--port", str(port),
                             "--token", TOKEN, "--log-format", fmt], port, path="/readyz",
                            stderr=log)


def main():
    imsat = sys.argv[1]
    work = tempfile.mkdtemp(prefix="imsat-log-")
    try:
        data_dir = os.path.join(work, "data")
        os.makedirs(data_dir)
        port = free_port()
        log_path = os.path.join(work, "log.jsonl")
        proc = serve(imsat, data_dir, port, "json", log_path)
        auth = {"Authorization": "Bearer " + TOKEN}
        status, headers, _ = request(port, "PUT", "/v1/collections/shop", {"bits": 32}, auth)
        check(status == 201 and len(headers.get("X-Request-Id", "")) == 16,
              "a request without an id gets one made and echoed back")
        status, headers, _ = request(port, "POST", "/v1/collections/shop/items",
                                     [{"key": "a", "code": "00112233",
                                       "metadata": {"note": MARKER}}],
                                     dict(auth, **{"X-Request-Id": "client-id-42"}))
        check(status == 200 and headers.get("X-Request-Id") == "client-id-42",
              "a client's X-Request-Id is echoed back")
        status, _, _ = request(port, "POST", "/v1/collections/shop/items", [{"key": "b"}])
        check(status == 401, "a write without the token is refused")
        status, _, _ = request(port, "GET", "/v1/collections/nope/info")
        check(status == 404, "an unknown collection is 404")
        status, _, _ = request(port, "POST", "/v1/collections/shop/search",
                               {"key": "a", "k": 1, "filter": {"must": [{"key": "note",
                                                                          "match": MARKER}]}})
        check(status == 200, "a search")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        text = open(log_path).read()
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        check(all({"time", "level", "event"} <= set(l) for l in lines),
              f"every line is a JSON object with time, level and event ({len(lines)} lines)")
        events = [l["event"] for l in lines]
        check(events[0] in ("collection_open", "serving") and "serving" in events and
              events[-2:] == ["stopping", "stopped"], "start-up and shutdown are logged")
        access = [l for l in lines if l["event"] == "access"]
        fields = {"method", "route", "collection", "status", "bytes_in", "bytes_out", "ms",
                  "client", "request_id"}
        check(all(fields <= set(l) for l in access), "each access line has every field")
        routes = [(l["method"], l["route"], l["status"]) for l in access
                  if l["route"] != "readyz"]
        check(routes == [("PUT", "collection_create", 201), ("POST", "items_add", 200),
                         ("POST", "items_add", 401), ("GET", "info", 404),
                         ("POST", "search", 200)],
              "one access line per request, in order, with route and status")
        by_id = [l for l in access if l["request_id"] == "client-id-42"]
        check(len(by_id) == 1 and by_id[0]["collection"] == "shop" and by_id[0]["bytes_in"] > 0,
              "the client's request id, collection and body size are logged")
        refused = [l for l in access if l["status"] == 401][0]
        check(refused.get("error") == "missing_token", "a refused request names its cause")
        unknown = [l for l in access if l["status"] == 404][0]
        check(unknown.get("error") == "unknown_collection" and unknown["collection"] == "nope",
              "an unknown collection is named with its cause")
        check(TOKEN not in text and MARKER not in text,
              "no token and no request body reaches the log")

        port = free_port()
        log_path = os.path.join(work, "log.txt")
        proc = serve(imsat, data_dir, port, "text", log_path)
        request(port, "GET", "/healthz")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        text = open(log_path).read().splitlines()
        access = [line for line in text if " access " in line]
        check(len(access) >= 1 and "route=healthz" in access[-1] and "status=200" in access[-1]
              and access[-1].split()[1] == "info",
              "text lines: time, level, event and key=value fields")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
