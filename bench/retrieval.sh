#!/usr/bin/env bash
# Retrieval quality on Fashion-MNIST (all 70,000 items; the paper's protocol: 100 queries per
# class, seed 0, the rest is the gallery; every hash function trained on all items, no labels).
# Prints one table per run and writes JSON/CSV under bench/results/.
#
#   bench/retrieval.sh [BITS...]        default: 16 32 64
#
# Environment: IMSAT_SEEDS (IMSAT(VAT) training runs per code length, default 3),
# IMSAT_DATA (default /usr/share/datasets/fashion-mnist).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
imsat="$root/build/tools/imsat"
data=${IMSAT_DATA:-/usr/share/datasets/fashion-mnist}
seeds=${IMSAT_SEEDS:-3}
out="$root/bench/results"
mkdir -p "$out"
bits_list=("$@")
[ ${#bits_list[@]} -gt 0 ] || bits_list=(16 32 64)
for bits in "${bits_list[@]}"; do
  "$imsat" eval --data "$data" --methods imsat-vat --seeds "$seeds" --bits "$bits" \
    --json-out "$out/imsat-vat-$bits.json" --csv "$out/imsat-vat-$bits.csv"
  "$imsat" eval --data "$data" --methods imsat-rpt,deep-rim,linear-rim,itq,sh,lsh --bits "$bits" \
    --json-out "$out/baselines-$bits.json" --csv "$out/baselines-$bits.csv"
done
