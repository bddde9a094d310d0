#!/usr/bin/env node
'use strict';
// The one LibTorch discovery, used by the source build (scripts/build.js, `radkit build`), the
// prebuild script, the set-up script, the loader (lib/native.ts, to pick the prebuilt flavour) and
// `radkit doctor`. Order: LIBTORCH, Torch_DIR, the Python `torch` package, then the system (Debian
// libtorch-dev). The build passes the Torch_DIR found here to CMake, so build and discovery agree.
//
// Nothing here imports torch: the Python package is located with importlib's find_spec and its
// version, CUDA version and C++ ABI are read from its files (version.h, version.py, TorchConfig.cmake),
// so the loader can run this at every start without paying for `import torch`.
//
// RADKIT_LIBTORCH_SYSROOT (default /) moves the system search under another root; tests point it at
// an empty folder to act as a machine without a system LibTorch.
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

function read(p) {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

/** The folder holding TorchConfig.cmake under a LibTorch root, or null. */
function torchConfigDir(root) {
  const dirs = [path.join(root, 'share/cmake/Torch'), ...['x86_64-linux-gnu', 'aarch64-linux-gnu', ''].map((m) => path.join(root, 'lib', m, 'cmake/Torch'))];
  return dirs.find((d) => exists(path.join(d, 'TorchConfig.cmake'))) || null;
}

function abiFromConfig(configDir) {
  const text = configDir && read(path.join(configDir, 'TorchConfig.cmake'));
  const m = text && /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(text);
  return m ? Number(m[1]) : 1;
}

/**
 * "1.13.0" from the header that defines TORCH_VERSION_MAJOR/MINOR/PATCH: torch/csrc/api/include/
 * torch/version.h up to 2.x, torch/headeronly/version.h in later 2.x (the former includes it); or null.
 */
function versionFromHeaders(includeDirs) {
  for (const dir of includeDirs) {
    for (const rel of ['torch/headeronly/version.h', 'torch/csrc/api/include/torch/version.h', 'torch/version.h']) {
      const text = read(path.join(dir, rel));
      const part = (name) => (text && new RegExp(`#define TORCH_VERSION_${name} (\\d+)`).exec(text) || [])[1];
      if (part('MAJOR') !== undefined) return `${part('MAJOR')}.${part('MINOR')}.${part('PATCH') ?? 0}`;
    }
  }
  return null;
}

/** The CUDA version LibTorch was built with ("12.4"), null for a CPU LibTorch, 'unknown' if it has CUDA but says no version. */
function cudaVersion(root, libDir) {
  const hasCuda = exists(path.join(libDir, 'libtorch_cuda.so'));
  if (!hasCuda) return null;
  // Python torch: torch/version.py has `cuda: Optional[str] = '12.4'`.
  const py = read(path.join(root, 'version.py'));
  const m = py && /^cuda\s*(?::[^=\n]*)?=\s*['"]([\d.]+)['"]/m.exec(py);
  if (m) return m[1];
  // LibTorch zip: build-version holds "2.5.1+cu124".
  const bv = read(path.join(root, 'build-version'));
  const z = bv && /\+cu(\d+)(\d)\b/.exec(bv.trim());
  if (z) return `${z[1]}.${z[2]}`;
  return 'unknown';
}

/** The versioned library files LibTorch links as (sonames are the file names the addon records). */
function libraries(libDir) {
  let names = [];
  try {
    names = fs.readdirSync(libDir);
  } catch {
    /* unreadable: none */
  }
  return names.filter((n) => /^lib(torch|torch_cpu|torch_cuda|c10|c10_cuda)\.so(\.[\d.]+)?$/.test(n)).sort();
}

function describe(found, extra) {
  const version = versionFromHeaders(found.includeDirs) ?? ((extra.label && /^(\d+\.\d+\.\d+)/.exec(extra.label)) || [])[1] ?? null;
  const configDir = torchConfigDir(found.root);
  return {
    found: true,
    ...found,
    version,
    cxx11abi: extra.cxx11abi ?? abiFromConfig(configDir),
    cuda: cudaVersion(found.root, found.libDir),
    torchConfigDir: configDir,
    cmakePrefix: configDir ? path.dirname(configDir) : null,
    libraries: libraries(found.libDir),
    label: extra.label ?? null,
  };
}

function fromRoot(root, source, extra = {}) {
  const include = path.join(root, 'include');
  // lib/ (LibTorch zips, Python torch) or a multiarch folder (LIBTORCH=/usr on Debian).
  const libDir = ['lib', 'lib/x86_64-linux-gnu', 'lib/aarch64-linux-gnu', 'lib64'].map((d) => path.join(root, d)).find((d) => exists(path.join(d, 'libtorch_cpu.so')));
  if (!exists(path.join(include, 'ATen/ATen.h')) || !libDir) {
    return { found: false, source, root, problem: `${root} has no include/ATen/ATen.h or lib/libtorch_cpu.so` };
  }
  return describe({ source, root, includeDirs: [include, path.join(include, 'torch/csrc/api/include')], libDir }, extra);
}

function fromPython() {
  const py = process.env.PYTHON || 'python3';
  let out;
  try {
    out = execFileSync(
      py,
      ['-c', "import importlib.util as u\ns=u.find_spec('torch')\nprint(list(s.submodule_search_locations)[0] if s and s.submodule_search_locations else '')"],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30000 },
    ).trim();
  } catch {
    return { found: false, source: 'python torch', problem: `${py} is not available` };
  }
  if (!out) return { found: false, source: 'python torch', problem: `${py} has no torch package` };
  const label = (/^__version__\s*=\s*['"]([^'"]+)['"]/m.exec(read(path.join(out, 'version.py')) || '') || [])[1];
  return fromRoot(out, 'python torch', { label });
}

function fromSystem() {
  const sysroot = path.resolve(process.env.RADKIT_LIBTORCH_SYSROOT || '/');
  const multiarch = ['usr/lib/x86_64-linux-gnu', 'usr/lib/aarch64-linux-gnu', 'usr/lib64', 'usr/lib'].map((d) => path.join(sysroot, d));
  const libDir = multiarch.find((d) => exists(path.join(d, 'libtorch_cpu.so')));
  const include = path.join(sysroot, 'usr/include');
  if (!libDir || !exists(path.join(include, 'ATen/ATen.h'))) {
    return { found: false, source: 'system', problem: `no system LibTorch (Debian package libtorch-dev) in ${path.join(sysroot, 'usr')}` };
  }
  return describe({ source: 'system', root: path.join(sysroot, 'usr'), includeDirs: [include, path.join(include, 'torch/csrc/api/include')], libDir }, {});
}

/**
 * The first LibTorch found (`found`) and the candidates tried to get there (`tried`). With
 * `{ all: true }` every candidate is looked at (doctor, mismatch hints), `found` is still the first.
 */
function findLibTorch(options = {}) {
  const tried = [];
  const done = () => !options.all && tried.some((t) => t.found);
  if (process.env.LIBTORCH) tried.push(fromRoot(path.resolve(process.env.LIBTORCH), 'LIBTORCH'));
  if (process.env.Torch_DIR && !done()) tried.push(fromRoot(path.resolve(process.env.Torch_DIR, '../../..'), 'Torch_DIR'));
  if (!done()) tried.push(fromPython());
  if (!done()) tried.push(fromSystem());
  const found = tried.find((t) => t.found) || null;
  return { found, tried };
}

// ---- flavours: what a prebuilt binary needs from the LibTorch it runs with.

const majorMinor = (v) => (v ? v.split('.').slice(0, 2).join('.') : '?');

/** The flavour id of binaries built against a LibTorch: torch<major.minor>-<cpu|cu<ver>>-abi<0|1>. */
function flavourId(t) {
  const cuda = t.cuda ? `cu${String(t.cuda).replace('.', '')}` : 'cpu';
  return `torch${majorMinor(t.version)}-${cuda}-abi${t.cxx11abi}`;
}

/** "system LibTorch 1.13.0 (CPU, C++11 ABI 1) at /usr". */
function describeLibTorch(t) {
  const label = t.label && t.label !== t.version ? ` [${t.label}]` : '';
  return `${t.source} LibTorch ${t.version ?? '(unknown version)'}${label} (${t.cuda ? `CUDA ${t.cuda}` : 'CPU'}, C++11 ABI ${t.cxx11abi}) at ${t.root}`;
}

/** "torch1.13-cpu-abi1 (LibTorch 1.13, CPU, C++11 ABI 1, built against system /usr)". */
function describeFlavour(f) {
  return `${f.flavour} (LibTorch ${majorMinor(f.torch.version)}, ${f.torch.cuda ? `CUDA ${f.torch.cuda}` : 'CPU'}, C++11 ABI ${f.torch.cxx11abi}, built against ${f.torch.source} ${f.torch.root})`;
}

/**
 * Whether a prebuilt flavour (its flavour.json) can run with a LibTorch: `exact` (same version,
 * ABI and CUDA), `compatible` (a CPU flavour on a CUDA LibTorch of the same version: radkit's own
 * kernels then run on the CPU only) or `no`, with the reasons.
 */
function matchFlavour(f, t) {
  const why = [];
  if (majorMinor(f.torch.version) !== majorMinor(t.version)) why.push(`built for LibTorch ${majorMinor(f.torch.version)}, found ${t.version ?? 'a LibTorch of unknown version'}`);
  if (f.torch.cxx11abi !== t.cxx11abi) why.push(`built with C++11 ABI ${f.torch.cxx11abi}, found ABI ${t.cxx11abi}`);
  if (f.torch.cuda && !t.cuda) why.push(`built for CUDA ${f.torch.cuda}, found a CPU-only LibTorch`);
  if (f.torch.cuda && t.cuda && f.torch.cuda !== t.cuda) why.push(`built for CUDA ${f.torch.cuda}, found CUDA ${t.cuda}`);
  const have = new Set(t.libraries || []);
  const missing = (f.torch.libraries || []).filter((l) => !have.has(l));
  if (missing.length && !why.length) why.push(`links ${missing.join(', ')}, which ${t.libDir} does not have`);
  if (why.length) return { match: 'no', why };
  if (!f.torch.cuda && t.cuda) return { match: 'compatible', why: ['a CPU flavour on a CUDA LibTorch: radkit\'s own kernels run on the CPU only'] };
  return { match: 'exact', why: [] };
}

const FIX =
  'LibTorch was not found. Install it with `sudo apt-get install -y libtorch-dev` (Debian/Ubuntu, CPU), ' +
  'or point LIBTORCH at an unpacked LibTorch (export LIBTORCH=/path/to/libtorch), ' +
  'or install the Python torch package (pip install torch).';

module.exports = { findLibTorch, flavourId, describeLibTorch, describeFlavour, matchFlavour, FIX };

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
  else if (what === '--flavour') console.log(flavourId(found));
  else console.log(JSON.stringify({ ...found, flavour: flavourId(found) }, null, 2));
}
