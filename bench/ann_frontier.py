#!/usr/bin/python3
"""Nearest neighbours in the users' own vector space: imsat beside hnswlib and faiss.

One run builds every index on the same data and sweeps each method's knob; every search is one
query at a time on one thread. Printed per setting: recall@10 against exact neighbours (the
ann-benchmarks measure), queries per second, and bytes an item the index holds in memory.

  imsat    `imsat train --metric METRIC` (PCA-ITQ, 128 bits, the default of a metric job) on
           the base vectors, a store of the base with its vectors (build/bench/ann_frontier), then
           exact re-ranking of CANDIDATES Hamming candidates, of which the best SHORTLIST by the
           asymmetric score are compared exactly; vectors cached in memory (as float32, and as
           float16: imsat serve --vector-precision float16), or read from RocksDB
  HNSW     Debian's python3-hnswlib, M 16, ef_construction 200 (built on every core), ef swept
  IVF-PQ   Debian's python3-faiss, IVF{nlist},PQ16 (16-byte codes), nprobe swept, without and
           with exact refinement of 10 x k candidates (IndexRefineFlat, k_factor 10)

Bytes an item: imsat's is the store's in-memory arrays (codes, ids, multi-index) per item, plus,
when vectors are in memory, the engine's cache per item (the vectors at 4 x dim bytes, or 2 x dim
as float16, their keys and the row map); HNSW's is 4 x dim + 2 x M x 4 + 12 (vector, level-0
links, count, label); IVF-PQ's is 16 + 8 (code, id), plus 4 x dim with refinement.

Data sets:
  fashion-mnist   Debian's dataset-fashion-mnist: the 60,000 training images as the base, the
                  first 1,000 test images as queries (784 values, pixels 0-255)
  clustered-1m    a generated mixture with clusters at three scales (seeded; see make_clustered):
                  1,000,000 base vectors and 1,000 queries of 128 values

Every sweep runs --repeats times (3) in turn, and queries per second is the median of the passes.

Usage: bench/ann_frontier.py DATASET [--metric l2|cosine] [--seed 0] [--repeats 3] [--out FILE.json]
"""
import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K = 10


def load_fashion():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from fashion_mnist import read_idx
    base = read_idx("train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32)
    queries = read_idx("t10k-images-idx3-ubyte.gz").reshape(-1, 784)[:1000].astype(np.float32)
    return base, queries, {"nlist": 256}


def make_clustered(seed, n=1_000_000, nq=1000, dim=128, latent=32):
    """Points in a 32-dimensional latent space around 64 top-level centres (spread 4), each with
    32 sub-centres (spread 1.5), each point at spread 0.5 from its sub-centre; mapped into 128
    dimensions by a random orthonormal map, plus noise of spread 0.1 in every dimension. Queries
    are drawn the same way (not base points)."""
    rng = np.random.default_rng(seed)
    top = rng.normal(0, 4.0, (64, latent))
    sub = top[:, None, :] + rng.normal(0, 1.5, (64, 32, latent))
    sub = sub.reshape(-1, latent)
    basis = np.linalg.qr(rng.normal(size=(dim, latent)))[0].T  # latent x dim, orthonormal rows

    def draw(count):
        out = np.empty((count, dim), np.float32)
        for s in range(0, count, 100_000):
            m = min(100_000, count - s)
            z = sub[rng.integers(0, len(sub), m)] + rng.normal(0, 0.5, (m, latent))
            out[s:s + m] = z @ basis + rng.normal(0, 0.1, (m, dim))
        return out

    return draw(n), draw(nq), {"nlist": 1024}


# Each data set's sweeps: imsat's (candidates, shortlist) with vectors in memory and in RocksDB,
# HNSW's ef and IVF-PQ's nprobe.
SWEEPS = {
    "fashion-mnist": {
        "memory": [(500, 0), (1000, 0), (1000, 100), (1000, 200), (1000, 300), (2000, 200),
                   (2000, 300), (3000, 500), (5000, 1000)],
        "rocksdb": [(1000, 100), (2000, 200), (2000, 300), (3000, 500)],
        "ef": [10, 16, 20, 32, 50, 100], "nprobe": [1, 4, 8, 16, 32]},
    "clustered-1m": {
        "memory": [(1000, 100), (2000, 300), (5000, 500), (10000, 1000), (10000, 2000),
                   (10000, 5000), (10000, 0)],
        "rocksdb": [(2000, 300), (5000, 500), (10000, 1000), (10000, 2000)],
        "ef": [10, 16, 32, 64, 128], "nprobe": [1, 4, 8, 16, 32, 64]},
}


def exact_truth(base, queries, metric):
    if metric == "cosine":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    norms = (base.astype(np.float64) ** 2).sum(1)
    truth = np.empty((len(queries), K), np.int32)
    for s in range(0, len(queries), 100):
        q = queries[s:s + 100].astype(np.float64)
        d = norms[None, :] - 2 * q @ base.T.astype(np.float64)
        part = np.argpartition(d, K, axis=1)[:, :K]
        order = np.take_along_axis(d, part, 1).argsort(1)
        truth[s:s + 100] = np.take_along_axis(part, order, 1)
    return truth


def recall(found, truth):
    return float(np.mean([len(set(f[:K]) & set(t)) / K for f, t in zip(found, truth)]))


def write_ivecs(path, rows):
    with open(path, "wb") as f:
        for r in rows:
            f.write(struct.pack("<i", len(r)))
            f.write(np.asarray(r, np.int32).tobytes())


def timed_sweeps(knobs, search, repeats):
    """Runs search(knob) -> found lists for every knob, the whole sweep `repeats` times in turn (so
    a passing disturbance of this shared machine touches one pass, not one knob): per knob the
    first pass's results and the median queries per second."""
    seconds = {k: [] for k in knobs}
    found = {}
    for _ in range(repeats):
        for k in knobs:
            t0 = time.time()
            f = search(k)
            seconds[k].append(time.time() - t0)
            found.setdefault(k, f)
    return {k: (found[k], float(np.median(seconds[k]))) for k in knobs}


def run_hnsw(base, queries, truth, metric, efs, repeats):
    import hnswlib
    space = "cosine" if metric == "cosine" else "l2"
    index = hnswlib.Index(space=space, dim=base.shape[1])
    t0 = time.time()
    index.init_index(max_elements=len(base), M=16, ef_construction=200, random_seed=100)
    index.add_items(base, np.arange(len(base)), num_threads=os.cpu_count())
    build = time.time() - t0
    index.set_num_threads(1)

    def search(ef):
        index.set_ef(ef)
        return [index.knn_query(q, k=K)[0][0] for q in queries]

    rows = []
    for ef, (found, s) in timed_sweeps(efs, search, repeats).items():
        rows.append({"method": "hnsw", "knob": f"ef {ef}", "recall": recall(found, truth),
                     "qps": len(queries) / s,
                     "bytes_per_item": 4 * base.shape[1] + 2 * 16 * 4 + 12,
                     "build_seconds": build})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def run_ivfpq(base, queries, truth, metric, nlist, probes, seed, repeats):
    import faiss
    faiss.omp_set_num_threads(os.cpu_count())
    dim = base.shape[1]
    if metric == "cosine":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    base = np.ascontiguousarray(base, np.float32)
    queries = np.ascontiguousarray(queries, np.float32)
    t0 = time.time()
    ivf = faiss.index_factory(dim, f"IVF{nlist},PQ16")
    rng = np.random.default_rng(seed)
    sample = base[rng.choice(len(base), min(len(base), 100_000), replace=False)]
    ivf.train(sample)
    refine = faiss.IndexRefineFlat(ivf)  # adding to it adds to the IVF-PQ index too
    refine.add(base)
    refine.k_factor = 10
    build = time.time() - t0
    faiss.omp_set_num_threads(1)
    rows = []
    for name, index, extra in (("ivf-pq", ivf, 0), ("ivf-pq + refine", refine, 4 * dim)):
        def search(nprobe):
            faiss.extract_index_ivf(ivf).nprobe = nprobe
            return [index.search(q[None, :], K)[1][0] for q in queries]

        for nprobe, (found, s) in timed_sweeps(probes, search, repeats).items():
            rows.append({"method": name, "knob": f"nprobe {nprobe}", "recall": recall(found, truth),
                         "qps": len(queries) / s, "bytes_per_item": 24 + extra,
                         "build_seconds": build})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def run_imsat(work, base, queries, truth, metric, memory_sweep, rocksdb_sweep, seed, imsat,
              repeats):
    np.save(os.path.join(work, "base.npy"), base)
    np.save(os.path.join(work, "queries.npy"), queries)
    write_ivecs(os.path.join(work, "truth.ivecs"), truth)
    train = base
    if len(base) > 200_000:  # PCA-ITQ learns its rotation from a sample
        train = base[np.random.default_rng(seed).choice(len(base), 200_000, replace=False)]
    np.save(os.path.join(work, "train.npy"), train)
    model = os.path.join(work, "model.imsat")
    t0 = time.time()
    subprocess.run([imsat, "train", "--data", os.path.join(work, "train.npy"), "--metric", metric,
                    "--seed", str(seed), "--out", model, "--quiet"], check=True)
    train_s = time.time() - t0
    out = subprocess.run(
        [os.path.join(ROOT, "build/bench/ann_frontier"), model, os.path.join(work, "base.npy"),
         os.path.join(work, "queries.npy"), os.path.join(work, "truth.ivecs"),
         ",".join(f"{c}:{s}" for c, s in memory_sweep * repeats),
         ",".join(f"{c}:{s}" for c, s in rocksdb_sweep * repeats),
         ",".join(f"{c}:{s}" for c, s in memory_sweep * repeats)],
        check=True, capture_output=True, text=True)
    sys.stderr.write(out.stderr)
    # Each sweep ran `repeats` times in turn: one row per setting, with the median queries/s.
    runs = {}
    for line in out.stdout.splitlines():
        r = json.loads(line)
        runs.setdefault((r["vectors"], r["candidates"], r["shortlist"]), []).append(r)
    rows = []
    for same in runs.values():
        r = dict(same[0], qps=float(np.median([x["qps"] for x in same])))
        shortlist = f" / {r['shortlist']}" if r["shortlist"] else ""
        where = {"memory": "vectors in memory", "memory-float16": "float16 vectors in memory",
                 "rocksdb": "vectors in RocksDB"}[r["vectors"]]
        rows.append({"method": f"imsat, {where}",
                     "knob": f"candidates {r['candidates']}{shortlist}", "recall": r["recall"],
                     "qps": r["qps"], "bytes_per_item": r["bytes_per_item"] + r["vector_bytes"],
                     "train_seconds": train_s, "bits": r["bits"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", choices=["fashion-mnist", "clustered-1m"])
    ap.add_argument("--metric", default="l2", choices=["l2", "cosine"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--imsat", default=os.path.join(ROOT, "build/tools/imsat"))
    ap.add_argument("--repeats", type=int, default=3,
                    help="passes over each sweep; queries/s is the median of the passes")
    ap.add_argument("--out", help="also write the settings and rows as JSON here")
    args = ap.parse_args()

    if args.dataset == "fashion-mnist":
        base, queries, peer = load_fashion()
    else:
        base, queries, peer = make_clustered(args.seed)
    truth = exact_truth(base, queries, args.metric)
    sweep = SWEEPS[args.dataset]
    rows = []
    with tempfile.TemporaryDirectory(prefix="imsat-frontier-") as work:
        rows += run_imsat(work, base, queries, truth, args.metric, sweep["memory"],
                          sweep["rocksdb"], args.seed, args.imsat, args.repeats)
    rows += run_hnsw(base, queries, truth, args.metric, sweep["ef"], args.repeats)
    rows += run_ivfpq(base, queries, truth, args.metric, peer["nlist"], sweep["nprobe"],
                      args.seed, args.repeats)

    print(f"\n{args.dataset}: {len(base):,} base vectors of {base.shape[1]}, {len(queries):,} "
          f"queries, metric {args.metric}, recall@{K}, one thread, one query at a time\n")
    print("| method | setting | bytes/item in memory | recall@10 | queries/s |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['method']} | {r['knob']} | {r['bytes_per_item']:,.0f} | {r['recall']:.3f} | "
              f"{r['qps']:,.0f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": " ".join(["bench/ann_frontier.py"] + sys.argv[1:]),
                       "dataset": args.dataset, "metric": args.metric, "seed": args.seed,
                       "repeats": args.repeats,
                       "base": len(base), "queries": len(queries), "dim": int(base.shape[1]),
                       "cpu": platform.processor() or platform.machine(),
                       "date": time.strftime("%Y-%m-%d"), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
