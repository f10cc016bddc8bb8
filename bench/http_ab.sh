#!/usr/bin/env bash
# Two builds of `imsat serve` side by side on one store (issue 15, item 4): each round starts
# build A, then build B, pinned to core 0 with one I/O thread, and runs wrk (1 thread, 64
# connections, random 64-bit codes, k = 10) pinned to core 1 against it; then the same searches
# in process (build/bench/engine_search, 1 thread, core 0). Alternating rounds keep a noisy
# machine's drift out of the comparison.
#
#   bench/http_ab.sh IMSAT_A IMSAT_B DB [SECONDS] [ROUNDS]
#
# DB: a 64-bit store, e.g. made by
#   build/bench/make_codes 1000000 /tmp/codes 1 && build/tools/imsat index --data /tmp/codes --db /tmp/db
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 3 ] || { sed -n 2,12p "$0"; exit 2; }
a=$1
b=$2
db=$3
secs=${4:-8}
rounds=${5:-3}
port=${IMSAT_BENCH_PORT:-18093}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
lua="$root/bench/search_by_code.lua"
server=
cleanup() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
}
trap cleanup EXIT
for round in $(seq 1 "$rounds"); do
  for side in A B; do
    bin=$a
    [ "$side" = B ] && bin=$b
    taskset -c 0 "$bin" serve --db "$db" --port "$port" --threads 1 2>/dev/null &
    server=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
    echo "round $round, $side: $(taskset -c 1 wrk -t1 -c64 -d"${secs}s" -s "$lua" "http://127.0.0.1:$port" | tail -1)"
    kill -TERM "$server"
    wait "$server" 2>/dev/null || true
    server=
  done
done
taskset -c 0 "$root/build/bench/engine_search" "$db" 10 "$secs" 1
