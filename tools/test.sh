#!/usr/bin/env bash
# The test command: sets up (tools/setup.sh), checks the formatting (tools/check_format.sh), runs
# the whole suite on the Release build, then
# builds everything that does not link LibTorch with AddressSanitizer and
# UndefinedBehaviorSanitizer under build-asan/ and runs that suite too, then the same with clang's
# ThreadSanitizer under build-tsan/ (tests/tsan.supp silences the uninstrumented RocksDB library),
# then the HTTP server tests with LibTorch under clang's ThreadSanitizer (build-tsan-http/;
# tests/tsan-torch.supp also silences OpenBLAS, LibTorch and libgomp), and finally builds the
# libFuzzer targets with clang (ASan + UBSan, build-fuzz/) and runs each one for
# IMSAT_FUZZ_SECONDS (default 30) from its seed corpus.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${IMSAT_JOBS:-$(nproc)}
t0=$(date +%s)
"$root/tools/setup.sh"
"$root/tools/check_format.sh"
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

echo "test.sh: ThreadSanitizer build (clang, no LibTorch: store, index and common tests)" >&2
CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-tsan" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMSAT_WITH_TORCH=OFF -DIMSAT_TSAN=ON \
  -DIMSAT_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-tsan" -j "$jobs"
TSAN_OPTIONS="halt_on_error=1 suppressions=$root/tests/tsan.supp" \
  ctest --test-dir "$root/build-tsan" --output-on-failure -j "$jobs"
echo "test.sh: ThreadSanitizer build of the HTTP tests (clang, with LibTorch)" >&2
CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-tsan-http" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMSAT_WITH_TORCH=ON -DIMSAT_TSAN=ON \
  -DIMSAT_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-tsan-http" -j "$jobs" --target server_test engine_test
OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1 suppressions=$root/tests/tsan-torch.supp" \
  "$root/build-tsan-http/tests/http/server_test"
# Concurrent encodes: batched, and unbatched through the lean encoder without the model's lock.
OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1 suppressions=$root/tests/tsan-torch.supp" \
  "$root/build-tsan-http/tests/query/engine_test" --gtest_filter='EngineTest.*Encode*'
t3b=$(date +%s)

echo "test.sh: fuzz targets (clang, libFuzzer, ASan + UBSan)" >&2
CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-fuzz" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMSAT_FUZZ=ON -DIMSAT_SANITIZE=ON \
  -DIMSAT_BUILD_TESTS=OFF -DIMSAT_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-fuzz" -j "$jobs" --target fuzz_router fuzz_readers
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
for target in fuzz_router fuzz_readers; do
  corpus=$(mktemp -d)
  cp "$root/tests/fuzz/corpus/${target#fuzz_}"/* "$corpus/"
  "$root/build-fuzz/tests/fuzz/$target" -max_total_time="${IMSAT_FUZZ_SECONDS:-30}" \
    -rss_limit_mb=4096 -print_final_stats=1 "$corpus" 2>&1 | tail -n 3
  rm -rf "$corpus"
done
t4=$(date +%s)
echo "test.sh: all passed (setup+build $((t1 - t0)) s, tests $((t2 - t1)) s," \
     "ASan build+tests $((t3 - t2)) s, TSan build+tests $((t3b - t3)) s," \
     "fuzzing $((t4 - t3b)) s)" >&2
