#!/usr/bin/env bash
# Retrieval quality of IMSAT(VAT) against every baseline.
#
#   bench/quality_data.py        # once: data/quality/{satellite,letter,digits}.csv, fmnist10k/
#   bench/quality_suite.sh [BITS] [SEEDS] [SETS] [VARIANT...]
#
# BITS defaults to 16, SEEDS to 3, SETS to "satellite letter digits" (fmnist10k is the
# 10,000-image slice). For each set it runs, side by side with one LibTorch thread each:
#   <set>-<bits>.json          imsat-vat with today's defaults and the baselines (deep-rim,
#                              linear-rim, itq, sh, lsh; itq only where bits <= features)
#   <set>-<bits>-<name>.json   imsat-vat with each VARIANT, given as name:flags, default
#                              "auto:--auto" (settings chosen without labels); e.g.
#                              "affine:--augment affine"
# into bench/results/quality/, with the same query split (seed 0) and training seeds 0..SEEDS-1.
# Every run trains on all items without labels; labels only score the retrieval.
# BASELINES=0 skips the first evaluation (to add a variant to results already there).
set -euo pipefail
cd "$(dirname "$0")/.."
bits=${1:-16}
seeds=${2:-3}
sets=${3:-satellite letter digits}
shift $(($# < 3 ? $# : 3))
variants=("$@")
[[ ${#variants[@]} -gt 0 ]] || variants=("auto:--auto")
imsat=${IMSAT:-build/tools/imsat}
out=bench/results/quality
mkdir -p "$out"
for set in $sets; do
  data=data/quality/$set.csv
  [[ $set == fmnist10k ]] && data=data/quality/fmnist10k
  [[ -e $data ]] || { echo "missing $data: run bench/quality_data.py first" >&2; exit 1; }
  common=(eval --data "$data" --bits "$bits" --seeds "$seeds" --threads 1 --quiet)
  # PCA-ITQ makes at most as many bits as the data have features (a CSV's columns but its label).
  baselines=imsat-vat,deep-rim,linear-rim,itq,sh,lsh
  if [[ -f $data ]] && (( bits > $(head -1 "$data" | tr -cd ',' | wc -c) )); then
    baselines=imsat-vat,deep-rim,linear-rim,sh,lsh
  fi
  if [[ ${BASELINES:-1} != 0 ]]; then
    "$imsat" "${common[@]}" --methods "$baselines" \
      --json-out "$out/$set-$bits.json" > "$out/$set-$bits.txt" &
  fi
  for v in "${variants[@]}"; do
    name=${v%%:*}
    read -r -a flags <<< "${v#*:}"
    "$imsat" "${common[@]}" --methods imsat-vat "${flags[@]}" \
      --json-out "$out/$set-$bits-$name.json" > "$out/$set-$bits-$name.txt" &
  done
  wait
  echo "== $set, $bits bits, $seeds seeds"
  cat "$out/$set-$bits.txt"
  for v in "${variants[@]}"; do
    name=${v%%:*}
    tail -n +2 "$out/$set-$bits-$name.txt" | sed "s/^imsat-vat /imsat-$name/"
  done
done
