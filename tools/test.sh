#!/usr/bin/env bash
# The test command: sets up (tools/setup.sh), runs the whole suite on the Release build, then
# builds everything that does not link LibTorch with AddressSanitizer and
# UndefinedBehaviorSanitizer under build-asan/ and runs that suite too.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${IMSAT_JOBS:-$(nproc)}
t0=$(date +%s)
"$root/tools/setup.sh"
t1=$(date +%s)

echo "test.sh: Release suite" >&2
ctest --test-dir "$root/build" --output-on-failure -j "$jobs"
t2=$(date +%s)

echo "test.sh: sanitizer build (ASan + UBSan, no LibTorch)" >&2
cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DIMSAT_WITH_TORCH=OFF -DIMSAT_SANITIZE=ON -DIMSAT_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-asan" -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$root/build-asan" --output-on-failure -j "$jobs"
t3=$(date +%s)
echo "test.sh: all passed (setup+build $((t1 - t0)) s, tests $((t2 - t1)) s," \
     "sanitizer build+tests $((t3 - t2)) s)" >&2
