#!/bin/bash
# GPU check of src/learn (issue 3), run on a lent GPU machine whose only extra library is a CUDA
# LibTorch (python3's torch). It needs, under data/gpu/ (ignored by git, carried to the machine):
#   fmnist/   the four Fashion-MNIST .gz files (cp /usr/share/datasets/fashion-mnist/*.gz)
#   prefix/   include/{nlohmann,CLI,zlib.h,zconf.h} and share/cmake/{nlohmann_json,CLI11} copied
#             from this machine's Debian packages (header-only; the GPU image lacks them)
# Builds the learn part (-DIMSAT_LEARN_ONLY=ON), times a 16-bit IMSAT(VAT) training alone, then
# trains 32/64-bit seeds and a lambda sweep side by side; models and logs are written to $OUT.
set -u
OUT=${OUT:-/tmp/out}
P=$PWD/data/gpu/prefix
D=$PWD/data/gpu/fmnist
TP=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))'
nproc; cmake --version | head -1
Z=""
[ -f /usr/include/zlib.h ] || Z="-DZLIB_INCLUDE_DIR=$P/include -DZLIB_LIBRARY=$(ldconfig -p | awk '/libz.so.1 /{print $NF; exit}')"
build() {  # $1 = C++ standard
  rm -rf /tmp/b
  cmake -S . -B /tmp/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DIMSAT_LEARN_ONLY=ON \
    -DIMSAT_BUILD_TESTS=OFF -DIMSAT_BUILD_BENCH=OFF -DCMAKE_CXX_STANDARD=$1 \
    "-DCMAKE_PREFIX_PATH=$TP;$P" $Z > $OUT/cmake$1.log 2>&1 || { tail -30 $OUT/cmake$1.log; return 1; }
  cmake --build /tmp/b -j16 > $OUT/build$1.log 2>&1 || { grep -m5 -A5 error $OUT/build$1.log; return 1; }
}
T0=$(date +%s)
build 17 || build 20 || exit 1
echo "build: $(( $(date +%s) - T0 )) s"
B=/tmp/b/tools/imsat
$B info
M=/tmp/models; L=/tmp/logs; mkdir -p $M $L
# 1. The timed run, alone on the GPU.
/usr/bin/time -v $B train --data $D --method imsat-vat --bits 16 --device cuda --seed 0 \
  --out $M/vat16_s0.model > $L/vat16_s0.log 2>&1
tail -4 $L/vat16_s0.log; grep -E "Maximum resident|Elapsed" $L/vat16_s0.log
# 2. Seeds at 32 and 64 bits, and a lambda sweep, side by side.
run() {  # name, args...
  local n=$1; shift
  timeout 330 $B train --data $D --device cuda --threads 1 --quiet --out $M/$n.model "$@" > $L/$n.log 2>&1 &
}
for s in 0 1 2; do run vat32_s$s --bits 32 --seed $s; run vat64_s$s --bits 64 --seed $s; done
for l in 0.05 0.2; do run vat32_l$l --bits 32 --lambda $l; run vat64_l$l --bits 64 --lambda $l; done
T1=$(date +%s); wait; echo "parallel batch: $(( $(date +%s) - T1 )) s"
for f in $L/*.log; do echo "$f: $(tail -1 $f)"; done
cd $M && ls -la
tar cf $OUT/m1.tar vat16_s0.model vat32_s*.model 2>/dev/null
tar cf $OUT/m2.tar vat64_s*.model 2>/dev/null
tar cf $OUT/m3.tar *_l*.model 2>/dev/null
cd $L && tar czf $OUT/logs.tgz *.log
