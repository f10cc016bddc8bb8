#!/usr/bin/env python3
"""/openapi.json against a third-party validator and against the server's real answers.

Starts `imsat serve` on an empty data directory, then:
1. validates the document it serves with @apidevtools/swagger-parser (tests/http/
   openapi_validate.js, run by node; tools/setup.sh installs the package into build-node);
2. sends a real request to every operation (creating a vector collection and an image
   collection on the way) and checks each JSON answer against the schema the document gives for
   that operation and status (Python's jsonschema, OpenAPI's `nullable` read as JSON Schema's
   null type), error answers included;
3. checks that every documented operation with a JSON answer was exercised.

Usage: openapi_test.py IMSAT_BINARY REPO_ROOT
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import jsonschema

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from serving import fail, free_port, start_server, stop_server  # noqa: E402

TOKEN = "openapi-test-token"






def request(port, method, path, body=None, content_type="application/json", token=True):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {}
    if data is not None:
        headers["Content-Type"] = content_type
    if token:
        headers["Authorization"] = "Bearer " + TOKEN
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def json_schema(node):
    """OpenAPI 3.0's schema dialect as JSON Schema: nullable becomes a null type."""
    if isinstance(node, list):
        return [json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


class Checker:
    def __init__(self, doc):
        self.doc = doc
        self.root = json_schema(doc)
        self.seen = set()  # (template, method, status) checked
        self.templates = []
        for template in doc["paths"]:
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            self.templates.append((template, re.compile(pattern), template.count("{")))

    def operation(self, method, path):
        path = urllib.parse.urlsplit(path).path
        matches = [(n, t) for t, rx, n in self.templates
                   if rx.match(path) and method.lower() in self.doc["paths"][t]]
        if not matches:
            fail(f"{method} {path}: no documented operation")
        return min(matches)[1]

    def check(self, method, path, status, content_type, body):
        template = self.operation(method, path)
        op = self.doc["paths"][template][method.lower()]
        answer = op["responses"].get(str(status))
        if answer is None:
            fail(f"{method} {path} answered {status}, which {template} does not document "
                 f"({body[:200]!r})")
        if not content_type.startswith("application/json"):
            return
        schema = answer.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            fail(f"{method} {template} {status}: a JSON answer without a documented schema")
        resolver = jsonschema.RefResolver("", self.root)
        try:
            jsonschema.validate(json.loads(body), json_schema(schema), resolver=resolver)
        except jsonschema.ValidationError as e:
            fail(f"{method} {path} {status}: the answer does not match {template}'s schema: "
                 f"{e.message} at {list(e.absolute_path)}\n{body[:400]!r}")
        self.seen.add((template.replace("/v1/collections/{collection}/", "/v1/"), method.lower(),
                       str(status)))


def make_images(folder):
    from PIL import Image
    rng = random.Random(3)
    for name, colour in {"red": (200, 30, 30), "blue": (30, 40, 200)}.items():
        os.makedirs(os.path.join(folder, name))
        for i in range(6):
            img = Image.new("RGB", (8, 8), tuple(max(0, c - rng.randint(0, 60)) for c in colour))
            img.save(os.path.join(folder, name, f"{name}{i}.png"))


def multipart(fields, files):
    boundary = "openapi-test-boundary"
    out = b""
    for name, value in fields:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    for name, filename, data in files:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n").encode()
        out += data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), "multipart/form-data; boundary=" + boundary


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    imsat, repo = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="imsat-openapi-")
    server = None
    try:
        import numpy as np
        vectors = np.random.default_rng(0).random((40, 12), dtype=np.float32)
        np.save(os.path.join(work, "v.npy"), vectors)
        vector_model = os.path.join(work, "v.model")
        subprocess.run([imsat, "train", "--data", os.path.join(work, "v.npy"), "--method", "lsh",
                        "--bits", "16", "--out", vector_model, "--quiet"], check=True)
        images = os.path.join(work, "images")
        make_images(images)
        image_model = os.path.join(work, "i.model")
        subprocess.run([imsat, "train", "--data", images, "--channels", "3", "--image-size", "8",
                        "--method", "itq", "--bits", "16", "--out", image_model, "--quiet"],
                       check=True)
        data_dir = os.path.join(work, "data")
        os.makedirs(data_dir)
        port = free_port()
        server = start_server([imsat, "serve", "--data-dir", data_dir, "--port", str(port),
                               "--token", TOKEN], port)

        status, _, body = request(port, "GET", "/openapi.json")
        if status != 200:
            fail(f"/openapi.json answered {status}")
        doc_path = os.path.join(work, "openapi.json")
        with open(doc_path, "wb") as f:
            f.write(body)
        node = shutil.which("node") or shutil.which("nodejs")
        validated = subprocess.run([node, os.path.join(repo, "tests", "http",
                                                       "openapi_validate.js"), doc_path],
                                   capture_output=True, text=True)
        if validated.returncode != 0:
            fail("swagger-parser rejects /openapi.json:\n" + validated.stdout + validated.stderr)
        print("ok: swagger-parser:", validated.stdout.strip())
        checker = Checker(json.loads(body))

        def call(method, path, body=None, content_type="application/json", token=True,
                 expect=None):
            status, ctype, answer = request(port, method, path, body, content_type, token)
            if expect is not None and status != expect:
                fail(f"{method} {path}: expected {expect}, got {status}: {answer[:300]!r}")
            checker.check(method, path, status, ctype, answer)
            return json.loads(answer) if ctype.startswith("application/json") else answer

        with open(vector_model, "rb") as f:
            call("PUT", "/v1/collections/v?tables=1", f.read(), "application/octet-stream",
                 expect=201)
        call("PUT", "/v1/collections/codes", {"bits": 32}, expect=201)
        with open(image_model, "rb") as f:
            call("PUT", "/v1/collections/img", f.read(), "application/octet-stream", expect=201)
        call("PUT", "/v1/collections/img", {"bits": 32}, expect=409)
        call("PUT", "/v1/collections/bad..name", {"bits": 32}, expect=400)
        call("GET", "/v1/collections", expect=200)
        call("GET", "/v1/collections/v", expect=200)
        items = [{"key": f"k{i}", "vector": vectors[i].tolist(), "label": i % 2,
                  "metadata": {"colour": ["red", "blue"][i % 2], "n": i}} for i in range(40)]
        call("POST", "/v1/collections/v/items", items, expect=200)
        call("POST", "/v1/collections/v/items", [{"key": "x"}], expect=400)
        page = call("GET", "/v1/collections/v/items?limit=3", expect=200)
        call("GET", "/v1/collections/v/items?limit=3&cursor=" + page["next_cursor"], expect=200)
        red = {"must": [{"key": "colour", "match": "red"}]}
        call("POST", "/v1/collections/v/items/scroll", {"filter": red, "limit": 5}, expect=200)
        call("POST", "/v1/collections/v/items/count", {"filter": red}, expect=200)
        call("POST", "/v1/collections/v/items/count", {"filter": {"must": [{"k": 1}]}},
             expect=400)
        call("POST", "/v1/collections/v/search", {"key": "k0", "k": 3, "explain": True},
             expect=200)
        call("POST", "/v1/collections/v/search",
             {"queries": [{"key": "k0"}, {"vector": vectors[1].tolist()}], "k": 2}, expect=200)
        call("POST", "/v1/collections/v/search", {"key": "k0", "radius": 4, "limit": 2},
             expect=200)
        call("POST", "/v1/collections/v/search", {"key": "nope"}, expect=404)
        call("POST", "/v1/collections/v/search", {"key": "k0", "k": 3, "filter": red,
                                                  "rerank": "exact"}, expect=200)
        call("GET", "/v1/collections/v/items/k1", expect=200)
        call("GET", "/v1/collections/v/items/nope", expect=404)
        call("PUT", "/v1/collections/v/index/colour", {"type": "any"}, expect=200)
        call("PUT", "/v1/collections/v/index/colour", {"type": "float"}, expect=400)
        call("POST", "/v1/collections/v/evaluate",
             {"queries_per_class": 3, "precision_at": 5}, expect=200)
        call("POST", "/v1/collections/v/evaluate", {}, token=False, expect=401)
        call("GET", "/v1/collections/v/info", expect=200)
        call("GET", "/v1/collections/v/health/codes", expect=200)
        snap = call("POST", "/v1/collections/v/snapshots", expect=201)
        call("GET", "/v1/collections/v/snapshots", expect=200)
        archive = call("GET", f"/v1/collections/v/snapshots/{snap['id']}/archive", expect=200)
        if archive[:2] != b"PK":
            fail("the snapshot archive is not a zip file")
        call("POST", f"/v1/collections/v/snapshots/{snap['id']}/restore", {"as": "v2"},
             expect=201)
        call("DELETE", "/v1/collections/v/snapshots/20990101T000000Z-000", expect=404)
        call("DELETE", f"/v1/collections/v/snapshots/{snap['id']}", expect=200)
        call("POST", "/v1/collections/v/items/delete", {"keys": ["k2", "zz"], "with_keys": True},
             expect=200)
        call("POST", "/v1/collections/v/items/delete", {"filter": red}, expect=200)
        call("DELETE", "/v1/collections/v/items/k1", expect=200)
        call("POST", "/v1/collections/codes/items", [{"key": "c", "code": "0011aabb"}],
             expect=200)
        files = sorted(os.path.join(r, f) for r, _, fs in os.walk(images) for f in fs)
        with open(files[0], "rb") as f:
            png = f.read()
        call("POST", "/v1/collections/img/items?key=one&label=0", png, "image/png", expect=200)
        form, ctype = multipart([("key", "two"), ("key", "three")],
                                [("file", "a.png", png), ("file", "b.png", png)])
        call("POST", "/v1/collections/img/items", form, ctype, expect=200)
        call("POST", "/v1/collections/img/search/image?k=2", png, "image/png", expect=200)
        form, ctype = multipart([("k", "2")], [("image", "q.png", png)])
        call("POST", "/v1/collections/img/search/image", form, ctype, expect=200)
        call("POST", "/v1/collections/img/search/image", b"{}", "application/json", expect=415)
        thumb = call("GET", "/v1/collections/img/items/one/image", expect=200)
        if thumb[:2] != b"\xff\xd8":
            fail("the thumbnail is not a JPEG")
        call("DELETE", "/v1/collections/v2", expect=200)
        call("DELETE", "/v1/collections/v2", expect=404)
        call("GET", "/healthz", expect=200)
        call("GET", "/readyz", expect=200)
        call("GET", "/openapi.json", expect=200)
        # The service-wide forms of the collection endpoints: this server has several
        # collections and no default.
        call("GET", "/v1/info", expect=404)

        documented = set()
        for template, item in checker.doc["paths"].items():
            if template.startswith("/v1/collections/{collection}/"):
                continue
            for method, op in item.items():
                if method == "parameters":
                    continue
                for status, answer in op["responses"].items():
                    if status.startswith("2") and "application/json" in answer.get("content", {}):
                        documented.add((template, method, status))
        # Every documented JSON answer has an example, and the example matches its schema.
        resolver = jsonschema.RefResolver("", checker.root)
        for template, method, status in sorted(documented):
            content = checker.doc["paths"][template][method]["responses"][status]["content"]
            if template == "/openapi.json":
                continue
            if "example" not in content["application/json"]:
                fail(f"{method} {template} {status}: no example")
            try:
                jsonschema.validate(content["application/json"]["example"],
                                    json_schema(content["application/json"]["schema"]),
                                    resolver=resolver)
            except jsonschema.ValidationError as e:
                fail(f"{method} {template} {status}: the example does not match its schema: "
                     f"{e.message}")
        print(f"ok: {len(documented) - 1} documented answers have examples that match")
        missing = sorted(documented - checker.seen)
        if missing:
            fail("documented answers never checked against a real one: " + str(missing))
        print(f"ok: {len(checker.seen)} operation/status pairs match their documented schemas")
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
