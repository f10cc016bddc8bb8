#!/usr/bin/env bash
# The main job, end to end, on the default dataset (Fashion-MNIST from Debian's
# dataset-fashion-mnist package): train a 16-bit IMSAT(VAT) hash function on all 70,000 images
# without labels, index all of them with their labels into a durable code store, evaluate
# retrieval by label (the paper's protocol) against PCA-ITQ and LSH, and query the store.
# Serving the store over HTTP joins this script when `imsat serve` lands (README, "Status").
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
db="$out/fashion-mnist.db"
step() { echo; echo "== $1"; step_start=$(date +%s%N); }
took() {
  local ms=$((($(date +%s%N) - step_start) / 1000000))
  printf '(step took %d.%01d s)\n' $((ms / 1000)) $((ms % 1000 / 100))
}

step "build"
"$imsat" info
took

step "train IMSAT(VAT), 16 bits, on $data (about 6 minutes on 2 cores)"
if [ -f "$model" ] && [ "${IMSAT_DEMO_RETRAIN:-0}" != 1 ]; then
  echo "reusing $model (IMSAT_DEMO_RETRAIN=1 trains again)"
else
  "$imsat" train --data "$data" --method imsat-vat --bits 16 --seed 0 --out "$model"
fi
took

step "index all items with their labels into $db (resumable; a finished job is skipped)"
"$imsat" index --model "$model" --data "$data" --db "$db" --with-vectors
took

step "evaluate: 100 queries per class, the rest as gallery; PCA-ITQ and LSH trained alongside"
"$imsat" eval --data "$data" --model "$model" --methods itq,lsh --bits 16 --map-at 100 \
  --json "$out/eval.json" --csv "$out/eval.csv" --plot "$out/pr.svg"
echo "results: $out/eval.json, $out/eval.csv; precision-recall plot: $out/pr.svg"
took

step "search: the 5 nearest items to item 0 (an ankle boot), by Hamming distance, then re-ranked"
"$imsat" search --db "$db" --key 0 -k 5
"$imsat" search --db "$db" --key 0 -k 5 --rerank exact
took

step "code health of the store"
"$imsat" inspect --db "$db" --samples 20 | grep -E "^(items|bits|multi-index|code health)"
took

echo
echo "Query the store yourself:"
echo "  $imsat search --db $db --key 123 -k 10 [--rerank exact] [--json]"
echo "  $imsat search --db $db --model $model --query-file $data/t10k-images-idx3-ubyte.gz --limit 3"
