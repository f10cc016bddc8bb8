#!/usr/bin/env bash
# Two builds of `imsat serve` side by side on one store each round starts
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
[ $# -ge 3 ] || { sed -n 2,12p "$0"; exit 2; }
source "$(dirname "$0")/http_common.sh"
a=$1
b=$2
db=$3
secs=${4:-8}
rounds=${5:-3}
port=${IMSAT_BENCH_PORT:-18093}
lua="$root/bench/search_by_code.lua"
for round in $(seq 1 "$rounds"); do
  for side in A B; do
    bin=$a
    [ "$side" = B ] && bin=$b
    taskset -c 0 "$bin" serve --db "$db" --port "$port" --threads 1 2>/dev/null &
    server=$!
    wait_for_server "$port"
    echo "round $round, $side: $(taskset -c 1 wrk -t1 -c64 -d"${secs}s" -s "$lua" "http://127.0.0.1:$port" | tail -1)"
    stop_server
  done
done
taskset -c 0 "$root/build/bench/engine_search" "$db" 10 "$secs" 1
