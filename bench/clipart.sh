#!/usr/bin/env bash
# Retrieval quality on real images: Debian's openclipart-png (8,121 PNG clip-art files
# in 22 category folders, uneven from 16 to 2,158 files, many linked into two categories) through
# both image front-ends, for IMSAT(VAT), PCA-ITQ and LSH at 16 and 32 bits. The category folder is
# the label; queries: up to 100 per category (at most half of a category), the rest the gallery.
#
# Needs: apt-get install openclipart-png (130 MB; not part of tools/setup.sh).
# Usage: bench/clipart.sh [build/tools/imsat]     (writes bench/results/clipart-*.json)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
imsat=${1:-$root/build/tools/imsat}
data=/usr/share/openclipart/png
[ -d "$data" ] || { echo "clipart.sh: $data is missing: apt-get install openclipart-png" >&2; exit 1; }
mkdir -p "$root/bench/results"
run() {
  local name=$1; shift
  "$imsat" eval --data "$data" --methods imsat-vat,itq,lsh --bits 16,32 --seed 0 "$@" \
    --json-out "$root/bench/results/clipart-$name.json" 2> >(grep -v '^imsat: skipped' >&2)
}
run pixels --channels 1 --image-size 32
run gist --channels 1 --image-size 32 --image-features gist
