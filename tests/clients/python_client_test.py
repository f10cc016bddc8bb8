#!/usr/bin/env python3
"""The Python client (clients/python), installed from the repository into a fresh virtual
environment and used against a real `imsat serve` on a real data directory.

Makes a folder of 60 small RGB images in 3 labelled subfolders, trains an ITQ model on it with the
built `imsat`, serves an empty data directory with a token, and then, through the client only:
creates a collection by uploading the model, adds the images in batches (with progress), adds
vectors from a NumPy array, searches by key, vector, image file, image bytes and in a batch, with
filters, pages with scroll, counts, deletes by key and by filter, indexes a field, takes, lists,
downloads (zip) and restores a snapshot, evaluates, and checks that each error code arrives as its
exception class (and that the token comes from IMSAT_TOKEN). Finally it runs the README's example.

Usage: python_client_test.py IMSAT_BINARY REPO_ROOT
"""
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from serving import check, fail, free_port, start_server, stop_server  # noqa: E402

TOKEN = "client-test-token"
COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}








def make_images(folder):
    from PIL import Image
    rng = random.Random(7)
    for name, (r, g, b) in COLOURS.items():
        os.makedirs(os.path.join(folder, name))
        for i in range(20):
            img = Image.new("RGB", (16, 16))
            px = img.load()
            for y in range(16):
                for x in range(16):
                    px[x, y] = tuple(max(0, min(255, c + rng.randint(-40, 40))) for c in (r, g, b))
            img.save(os.path.join(folder, name, f"{name}{i:02d}.png"))


def install_client(repo, work):
    """A virtual environment (seeing Debian's requests and NumPy) with the client installed from
    the repository by pip, offline."""
    venv = os.path.join(work, "venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    # From a copy: pip builds in the source folder, which stays untouched.
    source = os.path.join(work, "client-source")
    shutil.copytree(os.path.join(repo, "clients", "python"), source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", source], check=True)
    return python


SESSION = r'''
import io, json, os, sys, zipfile
import numpy as np
import imsat

url, images, model, work, cosine_model, embeddings = sys.argv[1:7]
assert imsat.__file__.startswith(os.path.dirname(os.path.dirname(sys.executable))), imsat.__file__

def check(condition, message):
    if not condition:
        print("FAIL:", message)
        sys.exit(1)
    print("ok:", message)

client = imsat.Client(url)  # the token comes from IMSAT_TOKEN
check(client.health()["status"] == "ok", "health")
photos = client.create_collection("photos", model_file=model)
check(any(c["name"] == "photos" for c in client.collections()), "the collection is listed")
try:
    client.create_collection("photos", model_file=model)
    check(False, "a second create of a name is refused")
except imsat.Conflict as e:
    check(e.status == 409 and e.code == "conflict", "a second create raises Conflict")

files = sorted(os.path.join(images, d, f) for d in sorted(os.listdir(images))
               for f in sorted(os.listdir(os.path.join(images, d))))
names = sorted(os.listdir(images))
labels = [names.index(os.path.basename(os.path.dirname(f))) for f in files]
seen = []
added = photos.add_images(files, labels=labels,
                          metadata=[{"colour": names[l], "n": i} for i, l in enumerate(labels)],
                          batch_size=16, progress=lambda done, total: seen.append((done, total)))
check(added == 60 and seen[-1] == (60, 60) and len(seen) == 4, "60 images added in 4 batches")
info = photos.info()
check(info["items"] == 60 and info["model"]["takes_images"], "info: 60 items, takes images")

hits = photos.search(key="red00.png", k=5)["hits"]
check(len(hits) == 5 and hits[0]["key"] == "red00.png", "search by key finds the item first")
check(all(h["label"] == names.index("red") for h in hits), "its neighbours share its colour")
by_file = photos.search(image=files[0], k=3)["hits"]
with open(files[0], "rb") as f:
    by_bytes = photos.search(image=f.read(), k=3)["hits"]
check(by_file == by_bytes and by_file[0]["label"] == labels[0], "search by image file and bytes")
green = {"must": [{"key": "colour", "match": "green"}]}
filtered = photos.search(key="red00.png", k=4, filter=green)["hits"]
check(len(filtered) == 4 and all(h["metadata"]["colour"] == "green" for h in filtered),
      "a filtered search returns only passing items")
by_image_filtered = photos.search(image=files[0], k=2, filter=green)["hits"]
check(all(h["metadata"]["colour"] == "green" for h in by_image_filtered),
      "a filtered image search (multipart) returns only passing items")

dim = info["model"]["input_dim"]
vectors = np.random.default_rng(0).random((5, dim), dtype=np.float32)
check(photos.add_vectors([f"v{i}" for i in range(5)], vectors, labels=[9] * 5) == 5,
      "NumPy vectors added")
batch = photos.search_batch([vectors[0], {"key": "v1"}, {"vector": vectors[2]}], k=3)
alone = [photos.search(vector=vectors[0], k=3), photos.search(key="v1", k=3),
         photos.search(vector=vectors[2], k=3)]
check([r["hits"] for r in batch] == [r["hits"] for r in alone],
      "a batch of three queries answers as three searches")
top = photos.search(vector=vectors[3], k=1)["hits"][0]
check(top["distance"] == 0, "search by NumPy vector finds its own code")

photos.index_field("colour")
check("colour" in photos.info()["indexed_fields"], "a field indexed")
check(photos.count() == 65 and photos.count(green) == 20, "count, all and filtered")
keys = [item["key"] for item in photos.scroll(filter=green, page_size=7)]
check(len(keys) == 20 and len(set(keys)) == 20 and all(k.startswith("green") for k in keys),
      "scroll visits each filtered item once over several pages")

snap = photos.create_snapshot()
check(any(s["id"] == snap["id"] for s in photos.snapshots()), "a snapshot is listed")
archive = os.path.join(work, "snap.zip")
size = photos.download_snapshot(snap["id"], archive)
with zipfile.ZipFile(archive) as z:
    listed = z.namelist()
check(size > 0 and "store/CURRENT" in listed and "model" in listed,
      "the snapshot downloads as a zip of its store and model")
deleted = photos.delete(keys=["v0", "v1", "nope"], with_keys=True)
check(deleted == {"deleted": 2, "not_found": 1, "not_found_keys": ["nope"]},
      "delete by keys answers counts and the missing keys")
check(photos.delete(filter={"must": [{"key": "label", "match": 9}]}) ==
      {"deleted": 3, "not_found": 0}, "delete by filter")
check(photos.delete(keys="blue00.png")["deleted"] == 1, "delete one key")
copy = photos.restore_snapshot(snap["id"], "photos_copy")
check(copy["items"] == 65 and client.collection("photos_copy").count() == 65,
      "a restored snapshot holds what the collection held when it was taken")

scores = photos.evaluate(queries_per_class=5, precision_at=10)
check(0 < scores["map"] <= 1 and scores["queries"] == 15, "evaluate: the paper's protocol")

try:
    photos.get("no-such-key")
    check(False, "a missing key raises")
except imsat.NotFound as e:
    check(e.status == 404 and "no-such-key" in e.message, "a missing key raises NotFound")
try:
    photos.search(key="red00.png", filter={"must": [{"key": "colour", "matches": 1}]})
    check(False, "a bad filter raises")
except imsat.InvalidFilter as e:
    check(e.code == "invalid_filter", "a bad filter raises InvalidFilter")
try:
    client.collection("nope").count()
    check(False, "an unknown collection raises")
except imsat.UnknownCollection:
    check(True, "an unknown collection raises UnknownCollection")
try:
    imsat.Client(url, token="wrong").collection("photos").add_codes(["x"], ["00" * 2])
    check(False, "a wrong token raises")
except imsat.WrongToken as e:
    check(isinstance(e, imsat.Unauthorized), "a wrong token raises WrongToken (Unauthorized)")
client.drop_collection("photos_copy")
check(all(c["name"] != "photos_copy" for c in client.collections()), "a collection dropped")

# Nearest neighbours by cosine: the collection's model records the metric, vectors of any length
# find the same item, the score is 1 - cosine, and a zero vector is refused.
emb = np.load(embeddings)
vectors_coll = client.create_collection("emb", model_file=cosine_model)
check(vectors_coll.info()["model"]["metric"] == "cosine", "info: the model's metric is cosine")
vectors_coll.add_vectors([f"e{i}" for i in range(len(emb))], emb)
answer = vectors_coll.search(vector=3 * emb[7], k=5, rerank="exact", candidates=100,
                             shortlist=30, explain=True)
hits = answer["hits"]
check(hits[0]["key"] == "e7" and abs(hits[0]["score"]) < 1e-5,
      "a cosine search finds the item whatever the query's length, at score 0")
unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
q = emb[7] / np.linalg.norm(emb[7])
check(all(abs(h["score"] - (1 - float(unit[int(h["key"][1:])] @ q))) < 1e-4 for h in hits),
      "every score is 1 - cosine similarity")
check(answer["explain"]["candidates_reranked"] == 30 and
      answer["explain"]["shortlisted_from"] == 100, "the shortlist is explained")
try:
    vectors_coll.search(vector=np.zeros(emb.shape[1], np.float32), k=3, rerank="exact")
    check(False, "a zero vector is refused")
except imsat.InvalidArgument as e:
    check("zeros" in e.message, "a zero vector raises InvalidArgument saying why")
'''


def readme_example(repo):
    """The Python example of README.md: the code block after the marker line."""
    text = open(os.path.join(repo, "README.md"), encoding="utf-8").read()
    match = re.search(r"<!-- python-example -->\s*```python\n(.*?)```", text, re.S)
    if match is None:
        fail("README.md has no Python example after <!-- python-example -->")
    return match.group(1)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    imsat, repo = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="imsat-client-")
    server = None
    try:
        images = os.path.join(work, "images")
        make_images(images)
        model = os.path.join(work, "colours.model")
        subprocess.run([imsat, "train", "--data", images, "--channels", "3", "--image-size", "8",
                        "--method", "itq", "--bits", "16", "--out", model, "--quiet"],
                       check=True)
        embeddings = os.path.join(work, "emb.npy")
        rng = np.random.default_rng(1)
        centres = rng.normal(size=(6, 24))
        np.save(embeddings, (centres[rng.integers(0, 6, 300)] +
                             0.3 * rng.normal(size=(300, 24))).astype(np.float32))
        cosine_model = os.path.join(work, "emb.model")
        subprocess.run([imsat, "train", "--data", embeddings, "--metric", "cosine", "--out",
                        cosine_model, "--quiet"], check=True)
        python = install_client(repo, work)
        port = free_port()
        data_dir = os.path.join(work, "data")
        os.makedirs(data_dir)
        server = start_server([imsat, "serve", "--data-dir", data_dir, "--port", str(port),
                               "--token", TOKEN], port)
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, IMSAT_TOKEN=TOKEN)
        result = subprocess.run([python, "-c", SESSION, url, images, model, work, cosine_model,
                                 embeddings], env=env)
        if result.returncode != 0:
            fail("the client session failed")
        # The README's example, as a user would run it, against the same server.
        # It reads photos/ and photos.model from the working directory and talks to the
        # default address, here replaced by this server's.
        os.symlink(images, os.path.join(work, "photos"))
        os.symlink(model, os.path.join(work, "photos.model"))
        code = readme_example(repo).replace("http://127.0.0.1:8080", url)
        example = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True,
                                 cwd=work)
        if example.returncode != 0:
            fail("README.md's Python example failed:\n" + example.stdout + example.stderr)
        check("mAP" in example.stdout, "README.md's Python example runs and prints the evaluation")
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
