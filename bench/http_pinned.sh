#!/usr/bin/env bash
# HTTP overhead with pinned cores: the same kNN searches by random 64-bit code
# (k = 10) over a store of N random codes (default 1,000,000), first in process, then over HTTP,
# each with one core of its own so that the load generator never steals the server's core:
#   in process   build/bench/engine_search, 1 thread, pinned to core 0
#   over HTTP    imsat serve --threads 1 pinned to core 0, wrk (1 thread, 64 connections) pinned
#                to core 1
# Prints both rates, their ratio and wrk's latency percentiles. With BATCH > 0, a second wrk run
# (4 connections) posts batches of BATCH random codes ('queries', searched together) and prints
# the queries/s they give.
#
#   bench/http_pinned.sh [N] [SECONDS] [BATCH]
set -euo pipefail
source "$(dirname "$0")/http_common.sh"
n=${1:-1000000}
secs=${2:-20}
batch=${3:-0}
port=${IMSAT_BENCH_PORT:-18092}
[ "$(nproc)" -ge 2 ] || { echo "needs two cores"; exit 1; }

"$root/build/bench/make_codes" "$n" "$dir/codes" 1 >/dev/null
"$imsat" index --data "$dir/codes" --db "$dir/db" >/dev/null 2>&1
echo "store: $n random 64-bit codes"

inproc=$(taskset -c 0 "$root/build/bench/engine_search" "$dir/db" 10 "$secs" 1 | tee "$dir/inproc.txt" |
  grep -oE '[0-9]+ queries/s' | grep -oE '^[0-9]+' || true)
cat "$dir/inproc.txt"

taskset -c 0 "$imsat" serve --db "$dir/db" --port "$port" --threads 1 2>"$dir/serve.log" &
server=$!
wait_for_server "$port"
taskset -c 1 wrk -t1 -c64 -d"${secs}s" -s "$root/bench/search_by_code.lua" "http://127.0.0.1:$port" | tail -1 | tee "$dir/wrk.txt"
http=$(grep -oE 'requests/s [0-9]+' "$dir/wrk.txt" | grep -oE '[0-9]+$')
if [ -n "$inproc" ] && [ -n "$http" ]; then
  awk -v h="$http" -v i="$inproc" 'BEGIN { printf "HTTP / in process: %.1f%%\n", 100 * h / i }'
fi
if [ "$batch" -gt 0 ]; then
  cat > "$dir/batch.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(11)
request = function()
  local q = {}
  for i = 1, $batch do
    q[i] = string.format('{"code": "%08x%08x"}', math.random(0, 0x7fffffff) * 2 + math.random(0, 1), math.random(0, 0x7fffffff) * 2 + math.random(0, 1))
  end
  return wrk.format(nil, "/v1/search", nil, '{"k": 10, "queries": [' .. table.concat(q, ",") .. ']}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("http batches of $batch: %.1f requests/s = %.0f queries/s, p50 %.1f ms, p99 %.1f ms, errors %d\n",
    summary.requests / (summary.duration / 1e6), $batch * summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout + e.status))
end
LUA
  taskset -c 1 wrk -t1 -c4 -d"${secs}s" --timeout 30s -s "$dir/batch.lua" "http://127.0.0.1:$port" | tail -1
fi
