#!/usr/bin/python3
"""Image folders to durable codes with `imsat index`: throughput, and peak memory by folder size.

Throughput (the default): writes --count JPEG files of --side x --side pixels (Fashion-MNIST
pictures, upscaled, tinted and noised so that they are real photographs' size and compress like
them) into 10 label subfolders, trains a PCA-ITQ model on them for each front-end, then times
`imsat index` from the folder into a new store: the scan, reading, decoding and preprocessing on
every core, a 96-pixel JPEG thumbnail of each file (the default; one row without), encoding, and
the durable bulk load. Prints images/s end to end and the command's peak resident memory.

Memory (--memory 10000,200000): for each count, a folder of that many JPEG files (copies of
--count distinct ones, so that a large folder is quick to write; each copy is its own file) is
indexed with a model trained on the distinct ones, and the peak resident memory of `imsat index`
is printed beside the count: it must not grow with the folder.

Needs Debian's python3-pil and python3-numpy (tools/setup.sh installs both).

Usage: bench/images.py [--count 4000] [--side 256] [--memory 10000,200000]
                       [--imsat build/tools/imsat]
"""
import argparse
import gzip
import os
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
    """Runs cmd; returns (stderr, peak resident memory in MiB)."""
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{text}")
    return text, usage.ru_maxrss / 1024


def copy_folder(source, folder, count):
    """`count` files in `folder`, copies of the files under `source` in turn, in label folders."""
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(source) for f in names)
    for i in range(count):
        src = files[i % len(files)]
        label = os.path.basename(os.path.dirname(src))
        os.makedirs(os.path.join(folder, label), exist_ok=True)
        shutil.copyfile(src, os.path.join(folder, label, f"{i:07d}.jpg"))


def memory(a, work, folder):
    model = os.path.join(work, "m.model")
    run([a.imsat, "train", "--data", folder, "--method", "itq", "--bits", "16",
         "--image-size", "32", "--channels", "3", "--quiet", "--out", model])
    rows = []
    for count in [int(c) for c in a.memory.split(",")]:
        big = os.path.join(work, f"copies{count}")
        t0 = time.time()
        copy_folder(folder, big, count)
        wrote = time.time() - t0
        db = os.path.join(work, "db")
        shutil.rmtree(db, ignore_errors=True)
        t0 = time.time()
        _, rss = run([a.imsat, "index", "--model", model, "--data", big, "--db", db, "--quiet"])
        secs = time.time() - t0
        rows.append((count, rss, count / secs, secs))
        print(f"{count} files (copied in {wrote:.0f} s): peak RSS {rss:.0f} MiB, "
              f"{count / secs:,.0f} images/s", flush=True)
        shutil.rmtree(big, ignore_errors=True)
    print()
    print("| files in the folder | peak resident memory of `imsat index` | images/s | seconds |")
    print("| --- | --- | --- | --- |")
    for count, rss, rate, secs in rows:
        print(f"| {count:,} | {rss:,.0f} MiB | {rate:,.0f} | {secs:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=4000)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--memory", default="",
                    help="comma-separated folder sizes: measure peak memory instead")
    ap.add_argument("--imsat", default=os.path.join(ROOT, "build", "tools", "imsat"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="imsat-images-")
    try:
        folder = os.path.join(work, "photos")
        t0 = time.time()
        size = write_folder(folder, a.count, a.side, a.seed)
        print(f"wrote {a.count} JPEG files of {a.side} x {a.side} ({size / 1e6:.1f} MB, "
              f"{time.time() - t0:.1f} s), seed {a.seed}, {os.cpu_count()} cores", flush=True)
        if a.memory:
            memory(a, work, folder)
            return
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
            _, rss = run([a.imsat, "index", "--model", model, "--data", folder, "--db", db,
                          "--quiet"] + index_flags)
            secs = time.time() - t0
            rows.append((name, a.count / secs, rss, secs))
        print()
        print("| front-end | images/s to durable codes | peak resident memory | seconds |")
        print("| --- | --- | --- | --- |")
        for name, rate, rss, secs in rows:
            print(f"| {name} | {rate:,.0f} | {rss:,.0f} MiB | {secs:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
