#!/usr/bin/python3
"""imsat's codes beside the searches a team would otherwise pick, on the mission's metrics.

Fashion-MNIST (all 70,000 images), the paper's protocol: 100 random queries per class (NumPy's
generator, --seed), the other 69,000 images the gallery, relevance = the same label. Every method
answers the same queries here:

  exact L2          brute-force Euclidean distance on the raw pixels (float32)
  HNSW              Debian's python3-hnswlib: M 16, ef_construction 200, ef 500, top 500
  IVF-PQ            Debian's python3-faiss: IVF256,PQ16 (16-byte codes), nprobe 8, top 500
  imsat             the codes `imsat encode` writes with MODEL, ranked by Hamming distance

mAP is over the whole gallery ranking (docs/algorithm.md; HNSW and IVF-PQ return a top 500, not
a ranking of the gallery, so they have none); precision@500 over the first 500; precision within
Hamming radius 2 for codes only. Bytes/item is what each index holds in memory per item.

Usage: bench/peers.py --model MODEL [--imsat build/tools/imsat] [--seed 0]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

from fashion_mnist import FASHION, read_idx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_fashion():
    x = np.concatenate([read_idx("train-images-idx3-ubyte.gz"),
                        read_idx("t10k-images-idx3-ubyte.gz")]).reshape(-1, 784)
    y = np.concatenate([read_idx("train-labels-idx1-ubyte.gz"),
                        read_idx("t10k-labels-idx1-ubyte.gz")])
    return x.astype(np.float32), y.astype(np.int64)


def split(y, seed):
    rng = np.random.default_rng(seed)
    queries = np.sort(np.concatenate(
        [rng.choice(np.flatnonzero(y == c), 100, replace=False) for c in np.unique(y)]))
    gallery = np.setdiff1d(np.arange(len(y)), queries)
    return queries, gallery


def read_codes(path):
    """The packed codes of an `imsat encode` file (magic, version, JSON header, codes, ...)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"IMSATCDS":
        sys.exit(f"{path}: not an imsat codes file")
    header_len = struct.unpack("<I", data[12:16])[0]
    header = json.loads(data[16:16 + header_len])
    rows, nbytes = header["rows"], header["bits"] // 8
    start = 16 + header_len
    return np.frombuffer(data[start:start + rows * nbytes], dtype=np.uint8).reshape(rows, nbytes)


def map_ties_grouped(dist, relevant, levels):
    """AP with ties grouped (docs/algorithm.md) for integer distances 0..levels-1."""
    r = relevant.sum()
    if r == 0:
        return 0.0
    tp = np.cumsum(np.bincount(dist, weights=relevant, minlength=levels))
    n = np.cumsum(np.bincount(dist, minlength=levels))
    gained = np.diff(np.concatenate([[0.0], tp]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.nansum(gained / r * tp / n))


def average_precision(order, relevant):
    hits = relevant[order]
    if hits.sum() == 0:
        return 0.0
    ranks = np.flatnonzero(hits) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def evaluate_exact(x, y, queries, gallery):
    g = x[gallery]
    g_norm = (g * g).sum(1)
    aps, p500 = [], []
    for q in queries:
        d = g_norm - 2 * g @ x[q]
        order = np.argsort(d, kind="stable")
        relevant = y[gallery] == y[q]
        aps.append(average_precision(order, relevant))
        p500.append(relevant[order[:500]].mean())
    return np.mean(aps), np.mean(p500)


def evaluate_hnsw(x, y, queries, gallery):
    import hnswlib
    index = hnswlib.Index(space="l2", dim=x.shape[1])
    index.init_index(max_elements=len(gallery), M=16, ef_construction=200, random_seed=0)
    index.add_items(x[gallery], np.arange(len(gallery)), num_threads=os.cpu_count())
    index.set_ef(500)
    labels, _ = index.knn_query(x[queries], k=500, num_threads=1)
    p500 = np.mean([(y[gallery][labels[i]] == y[q]).mean() for i, q in enumerate(queries)])
    # Vectors, the level-0 links (2 M ids and a count) and the label, per item.
    return p500, x.shape[1] * 4 + (2 * 16 + 1) * 4 + 8


def evaluate_ivfpq(x, y, queries, gallery):
    import faiss
    faiss.omp_set_num_threads(1)
    index = faiss.index_factory(x.shape[1], "IVF256,PQ16")
    index.train(x[gallery])
    index.add(x[gallery])
    index.nprobe = 8
    _, labels = index.search(x[queries], 500)
    p500 = np.mean([(y[gallery][labels[i]] == y[q]).mean() for i, q in enumerate(queries)])
    return p500, 16 + 8  # the PQ code and the id


def evaluate_codes(codes, y, queries, gallery):
    bits = codes.shape[1] * 8
    popcount = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)
    g = codes[gallery]
    aps, p500, pr2 = [], [], []
    for q in queries:
        d = popcount[np.bitwise_xor(g, codes[q])].sum(1)
        relevant = (y[gallery] == y[q]).astype(np.float64)
        aps.append(map_ties_grouped(d, relevant, bits + 1))
        order = np.argsort(d, kind="stable")
        p500.append(relevant[order[:500]].mean())
        near = d <= 2
        pr2.append(relevant[near].mean() if near.any() else 0.0)
    return np.mean(aps), np.mean(p500), np.mean(pr2), codes.shape[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="an imsat hash model trained on Fashion-MNIST")
    ap.add_argument("--imsat", default=os.path.join(ROOT, "build", "tools", "imsat"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    x, y = load_fashion()
    queries, gallery = split(y, a.seed)
    with tempfile.TemporaryDirectory() as work:
        codes_path = os.path.join(work, "fmnist.codes")
        subprocess.run([a.imsat, "encode", "--model", a.model, "--data", FASHION, "--out",
                        codes_path, "--quiet"], check=True)
        codes = read_codes(codes_path)
    m_map, m_p500, m_pr2, m_bytes = evaluate_codes(codes, y, queries, gallery)
    e_map, e_p500 = evaluate_exact(x, y, queries, gallery)
    h_p500, h_bytes = evaluate_hnsw(x, y, queries, gallery)
    q_p500, q_bytes = evaluate_ivfpq(x, y, queries, gallery)
    bits = codes.shape[1] * 8
    print(f"Fashion-MNIST, {len(queries)} queries (100 per class, seed {a.seed}), "
          f"gallery {len(gallery)}; model {os.path.basename(a.model)}")
    print()
    print("| method | mAP % | precision@500 % | precision@r≤2 % | bytes/item in memory |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| imsat, {bits}-bit codes, Hamming ranking | {100 * m_map:.1f} | {100 * m_p500:.1f} | "
          f"{100 * m_pr2:.1f} | {m_bytes} |")
    print(f"| exact L2 on the raw pixels | {100 * e_map:.1f} | {100 * e_p500:.1f} | - | "
          f"{x.shape[1] * 4:,} |")
    print(f"| HNSW (hnswlib, M 16, ef 500) | - | {100 * h_p500:.1f} | - | {h_bytes:,} |")
    print(f"| IVF-PQ (faiss IVF256,PQ16, nprobe 8) | - | {100 * q_p500:.1f} | - | {q_bytes} |")


if __name__ == "__main__":
    main()
