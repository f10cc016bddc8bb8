#!/usr/bin/env bash
# Installs every Debian package that the build, the tests, the benchmarks and the default dataset
# need, checks that LibTorch will run on OpenBLAS, then configures and builds imsat in Release
# under build/. Idempotent: a second run installs nothing and rebuilds only what changed.
#
# Environment: IMSAT_BUILD_DIR (default build), IMSAT_JOBS (default: all cores).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${IMSAT_BUILD_DIR:-$root/build}
jobs=${IMSAT_JOBS:-$(nproc)}

die() { echo "setup.sh: error: $*" >&2; exit 1; }
say() { echo "setup.sh: $*" >&2; }

packages=(
  build-essential cmake ninja-build pkg-config git curl clang clang-format libclang-rt-14-dev wrk
  chromium haproxy strace nodejs
  libtorch-dev libopenblas0-pthread
  librocksdb-dev libboost-dev nlohmann-json3-dev zlib1g-dev libcli11-dev libstb-dev libfftw3-dev
  libjemalloc-dev libspdlog-dev
  libturbojpeg0-dev libzip-dev python3-pil
  python3-requests python3-pip python3-venv python3-setuptools python3-jsonschema help2man
  libgtest-dev libgmock-dev libbenchmark-dev
  libfaiss-dev python3-numpy python3-faiss python3-hnswlib
  dataset-fashion-mnist
)

[ -r /etc/debian_version ] || die "this script expects Debian 12 (no /etc/debian_version found)"

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@";
  elif command -v sudo >/dev/null; then sudo "$@";
  else die "need root (or sudo) to run: $*"; fi
}

if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  as_root apt-get update -q || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" || die "apt-get install failed for: ${missing[*]}"
fi
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || die "package $p is still not installed"
done

# npm: Debian's package, unless the installed nodejs brings its own (NodeSource's conflicts with
# Debian's npm). It installs puppeteer-core, which drives Debian's chromium in the web page's
# browser test (tests/browser), into build-node/node_modules.
if ! command -v npm >/dev/null; then
  say "installing: npm"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm ||
    die "apt-get install failed for: npm"
fi
# @apidevtools/swagger-parser validates /openapi.json in the tests (tests/http). Both go in one
# npm install: a second install into the same prefix would remove the first's packages.
puppeteer=24.43.1
swagger_parser=13.1.0
installed() {  # installed PACKAGE VERSION
  grep -q "\"version\": \"$2\"" "$root/build-node/node_modules/$1/package.json" 2>/dev/null
}
if ! installed puppeteer-core "$puppeteer" || ! installed @apidevtools/swagger-parser "$swagger_parser"; then
  say "installing puppeteer-core $puppeteer and swagger-parser $swagger_parser into build-node (npm)"
  mkdir -p "$root/build-node"
  npm install --prefix "$root/build-node" --no-audit --no-fund --loglevel=error \
    "puppeteer-core@$puppeteer" "@apidevtools/swagger-parser@$swagger_parser" ||
    die "npm install of puppeteer-core and swagger-parser failed"
fi

# LibTorch calls whatever libblas.so.3 the alternatives system points at; the reference BLAS
# makes a training step about 25x slower than OpenBLAS.
blas_alt=libblas.so.3-x86_64-linux-gnu
openblas_lib=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
current=$(update-alternatives --query "$blas_alt" 2>/dev/null | sed -n 's/^Value: //p')
if [ "$current" != "$openblas_lib" ]; then
  say "pointing $blas_alt at OpenBLAS (was: ${current:-unset})"
  as_root update-alternatives --set "$blas_alt" "$openblas_lib" ||
    die "could not select OpenBLAS for $blas_alt"
fi

fmnist=/usr/share/datasets/fashion-mnist
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
         t10k-labels-idx1-ubyte.gz; do
  [ -r "$fmnist/$f" ] || die "default dataset file $fmnist/$f is missing"
done

say "configuring $build_dir (Release)"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null ||
  die "cmake configure failed"
say "building with $jobs jobs"
cmake --build "$build_dir" -j "$jobs" || die "build failed"

blas=$("$build_dir/tools/imsat" info | sed -n 's/^blas: //p')
case "$blas" in
  reference*|unknown*|"") die "LibTorch links a slow BLAS ($blas); install libopenblas0-pthread";;
esac
say "ready: $build_dir/tools/imsat (blas: $blas)"
