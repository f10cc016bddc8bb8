#!/usr/bin/env bash
# The main job, end to end, on the default dataset (Fashion-MNIST from Debian's
# dataset-fashion-mnist package): train a 16-bit IMSAT(VAT) hash function on all 70,000 images
# without labels, index all of them with their labels into a durable code store, evaluate
# retrieval by label (the paper's protocol) against PCA-ITQ and LSH, and query the store.
# Finally it serves the store over HTTP on 127.0.0.1 (a JSON API and a web page) until Ctrl-C.
#
# Environment: IMSAT_DATA (dataset path), IMSAT_DEMO_DIR (outputs, default out/demo),
# IMSAT_DEMO_RETRAIN=1 to train again when the model file already exists, IMSAT_DEMO_PORT
# (default 8080), IMSAT_DEMO_SERVE_SECONDS=N to stop serving after N seconds (default: until
# Ctrl-C).
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

step "train IMSAT(VAT), 16 bits, on $data (about 5 minutes on 2 cores)"
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
  --json-out "$out/eval.json" --csv "$out/eval.csv" --plot "$out/pr.svg"
echo "results: $out/eval.json, $out/eval.csv; precision-recall plot: $out/pr.svg"
took

step "search: the 5 nearest items to item 0 (an ankle boot), by Hamming distance, then re-ranked"
"$imsat" search --db "$db" --key 0 -k 5
"$imsat" search --db "$db" --key 0 -k 5 --rerank exact
took

step "code health of the store"
"$imsat" inspect --db "$db" --samples 20 | grep -E "^(items|bits|multi-index|code health)"
took

step "serve the store over HTTP on 127.0.0.1"
port=${IMSAT_DEMO_PORT:-8080}
"$imsat" serve --db "$db" --model "$model" --port "$port" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  kill -0 $server 2>/dev/null || { echo "imsat serve exited" >&2; exit 1; }
  sleep 0.5
done
echo "search by stored item over HTTP:"
curl -sf -X POST "http://127.0.0.1:$port/v1/search" -H 'Content-Type: application/json' \
  -d '{"key": "0", "k": 3}'
echo
took

cat <<EOT

The store is served at http://127.0.0.1:$port/ (open it in a browser: pick an item, upload an
image or draw one, and see its nearest neighbours). From a terminal:
  curl -s http://127.0.0.1:$port/v1/info
  curl -s -X POST http://127.0.0.1:$port/v1/search -H 'Content-Type: application/json' -d '{"key": "123", "k": 10, "rerank": "exact"}'
  curl -s -X POST 'http://127.0.0.1:$port/v1/search/image?k=5' -H 'Content-Type: image/png' --data-binary @picture.png
  curl -s -X POST http://127.0.0.1:$port/v1/evaluate
  $imsat search --db $db --key 123 -k 10 --rerank exact
The HTTP API is described at http://127.0.0.1:$port/openapi.json.
EOT
if [ -n "${IMSAT_DEMO_SERVE_SECONDS:-}" ]; then
  sleep "$IMSAT_DEMO_SERVE_SECONDS"
else
  echo "Serving until Ctrl-C."
  wait $server
fi
