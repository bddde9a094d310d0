#!/usr/bin/env node
'use strict';
// Brings a fresh checkout to a runnable state before `npm test`, `npm run demo` and `npm run bench`:
// LibTorch (Debian's libtorch-dev via apt when root), npm ci, the native build and the TypeScript build.
// Each step runs only when needed and says what it does.
const fs = require('node:fs');
const path = require('node:path');
const { execSync, spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const log = (msg) => console.log(`[radkit setup] ${msg}`);

function run(cmd, opts = {}) {
  log(`$ ${cmd}`);
  const r = spawnSync(cmd, { shell: true, stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    console.error(`[radkit setup] failed: ${cmd} (exit ${r.status})`);
    process.exit(r.status || 1);
  }
}

function newestMtime(paths) {
  let newest = 0;
  const visit = (p) => {
    if (!fs.existsSync(p)) return;
    const st = fs.statSync(p);
    if (st.isDirectory()) for (const f of fs.readdirSync(p)) visit(path.join(p, f));
    else newest = Math.max(newest, st.mtimeMs);
  };
  paths.forEach((p) => visit(path.join(root, p)));
  return newest;
}

function mtime(p) {
  const abs = path.join(root, p);
  return fs.existsSync(abs) ? fs.statSync(abs).mtimeMs : 0;
}

// 1. LibTorch
function ensureLibTorch() {
  const { findLibTorch, FIX } = require('./find-libtorch.js');
  const { found } = findLibTorch();
  if (found) return found;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (isRoot && hasApt) {
    log('LibTorch not found: installing Debian libtorch-dev (LibTorch 1.13, CPU) with apt');
    run('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libtorch-dev cmake g++ make python3 > /tmp/radkit-apt.log 2>&1 || (tail -30 /tmp/radkit-apt.log; exit 1)');
    const again = findLibTorch().found;
    if (again) return again;
  }
  console.error(`[radkit setup] ${FIX}`);
  if (!isRoot && hasApt) console.error('[radkit setup] Run: sudo apt-get update && sudo apt-get install -y libtorch-dev');
  process.exit(1);
}

// 1b. Debian's LibTorch links the generic libblas.so.3, which is the reference (netlib) BLAS unless an
// optimised one is installed: every matmul then runs about 10x slower. OpenBLAS takes over the same
// soname through Debian's alternatives, so installing it is enough (no rebuild).
function ensureFastBlas() {
  const alt = '/etc/alternatives/libblas.so.3-x86_64-linux-gnu';
  let target = '';
  try {
    target = fs.realpathSync(alt);
  } catch {
    return; // not a Debian multiarch BLAS setup (Python torch, a LibTorch zip): nothing to do
  }
  if (!/\/blas\/libblas/.test(target)) return; // already OpenBLAS, BLIS, MKL...
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot) {
    log('the system BLAS is the reference implementation: installing OpenBLAS (libopenblas0-pthread) for fast matmuls');
    run('DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread > /tmp/radkit-apt-blas.log 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread > /tmp/radkit-apt-blas.log 2>&1) || (tail -30 /tmp/radkit-apt-blas.log; exit 1)');
  } else {
    console.error('[radkit setup] note: the system BLAS is the slow reference one; for ~10x faster matmuls run: sudo apt-get install -y libopenblas0-pthread');
  }
}

// 1c. Debian's LibTorch has c10d's Gloo backend compiled in but ships the Gloo headers separately
// (libgloo-dev); without them the addon builds without data-parallel training (radkit.distributed).
function ensureGlooHeaders() {
  if (!fs.existsSync('/usr/include/torch/csrc/distributed/c10d/ProcessGroupGloo.hpp')) return; // not Debian's LibTorch
  if (fs.existsSync('/usr/include/gloo/rendezvous/store.h')) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot) {
    log('installing the Gloo headers (libgloo-dev) for data-parallel training');
    run('DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgloo-dev > /tmp/radkit-apt-gloo.log 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgloo-dev > /tmp/radkit-apt-gloo.log 2>&1) || (tail -30 /tmp/radkit-apt-gloo.log; exit 1)');
  } else {
    console.error('[radkit setup] note: without the Gloo headers radkit builds without data-parallel training; run: sudo apt-get install -y libgloo-dev');
  }
}

// 2. npm dependencies
function ensureNodeModules() {
  const marker = 'node_modules/.package-lock.json';
  if (!fs.existsSync(path.join(root, marker)) || mtime('package-lock.json') > mtime(marker)) {
    run('npm ci --no-audit --no-fund');
  }
}

// 3. Native addon (cmake-js, the main build)
function ensureNative() {
  const binary = 'build/Release/radkit.node';
  const sources = newestMtime(['native', 'CMakeLists.txt']);
  // prebuilds/ is left alone: build/Release loads before any prebuilt flavour, and `npm pack`
  // refuses prebuilt binaries made from other sources (scripts/prebuild.js --check).
  if (!fs.existsSync(path.join(root, 'build/CMakeCache.txt')) || mtime(binary) < sources) {
    run('npx cmake-js compile --CDCMAKE_BUILD_TYPE=Release' + (process.env.CI ? ' --log-level warn' : ''));
  }
}

// 4. TypeScript
function ensureDist() {
  if (mtime('dist/lib/index.js') < newestMtime(['lib', 'bench', 'typings', 'tsconfig.json'])) run('npm run build:ts --silent');
}

const t0 = Date.now();
ensureLibTorch();
ensureFastBlas();
ensureGlooHeaders();
ensureNodeModules();
ensureNative();
ensureDist();
log(`ready (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
