#!/usr/bin/env bash
# Exact re-ranking with a shortlist through each front-end, on the same store and queries:
# `imsat search --query-file` (vectors cached in memory) and POST /v1/search over HTTP (wrk, one
# connection, one query at a time, cycling through the same 1,000 query vectors), beside the
# in-process figure of bench/ann_frontier.py. Fashion-MNIST: the 60,000 training images stored
# with their vectors, the first 1,000 test images as queries, `imsat train --metric l2` (seed 0).
#
#   bench/rerank_paths.sh [CANDIDATES] [SHORTLIST] [SECONDS] [PRECISION]
#
# PRECISION (float32 or float16): how both front-ends hold the cached vectors
# (--vector-precision).
set -euo pipefail
source "$(dirname "$0")/http_common.sh"
candidates=${1:-2000}
shortlist=${2:-300}
secs=${3:-20}
precision=${4:-float32}
port=${IMSAT_BENCH_PORT:-18091}

/usr/bin/python3 - "$dir" "$root" "$candidates" "$shortlist" <<'PY'
import importlib.util, json, sys
import numpy as np
work, root, candidates, shortlist = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
spec = importlib.util.spec_from_file_location("af", root + "/bench/ann_frontier.py")
af = importlib.util.module_from_spec(spec)
spec.loader.exec_module(af)
base, queries, _ = af.load_fashion()
np.save(work + "/base.npy", base)
np.save(work + "/queries.npy", queries)
# The command line reads all 10,000 test images, so that its start-up (loading the store and
# the vector cache, a second or two) is small beside the searches.
sys.path.insert(0, root + "/bench")
from fashion_mnist import read_idx
np.save(work + "/queries10k.npy", read_idx("t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32))
# The wrk script: the query vectors as request bodies, sent in turn.
with open(work + "/queries.lua", "w") as f:
    f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nbodies = {\n')
    for q in queries:
        body = json.dumps({"vector": [int(v) for v in q], "k": 10, "rerank": "exact",
                           "candidates": candidates, "shortlist": shortlist})
        f.write("  [[" + body + "]],\n")
    f.write('}\ni = 0\nrequest = function()\n  i = i % #bodies + 1\n'
            '  return wrk.format(nil, "/v1/search", nil, bodies[i])\nend\n')
    f.write("done = function(summary, latency, requests)\n"
            '  io.write(string.format("requests/s %.0f, p50 %.3f ms, p99 %.3f ms, errors %d\\n",\n'
            "    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,\n"
            "    latency:percentile(99) / 1000, summary.errors.status))\nend\n")
PY
"$imsat" train --data "$dir/base.npy" --metric l2 --seed 0 --out "$dir/m.model" --quiet
"$imsat" index --model "$dir/m.model" --data "$dir/base.npy" --db "$dir/db" --with-vectors --quiet

echo "== command line: imsat search --query-file (10,000 queries) --cache-vectors ($precision)"
search=("$imsat" search --db "$dir/db" --query-file "$dir/queries10k.npy" --rerank exact
        --candidates "$candidates" --shortlist "$shortlist" --cache-vectors
        --vector-precision "$precision" --json)
t1=$( { /usr/bin/time -f %e "${search[@]}" --limit 1 >/dev/null; } 2>&1 )
t10k=$( { /usr/bin/time -f %e "${search[@]}" --limit 10000 >/dev/null; } 2>&1 )
/usr/bin/python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); \
print(f'queries/s {9999 / (b - a):.0f} (10,000 queries {b:.2f} s, one query {a:.2f} s: start-up and loading)')" "$t1" "$t10k"

echo "== HTTP: POST /v1/search, wrk, 1 connection, ${secs} s ($precision)"
"$imsat" serve --db "$dir/db" --port "$port" --threads 1 --vector-precision "$precision" \
  2>"$dir/serve.log" &
server=$!
wait_for_server "$port"
wrk -t1 -c1 -d"${secs}s" -s "$dir/queries.lua" "http://127.0.0.1:$port" | tail -1
