#!/usr/bin/env node
'use strict';
// The one LibTorch discovery used by binding.gyp, the set-up script and `radkit doctor`
// (CMakeLists.txt follows the same order through find_package).
// Order: LIBTORCH, Torch_DIR, the Python `torch` package, then the system (Debian libtorch-dev).
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

function exists(p) {
  try {
    fs.accessSync(p);
    return true;
  } catch {
    return false;
  }
}

function abiFromConfig(root) {
  for (const cfg of [path.join(root, 'share/cmake/Torch/TorchConfig.cmake'), path.join(root, 'lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake')]) {
    if (!exists(cfg)) continue;
    const text = fs.readFileSync(cfg, 'utf8');
    const m = /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(text);
    if (m) return Number(m[1]);
  }
  return 1;
}

function fromRoot(root, source, extra = {}) {
  const include = path.join(root, 'include');
  const libDir = path.join(root, 'lib');
  if (!exists(path.join(include, 'ATen/ATen.h')) || !exists(path.join(libDir, 'libtorch_cpu.so'))) {
    return { found: false, source, root, problem: `${root} has no include/ATen/ATen.h or lib/libtorch_cpu.so` };
  }
  return {
    found: true,
    source,
    root,
    cmakePrefix: path.join(root, 'share/cmake'),
    includeDirs: [include, path.join(include, 'torch/csrc/api/include')],
    libDir,
    cxx11abi: extra.cxx11abi ?? abiFromConfig(root),
    cuda: exists(path.join(libDir, 'libtorch_cuda.so')),
    version: extra.version,
  };
}

function fromPython() {
  const py = process.env.PYTHON || 'python3';
  try {
    const out = execFileSync(
      py,
      ['-c', 'import os,torch;print(os.path.dirname(torch.__file__));print(int(torch._C._GLIBCXX_USE_CXX11_ABI));print(torch.__version__)'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000 },
    ).trim().split('\n');
    return fromRoot(out[0], 'python torch', { cxx11abi: Number(out[1]), version: out[2] });
  } catch {
    return { found: false, source: 'python torch', problem: `${py} cannot import torch` };
  }
}

function fromSystem() {
  const multiarch = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];
  const libDir = multiarch.find((d) => exists(path.join(d, 'libtorch_cpu.so')));
  if (!libDir || !exists('/usr/include/ATen/ATen.h')) {
    return { found: false, source: 'system', problem: 'no system LibTorch (Debian package libtorch-dev) in /usr' };
  }
  return {
    found: true,
    source: 'system',
    root: '/usr',
    cmakePrefix: path.join(libDir, 'cmake'),
    includeDirs: ['/usr/include', '/usr/include/torch/csrc/api/include'],
    libDir,
    cxx11abi: abiFromConfig('/usr'),
    cuda: exists(path.join(libDir, 'libtorch_cuda.so')),
  };
}

/** Returns the first LibTorch found, with every candidate tried (for doctor). */
function findLibTorch() {
  const tried = [];
  if (process.env.LIBTORCH) tried.push(fromRoot(path.resolve(process.env.LIBTORCH), 'LIBTORCH'));
  if (process.env.Torch_DIR) tried.push(fromRoot(path.resolve(process.env.Torch_DIR, '../../..'), 'Torch_DIR'));
  if (!tried.some((t) => t.found)) tried.push(fromPython());
  if (!tried.some((t) => t.found)) tried.push(fromSystem());
  const found = tried.find((t) => t.found) || null;
  return { found, tried };
}

const FIX =
  'LibTorch was not found. Install it with `sudo apt-get install -y libtorch-dev` (Debian/Ubuntu, CPU), ' +
  'or point LIBTORCH at an unpacked LibTorch (export LIBTORCH=/path/to/libtorch), ' +
  'or install the Python torch package (pip install torch).';

module.exports = { findLibTorch, FIX };

if (require.main === module) {
  const { found } = findLibTorch();
  const what = process.argv[2];
  if (!found) {
    console.error(FIX);
    process.exit(1);
  }
  if (what === '--include') console.log(found.includeDirs.join(' '));
  else if (what === '--libdir') console.log(found.libDir);
  else if (what === '--abi') console.log(found.cxx11abi);
  else if (what === '--cmake-prefix') console.log(found.cmakePrefix);
  else console.log(JSON.stringify(found, null, 2));
}
