#!/usr/bin/env bash
# The main job, end to end, on the default dataset (Fashion-MNIST from Debian's
# dataset-fashion-mnist package). Every step below is real; the steps that later issues add
# (train, index, eval, serve) appear here as they land.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/setup.sh"
imsat="$root/build/tools/imsat"
data=${IMSAT_DATA:-/usr/share/datasets/fashion-mnist}

echo "== build"
"$imsat" info
echo "== default dataset: $data"
ls -l "$data"
