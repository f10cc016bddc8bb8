#!/bin/sh
# Which codes find Euclidean neighbours with the fewest candidates: each method's model on
# Fashion-MNIST (60,000 training images as the base, the first 1,000 test images as queries),
# the same candidate sweep through build/bench/ann_frontier, vectors in memory. One JSON line per
# setting in bench/results/frontier/methods-fashion-mnist.jsonl, the model's method and bits in
# each line's "model" field.
#
#   bench/ann_methods.sh            (after tools/setup.sh; about 10 minutes on 2 cores)
set -eu
cd "$(dirname "$0")/.."
imsat=build/tools/imsat
work=$(mktemp -d /tmp/imsat-methods-XXXXXX)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work" <<'PY'
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("af", "bench/ann_frontier.py")
af = importlib.util.module_from_spec(spec)
spec.loader.exec_module(af)
base, queries, _ = af.load_fashion()
np.save(sys.argv[1] + "/base.npy", base)
np.save(sys.argv[1] + "/queries.npy", queries)
af.write_ivecs(sys.argv[1] + "/truth.ivecs", af.exact_truth(base, queries, "l2"))
PY
out=bench/results/frontier/methods-fashion-mnist.jsonl
: > "$out"
sweep=500:0,1000:0,2000:0,5000:0,1000:300,2000:300
for spec in "itq 128" "itq 64" "lsh 128" "imsat-vat 64"; do
  set -- $spec
  "$imsat" train --data "$work/base.npy" --metric l2 --method "$1" --bits "$2" --seed 0 \
    --out "$work/$1-$2.model" --quiet
  build/bench/ann_frontier "$work/$1-$2.model" "$work/base.npy" "$work/queries.npy" \
    "$work/truth.ivecs" "$sweep" |
    sed "s/^{/{\"model\": \"$1 $2 bits, seed 0\", /" | tee -a "$out"
done
