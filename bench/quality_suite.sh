#!/usr/bin/env bash
# Retrieval quality of IMSAT(VAT) against every baseline on tabular data (issue 16's suite).
#
#   bench/tabular_data.py                 # once: writes data/tabular/{satellite,letter,digits}.csv
#   bench/quality_suite.sh [BITS] [SEEDS] # default 16 bits, 3 seeds
#
# For each data set it runs two evaluations side by side, one LibTorch thread each:
#   <set>-<bits>.json       imsat-vat with today's defaults and the baselines (deep-rim,
#                           linear-rim, itq, sh, lsh)
#   <set>-<bits>-auto.json  imsat-vat with --auto (settings chosen without labels)
# into bench/results/quality/, with the same query split (seed 0) and training seeds 0..SEEDS-1.
# Every run trains on all items without labels; labels only score the retrieval.
set -euo pipefail
cd "$(dirname "$0")/.."
bits=${1:-16}
seeds=${2:-3}
imsat=${IMSAT:-build/tools/imsat}
out=bench/results/quality
mkdir -p "$out"
for set in satellite letter digits; do
  data=data/tabular/$set.csv
  [[ -f $data ]] || { echo "missing $data: run bench/tabular_data.py first" >&2; exit 1; }
  "$imsat" eval --data "$data" --bits "$bits" --seeds "$seeds" --threads 1 --quiet \
    --methods imsat-vat,deep-rim,linear-rim,itq,sh,lsh \
    --json-out "$out/$set-$bits.json" > "$out/$set-$bits.txt" &
  "$imsat" eval --data "$data" --bits "$bits" --seeds "$seeds" --threads 1 --quiet \
    --methods imsat-vat --auto \
    --json-out "$out/$set-$bits-auto.json" > "$out/$set-$bits-auto.txt" &
  wait
  echo "== $set, $bits bits, $seeds seeds"
  cat "$out/$set-$bits.txt"
  tail -n +2 "$out/$set-$bits-auto.txt" | sed 's/^imsat-vat /imsat-auto/'
done
