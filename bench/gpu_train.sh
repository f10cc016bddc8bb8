#!/bin/bash
# GPU check of src/learn, run on a lent GPU machine whose only extra library is
# a CUDA LibTorch (python3's torch). It needs, under data/gpu/ (ignored by git, carried to the
# machine):
#   fmnist/   the four Fashion-MNIST .gz files (cp /usr/share/datasets/fashion-mnist/*.gz)
#   prefix/   include/{nlohmann,CLI,zlib.h,zconf.h} and share/cmake/{nlohmann_json,CLI11} copied
#             from this machine's Debian packages (header-only; the GPU image lacks them)
# Builds the learn part (-DIMSAT_LEARN_ONLY=ON; without stb, FFTW and libturbojpeg the build
# reads no image files, which this check does not need), then on Fashion-MNIST (70,000 images,
# batch 250, 50 epochs = 14,000 steps):
#   1. the eager step (--cuda-graph off) for 3 epochs: the dispatch-bound baseline per epoch;
#   2. the captured step (--cuda-graph on, the default), 16 bits seed 0, alone on the GPU, timed;
#   3. seeds 1 and 2 at 16 bits and seed 0 at 32 and 64 bits, side by side.
# Models and logs are written to $OUT (evaluate the models on the CPU machine with imsat eval).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
P=$PWD/data/gpu/prefix
D=$PWD/data/gpu/fmnist
TP=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))'
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
nproc; cmake --version | head -1
Z=""
[ -f /usr/include/zlib.h ] || Z="-DZLIB_INCLUDE_DIR=$P/include -DZLIB_LIBRARY=$(ldconfig -p | awk '/libz.so.1 /{print $NF; exit}')"
build() {  # $1 = C++ standard
  rm -rf /tmp/b
  cmake -S . -B /tmp/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DIMSAT_LEARN_ONLY=ON \
    -DIMSAT_BUILD_TESTS=OFF -DIMSAT_BUILD_BENCH=OFF -DCMAKE_CXX_STANDARD=$1 \
    "-DCMAKE_PREFIX_PATH=$TP;$P" $Z > $OUT/cmake$1.log 2>&1 || { tail -30 $OUT/cmake$1.log; return 1; }
  grep -E "CUDA graphs|image file support" $OUT/cmake$1.log
  cmake --build /tmp/b -j16 > $OUT/build$1.log 2>&1 || { grep -m5 -A12 error $OUT/build$1.log; return 1; }
}
T0=$(date +%s)
build 17 || build 20 || exit 1
echo "build: $(( $(date +%s) - T0 )) s"
B=/tmp/b/tools/imsat
$B info
M=/tmp/models; L=/tmp/logs; mkdir -p $M $L
timed() {  # name, args...: one run alone, wall time printed
  local n=$1; shift
  local t0=$(date +%s.%N)
  $B train --data $D --device cuda --out $M/$n.model "$@" > $L/$n.log 2>&1
  local rc=$?
  echo "$n: rc $rc, $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s wall"
  grep -E "epoch +(1|2|3|25|50)/" $L/$n.log | tail -4
  tail -2 $L/$n.log
}
# 1. The eager step, 3 epochs.
timed eager16_e3 --bits 16 --seed 0 --cuda-graph off --epochs 3
# 2. The captured step, all 50 epochs, alone on the GPU.
timed graph16_s0 --bits 16 --seed 0
# 3. Seeds and code lengths side by side.
run() {  # name, args...
  local n=$1; shift
  timeout 300 $B train --data $D --device cuda --quiet --out $M/$n.model "$@" > $L/$n.log 2>&1 &
}
T1=$(date +%s)
run graph16_s1 --bits 16 --seed 1
run graph16_s2 --bits 16 --seed 2
run graph32_s0 --bits 32 --seed 0
run graph64_s0 --bits 64 --seed 0
wait
echo "4 runs side by side: $(( $(date +%s) - T1 )) s"
for f in $L/*.log; do echo "$f: $(tail -1 $f)"; done
cd $M && ls -la && tar cf $OUT/models.tar *.model
cd $L && tar czf $OUT/logs.tgz *.log
