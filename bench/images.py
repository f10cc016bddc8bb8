#!/usr/bin/python3
"""Image-folder throughput: JPEG files to durable codes with `imsat index` (issue 12).

Writes --count JPEG files of --side x --side pixels (Fashion-MNIST pictures, upscaled, tinted
and noised so that they are real photographs' size and compress like them) into 10 label
subfolders, trains a PCA-ITQ model on them for each front-end, then times `imsat index` from the
folder into a new store: reading, decoding and preprocessing on every core, a 96-pixel JPEG
thumbnail of each file (the default; one row without), encoding, and the durable bulk load.
Prints a table (images/s end to end, and the reading stage alone).

Needs Debian's python3-pil and python3-numpy (tools/setup.sh installs both).

Usage: bench/images.py [--count 4000] [--side 256] [--imsat build/tools/imsat]
"""
import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = "/usr/share/datasets/fashion-mnist"


def write_folder(folder, count, side, seed):
    rng = np.random.default_rng(seed)
    with gzip.open(os.path.join(FASHION, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(-1, 28, 28)
    with gzip.open(os.path.join(FASHION, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read()[8:], dtype=np.uint8)
    for c in range(10):
        os.makedirs(os.path.join(folder, f"class{c}"), exist_ok=True)
    total_bytes = 0
    for i in range(count):
        tint = rng.uniform(0.4, 1.0, size=3)
        grey = Image.fromarray(255 - images[i]).resize((side, side), Image.BILINEAR)
        rgb = np.asarray(grey, dtype=np.float32)[:, :, None] * tint[None, None, :]
        rgb += rng.normal(0, 6, size=rgb.shape)
        path = os.path.join(folder, f"class{labels[i]}", f"{i:06d}.jpg")
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path, quality=90)
        total_bytes += os.path.getsize(path)
    return total_bytes


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=4000)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--imsat", default=os.path.join(ROOT, "build", "tools", "imsat"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="imsat-images-")
    try:
        folder = os.path.join(work, "photos")
        t0 = time.time()
        size = write_folder(folder, a.count, a.side, a.seed)
        print(f"wrote {a.count} JPEG files of {a.side} x {a.side} ({size / 1e6:.1f} MB, "
              f"{time.time() - t0:.1f} s), seed {a.seed}, {os.cpu_count()} cores")
        rows = []
        for name, flags, index_flags in [
                ("raw pixels, grey 32 x 32", ["--channels", "1"], []),
                ("raw pixels, grey 32 x 32, no thumbnails", ["--channels", "1"],
                 ["--thumbnail-size", "0"]),
                ("raw pixels, RGB 32 x 32", ["--channels", "3"], []),
                ("GIST, grey 32 x 32", ["--channels", "1", "--image-features", "gist"], [])]:
            model = os.path.join(work, "m.model")
            run([a.imsat, "train", "--data", folder, "--method", "itq", "--bits", "16",
                 "--image-size", "32", "--quiet", "--out", model] + flags)
            db = os.path.join(work, "db")
            shutil.rmtree(db, ignore_errors=True)
            t0 = time.time()
            r = run([a.imsat, "index", "--model", model, "--data", folder, "--db", db] +
                    index_flags)
            secs = time.time() - t0
            m = re.search(r"read images: (\d+) items in ([0-9.]+) s", r.stderr)
            read_rate = int(m.group(1)) / float(m.group(2)) if m else float("nan")
            rows.append((name, a.count / secs, read_rate, secs))
        print()
        print(f"| front-end | images/s to durable codes | images/s reading alone | seconds |")
        print(f"| --- | --- | --- | --- |")
        for name, rate, read_rate, secs in rows:
            print(f"| {name} | {rate:,.0f} | {read_rate:,.0f} | {secs:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
