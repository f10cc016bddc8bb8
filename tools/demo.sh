#!/usr/bin/env bash
# The main job, end to end, on the default dataset (Fashion-MNIST from Debian's
# dataset-fashion-mnist package): train a 16-bit IMSAT(VAT) hash function on all 70,000 images
# without labels, then evaluate retrieval by label (the paper's protocol) against PCA-ITQ and LSH.
# Every step is real. Indexing into a durable store and serving over HTTP join this script when
# the `imsat index` and `imsat serve` commands land (README, "Status").
#
# Environment: IMSAT_DATA (dataset path), IMSAT_DEMO_DIR (outputs, default out/demo),
# IMSAT_DEMO_RETRAIN=1 to train again when the model file already exists.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/setup.sh"
imsat="$root/build/tools/imsat"
data=${IMSAT_DATA:-/usr/share/datasets/fashion-mnist}
out=${IMSAT_DEMO_DIR:-$root/out/demo}
mkdir -p "$out"
model="$out/imsat-vat-16.model"

echo "== build"
"$imsat" info

echo "== train IMSAT(VAT), 16 bits, on $data (about 6 minutes on 2 cores)"
if [ -f "$model" ] && [ "${IMSAT_DEMO_RETRAIN:-0}" != 1 ]; then
  echo "reusing $model (IMSAT_DEMO_RETRAIN=1 trains again)"
else
  "$imsat" train --data "$data" --method imsat-vat --bits 16 --seed 0 --out "$model"
fi

echo "== evaluate: 100 queries per class, the rest as gallery; PCA-ITQ and LSH trained alongside"
"$imsat" eval --data "$data" --model "$model" --methods itq,lsh --bits 16 \
  --json "$out/eval.json" --csv "$out/eval.csv"
echo "results written to $out/eval.json and $out/eval.csv"
