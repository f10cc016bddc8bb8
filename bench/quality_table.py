#!/usr/bin/env python3
"""Prints bench/quality_suite.sh's results as one Markdown table per data set.

Usage: bench/quality_table.py [RESULTS_DIR] (default bench/results/quality). Each row is a
method (or IMSAT variant: the file name's suffix) with the mean and sample standard deviation
over its seeds of mAP, precision@N and precision within radius r under Hamming ranking, the
mAP under asymmetric ranking, and the settings an --auto run chose (radius scale, lambda, steps).
"""
import glob
import json
import os
import statistics
import sys


def cell(values):
    values = [100 * v for v in values]
    if len(values) < 2:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "bench/results/quality"
    by_set = {}
    for path in sorted(glob.glob(os.path.join(root, "*.json"))):
        name = os.path.basename(path)[:-5]
        parts = name.split("-")
        data_set, variant = parts[0], "-".join(parts[2:])
        with open(path) as f:
            by_set.setdefault((data_set, parts[1]), []).append((variant, json.load(f)))
    for (data_set, bits), files in sorted(by_set.items()):
        doc = files[0][1]
        p_at = f"precision_at_{doc['precision_at']}"
        p_r = f"precision_at_r{doc['radius']}"
        print(f"\n{data_set}, {bits} bits ({doc['queries']} queries, {doc['gallery']} gallery)\n")
        print(f"| method | runs | mAP | P@{doc['precision_at']} | P@r={doc['radius']} "
              "| mAP, asymmetric | chosen (eps-scale, λ, steps) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for variant, doc in sorted(files, key=lambda f: f[0]):
            methods = {}
            for r in doc["results"]:
                methods.setdefault(r["method"], []).append(r)
            for method, rows in methods.items():
                label = f"{method} --{variant}" if variant else method
                asym = [r["asymmetric"]["map"] for r in rows if "asymmetric" in r]
                chosen = ", ".join(
                    f"{a['eps_scale']:g}/{a['lambda']:g}/{a['steps']}"
                    for a in (r.get("settings", {}).get("auto") for r in rows) if a)
                print(f"| {label} | {len(rows)} | {cell([r['map'] for r in rows])} "
                      f"| {cell([r[p_at] for r in rows])} | {cell([r[p_r] for r in rows])} "
                      f"| {cell(asym) if asym else ''} | {chosen} |")


if __name__ == "__main__":
    main()
