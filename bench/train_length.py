#!/usr/bin/python3
"""Retrieval quality against training length on small data sets: how long a default run needs.

Sets (all small, as a team's first folder would be):
  fmnist-300     300 Fashion-MNIST training images (random, --seed), a folder of PNG files in
                 one subfolder per class, as `imsat` reads a user's folder
  fmnist-2000    2,000 such images
  digits         scikit-learn's digits (1,797 rows, 64 features; bench/quality_data.py writes it)

For each set and each number of optimiser steps, `imsat eval` trains IMSAT(VAT) at 16 bits
without labels (`--steps N`) and evaluates mAP, precision@50 (the galleries are too small for
precision@500) and precision@r=2 with the paper's protocol (at most 100 queries per class, half a
class at most).
Prints one table row per run with the wall time of the whole `eval` command.

Usage: bench/train_length.py [--steps 250,1000,3000,14000] [--seed 0] [--digits data/quality/digits.csv]
(digits.csv: /usr/bin/python3 bench/quality_data.py data/quality)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from fashion_mnist import read_idx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def image_folder(folder, count, seed):
    x, y = read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(y), count, replace=False):
        os.makedirs(os.path.join(folder, f"class{y[i]}"), exist_ok=True)
        Image.fromarray(x[i]).save(os.path.join(folder, f"class{y[i]}", f"{i:05d}.png"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", default="250,1000,3000,14000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--digits", default=os.path.join(ROOT, "data", "quality", "digits.csv"))
    ap.add_argument("--imsat", default=os.path.join(ROOT, "build", "tools", "imsat"))
    a = ap.parse_args()
    steps = [int(s) for s in a.steps.split(",")]
    work = tempfile.mkdtemp(prefix="imsat-length-")
    sets = []
    for count in (300, 2000):
        folder = os.path.join(work, f"fmnist-{count}")
        image_folder(folder, count, a.seed)
        sets.append((f"fmnist-{count}", folder, count))
    if os.path.exists(a.digits):
        sets.append(("digits", a.digits, 1797))
    else:
        print(f"({a.digits} missing: run bench/quality_data.py; digits left out)", file=sys.stderr)
    print(f"IMSAT(VAT), 16 bits, seed {a.seed}, {os.cpu_count()} cores")
    print()
    print("| set | items | steps | mAP % | precision@50 % | precision@r=2 % | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, path, items in sets:
        for n in steps:
            t0 = time.time()
            r = subprocess.run([a.imsat, "eval", "--data", path, "--methods", "imsat-vat",
                                "--bits", "16", "--steps", str(n), "--seed", str(a.seed),
                                "--precision-at", "50", "--json"], capture_output=True, text=True)
            secs = time.time() - t0
            if r.returncode != 0:
                sys.exit(f"eval failed on {name}: {r.stderr}")
            row = json.loads(r.stdout)["results"][0]
            p_at = next(k for k in row if k.startswith("precision_at_") and k[13:].isdigit())
            print(f"| {name} | {items} | {n:,} | {100 * row['map']:.1f} | {100 * row[p_at]:.1f} "
                  f"| {100 * row['precision_at_r2']:.1f} | {secs:.0f} |", flush=True)


if __name__ == "__main__":
    main()
