#!/usr/bin/env bash
# Search by vector over HTTP: dynamic batching of the model's encodes.
# Fashion-MNIST's 60,000 training images are indexed with MODEL; the queries are test images
# sent as JSON vectors (784 pixel values). The same store is served three ways, one after the
# other, each measured with wrk (64 connections, then 1 connection for the lone-request latency):
#   unbatched  the defaults (--encode-batch 1 --model-threads 0): every request encodes alone on
#              a worker thread (how searches by vector ran before batching); then, on the same
#              server, requests that each carry a batch of 8 searches by vector ('queries')
#   batched, worker threads   --encode-batch 64: the searches that the worker threads run at the
#              same time share one model call
#   batched, model pool of 64  --model-threads 64: searches by vector are handed to a pool of 64
#              threads, so that up to 64 concurrent ones can share a model call
#   by code    the same searches by the images' codes (no model call): the ceiling
#
#   [IMSAT=build/tools/imsat] bench/vector_search_bench.sh MODEL [SECONDS] [DATA_FOLDER]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
imsat=${IMSAT:-$root/build/tools/imsat}  # IMSAT=path: another build, to compare
model=${1:?usage: $0 MODEL [SECONDS] [DATA_FOLDER]}
secs=${2:-20}
data=${3:-/usr/share/datasets/fashion-mnist}
port=${IMSAT_BENCH_PORT:-18091}
dir=$(mktemp -d)
server=
stop_server() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=
}
cleanup() { stop_server; rm -rf "$dir"; }
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }

mkdir -p "$dir/train"
ln -s "$data/train-images-idx3-ubyte.gz" "$dir/train/train-images-idx3-ubyte.gz"
ln -s "$data/train-labels-idx1-ubyte.gz" "$dir/train/train-labels-idx1-ubyte.gz"
"$imsat" index --model "$model" --data "$dir/train" --db "$dir/db" >/dev/null 2>"$dir/index.log" ||
  { cat "$dir/index.log"; exit 1; }
echo "indexed: $(tail -1 "$dir/index.log")"

# 200 test images as search bodies (by vector and, for the ceiling, by their codes).
python3 - "$data" "$dir" <<'PY'
import gzip, json, sys
data, out = sys.argv[1], sys.argv[2]
with gzip.open(data + "/t10k-images-idx3-ubyte.gz") as f:
    raw = f.read()[16:16 + 200 * 784]
with open(out + "/vectors.lua", "w") as f:
    f.write("bodies = {\n")
    for i in range(200):
        v = list(raw[i * 784:(i + 1) * 784])
        f.write("[[" + json.dumps({"vector": v, "k": 10}, separators=(",", ":")) + "]],\n")
    f.write("}\n")
# The same 200 images as 25 batches of 8 searches ('queries'): one request, one model call.
with open(out + "/batches.lua", "w") as f:
    f.write("bodies = {\n")
    for b in range(25):
        qs = [{"vector": list(raw[i * 784:(i + 1) * 784])} for i in range(8 * b, 8 * b + 8)]
        f.write("[[" + json.dumps({"k": 10, "queries": qs}, separators=(",", ":")) + "]],\n")
    f.write("}\n")
with open(out + "/queries.json", "w") as f:
    for i in range(200):
        f.write(json.dumps(list(raw[i * 784:(i + 1) * 784])) + "\n")
PY
cat > "$dir/run.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/search", nil, bodies[(n % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("requests/s %.0f, p50 %.2f ms, p99 %.2f ms, errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout + e.status))
end
LUA

start_server() {  # extra serve options...
  "$imsat" serve --db "$dir/db" --model "$model" --port "$port" --threads 2 "$@" 2>"$dir/serve.log" &
  server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
}
measure() {  # label, lua file with bodies
  local label=$1 bodies=$2
  cat "$bodies" "$dir/run.lua" > "$dir/wrk.lua"
  curl -sf -X POST -H 'Content-Type: application/json' --data "$(sed -n '1p' "$dir/queries.json" | sed 's/^/{"vector": /; s/$/, "k": 10}/')" \
    "http://127.0.0.1:$port/v1/search" >/dev/null || { echo "$label: the search failed"; cat "$dir/serve.log"; exit 1; }
  wrk -t2 -c64 -d"${secs}s" -s "$dir/wrk.lua" "http://127.0.0.1:$port" | tail -1 | sed "s/^/$label, 64 connections: /"
  wrk -t1 -c1 -d"$(( secs / 2 ))s" -s "$dir/wrk.lua" "http://127.0.0.1:$port" | tail -1 | sed "s/^/$label, 1 connection:   /"
}

start_server --model-threads 0 --encode-batch 1
measure "unbatched" "$dir/vectors.lua"
measure "batches of 8 vectors per request (times 8 = vectors per second)" "$dir/batches.lua"
stop_server
start_server --encode-batch 64
measure "batched, worker threads" "$dir/vectors.lua"
stop_server
start_server --encode-batch 64 --model-threads 64
measure "batched, model pool of 64" "$dir/vectors.lua"
stop_server
start_server --encode-batch 64 --model-threads 64 --encode-wait-us 200
measure "batched, model pool of 64, wait 200 us" "$dir/vectors.lua"
# Codes of the same 200 images, from the server itself (each body's query_code).
python3 - "$port" "$dir" <<'PY'
import http.client, json, sys
port, out = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port)
codes = []
for line in open(out + "/queries.json"):
    conn.request("POST", "/v1/search", json.dumps({"vector": json.loads(line), "k": 1}),
                 {"Content-Type": "application/json"})
    codes.append(json.loads(conn.getresponse().read())["code"])
with open(out + "/codes.lua", "w") as f:
    f.write("bodies = {\n" + "".join('[[{"code":"%s","k":10}]],\n' % c for c in codes) + "}\n")
PY
measure "by code  " "$dir/codes.lua"
stop_server
