#!/usr/bin/env bash
# HTTP service benchmark: bulk add over HTTP, then search by code with wrk (64
# connections, 30 s), next to the same searches in process on the same store, and the server's
# resident memory. Random 64-bit codes, N items (default 1,000,000).
#
#   bench/http_bench.sh [N] [SECONDS]
set -euo pipefail
source "$(dirname "$0")/http_common.sh"
n=${1:-1000000}
secs=${2:-30}
port=${IMSAT_BENCH_PORT:-18090}

"$imsat" serve --db "$dir/db" --bits 64 --port "$port" --threads 2 --token bench \
  --max-body-bytes 67108864 --max-batch 100000 2>"$dir/serve.log" &
server=$!
wait_for_server "$port"

echo "== bulk add over HTTP: $n random 64-bit codes, JSON batches of 20,000"
python3 - "$port" "$n" <<'PY'
import http.client, json, random, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
random.seed(1)
batch = 20000
bodies = []
for start in range(0, n, batch):
    items = [{"key": str(i), "code": "%016x" % random.getrandbits(64)} for i in range(start, min(n, start + batch))]
    bodies.append(json.dumps(items))
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
t0 = time.time()
for b in bodies:
    conn.request("POST", "/v1/items", b, {"Content-Type": "application/json", "Authorization": "Bearer bench"})
    r = conn.getresponse(); body = r.read()
    if r.status != 200: sys.exit("bulk add failed: %d %s" % (r.status, body[:200]))
dt = time.time() - t0
print("bulk add: %d items in %.1f s = %.0f items/s (durable: every batch synced)" % (n, dt, n / dt))
PY
rss() { awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/$server/status"; }
echo "server resident memory with $n items: $(rss)"

echo "== wrk: POST /v1/search by random code, k = 10, 64 connections, $secs s"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
before=$(cpu_ticks)
wrk -t 2 -c 64 -d "${secs}s" --latency -s "$root/bench/search_by_code.lua" "http://127.0.0.1:$port" | tail -n 1 | tee "$dir/wrk.txt"
after=$(cpu_ticks)
rps=$(sed -E 's/^requests\/s ([0-9]+).*/\1/' "$dir/wrk.txt")
awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v rps="$rps" -v s="$secs" \
  'BEGIN { printf "server CPU per request: %.0f us (%.2f cores busy; wrk has the rest)\n", 1e6 * t / hz / (rps * s), t / hz / s }'
echo "server resident memory after the run: $(rss)"
stop_server

echo "== the same searches in process (same store, 2 threads, 10 s)"
"$root/build/bench/engine_search" "$dir/db" 10 10 2
echo "(in process, CPU per query = 2 threads x 10 s / queries)"
