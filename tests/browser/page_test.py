#!/usr/bin/python3
"""The web page in a real browser, on an index of image files: it starts with a stored item,
"Random item" picks a stored key, an image chosen in the upload field finds its neighbours, the
label filter narrows the hits, captions are the files' names, and the drawing pad stays hidden for
an RGB model.

Needs Debian's chromium, nodejs and python3-pil, and puppeteer-core installed in
build-node/node_modules (tools/setup.sh does all of it).

Usage: page_test.py IMSAT_BINARY
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def fail(message):
    sys.exit("page_test: " + message)


def write_images(folder):
    """Three categories of 20 RGB pictures each: red, green and blue squares on varied grounds."""
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    for c, (name, rgb) in enumerate(colours.items()):
        os.makedirs(os.path.join(folder, name))
        for i in range(20):
            img = Image.new("RGB", (40, 40), (230 - 5 * i, 230 - 3 * i, 230 - 4 * i))
            img.paste(rgb, (6 + i % 7, 8 + i % 5, 26 + i % 9, 30 + i % 6))
            img.save(os.path.join(folder, name, f"{name}-{i:02d}.png"))


def main():
    imsat = sys.argv[1]
    node_modules = os.path.join(os.path.dirname(os.path.dirname(HERE)), "build-node",
                                "node_modules")
    if not os.path.isdir(os.path.join(node_modules, "puppeteer-core")):
        fail(f"puppeteer-core is missing from {node_modules}: run tools/setup.sh")
    work = tempfile.mkdtemp(prefix="imsat-page-")
    server = None
    try:
        folder = os.path.join(work, "photos")
        write_images(folder)
        model, db = os.path.join(work, "m.model"), os.path.join(work, "db")
        for cmd in ([imsat, "train", "--data", folder, "--method", "itq", "--bits", "16",
                     "--channels", "3", "--image-size", "16", "--quiet", "--out", model],
                    [imsat, "index", "--model", model, "--data", folder, "--db", db, "--quiet"]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"{' '.join(cmd)} failed: {r.stderr}")
        log = open(os.path.join(work, "serve.log"), "w+")
        server = subprocess.Popen([imsat, "serve", "--db", db, "--port", "0"], stderr=log)
        port = None
        for _ in range(300):
            log.seek(0)
            m = re.search(r"http://127\.0\.0\.1:(\d+)", log.read())
            if m:
                port = int(m.group(1))
                break
            if server.poll() is not None:
                break
            time.sleep(0.1)
        if port is None:
            log.seek(0)
            fail("the server did not start: " + log.read())
        upload = os.path.join(folder, "blue", "blue-03.png")
        r = subprocess.run(["node", os.path.join(HERE, "page_upload.js"),
                            f"http://127.0.0.1:{port}/", upload, "0"],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, NODE_PATH=node_modules))
        if r.returncode != 0:
            fail("the browser run failed: " + r.stderr)
        seen = json.loads(r.stdout)
        checks = []

        def check(ok, what):
            checks.append((ok, what))

        keys = {f"{c}/{c}-{i:02d}.png" for c in ("red", "green", "blue") for i in range(20)}
        check(seen["first_key"] in keys, f"the page starts with a stored item ({seen['first_key']})")
        check(len(seen["first"]) == 12, f"the first search shows 12 neighbours ({len(seen['first'])})")
        check(seen["random_key"] in keys, f"Random item picks a stored key ({seen['random_key']})")
        check(seen["error_after_random"] == "", f"no error after Random item ({seen['error_after_random']})")
        check(all(h["loaded"] == "1" and h["width"] > 0 for h in seen["upload"]),
              "every neighbour thumbnail of the upload loaded")
        check(seen["query_caption"] == "blue-03.png", f"the query is captioned ({seen['query_caption']})")
        top = seen["upload"][0]
        check(top["key"] == "blue/blue-03.png" and top["caption"] == "blue-03.png",
              f"the uploaded file finds itself first, captioned with its file name ({top})")
        blue = sum(h["key"].startswith("blue/") for h in seen["upload"])
        check(blue >= 10, f"the upload's neighbours are mostly its category ({blue} of 12 blue)")
        check(seen["pad_hidden"], "the drawing pad is hidden for an RGB model")
        check(seen["labels"][:1] == [""] and "0" in seen["labels"], f"labels offered ({seen['labels']})")
        check(all("label 0" in h["detail"] for h in seen["filtered"]),
              "the label filter keeps label 0 only")
        check(seen["error"] == "" and not seen["page_errors"],
              f"no error shown or thrown ({seen['error']}, {seen['page_errors']})")
        bad = [what for ok, what in checks if not ok]
        for ok, what in checks:
            print(("ok   " if ok else "FAIL ") + what)
        if bad:
            fail(f"{len(bad)} of {len(checks)} checks failed")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
