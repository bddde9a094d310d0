#!/usr/bin/env node
'use strict';
// The source build of the native addon, against the LibTorch scripts/find-libtorch.js finds:
// `npx radkit build`, `npm rebuild radkit` (through scripts/install.js) and `npm run prebuild`
// (scripts/prebuild.js) all come here. cmake-js is a regular dependency, so nothing is fetched and
// nothing prompts; CMake, a C++17 compiler, make or ninja (and nvcc for a CUDA LibTorch) come from
// the system, and each missing one is named with the command that installs it.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { findLibTorch, describeLibTorch, flavourId, FIX } = require('./find-libtorch.js');

const root = path.resolve(__dirname, '..');
const MIN_CMAKE = [3, 18];

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir || '.', cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20000 });
  return r.status === 0 ? `${r.stdout}${r.stderr}`.trim().split('\n')[0] : null;
}

/**
 * What the source build needs and what is missing: `{ ok, libtorch, tools, missing: [{ what, fix }] }`.
 * `libtorch` is the LibTorch found (or null).
 */
function checkBuild(libtorch = findLibTorch().found) {
  const missing = [];
  const tools = {};
  const apt = [];
  if (!libtorch) missing.push({ what: 'LibTorch', fix: FIX });
  else if (!libtorch.torchConfigDir) missing.push({ what: `TorchConfig.cmake under ${libtorch.root}`, fix: 'this LibTorch has no CMake files; point LIBTORCH at a complete LibTorch (include/, lib/, share/cmake/Torch/)' });
  for (const f of ['CMakeLists.txt', 'native']) {
    if (!fs.existsSync(path.join(root, f))) missing.push({ what: `${f} in ${root}`, fix: 'the package is incomplete: reinstall radkit' });
  }
  for (const dep of ['cmake-js/package.json', 'node-addon-api']) {
    try {
      require.resolve(dep, { paths: [root] });
    } catch {
      missing.push({ what: `the npm package ${dep.split('/')[0]}`, fix: 'reinstall radkit (it is a dependency of radkit)' });
    }
  }
  const cmake = which('cmake');
  const cmakeVersion = cmake && firstLine(cmake, ['--version']);
  const v = cmakeVersion && /(\d+)\.(\d+)/.exec(cmakeVersion);
  if (!cmake) {
    missing.push({ what: 'cmake', fix: 'install CMake 3.18 or newer' });
    apt.push('cmake');
  } else if (!v || Number(v[1]) < MIN_CMAKE[0] || (Number(v[1]) === MIN_CMAKE[0] && Number(v[2]) < MIN_CMAKE[1])) {
    missing.push({ what: `CMake 3.18 or newer (found ${cmakeVersion})`, fix: 'install a newer CMake (pip install cmake, or your distribution\'s backports)' });
  } else tools.cmake = `${cmake} (${cmakeVersion})`;
  const cxx = process.env.CXX ? which(process.env.CXX) || (fs.existsSync(process.env.CXX) ? process.env.CXX : null) : which('c++') || which('g++') || which('clang++');
  if (!cxx) {
    missing.push({ what: 'a C++17 compiler', fix: process.env.CXX ? `CXX=${process.env.CXX} is not an executable` : 'install g++' });
    if (!process.env.CXX) apt.push('g++');
  } else tools.cxx = `${cxx} (${firstLine(cxx, ['--version']) ?? '?'})`;
  const generator = which('ninja') || which('make');
  if (!generator) {
    missing.push({ what: 'make or ninja', fix: 'install make' });
    apt.push('make');
  } else tools.generator = generator;
  if (libtorch && libtorch.cuda) {
    const nvcc = process.env.CUDACXX || which('nvcc') || (fs.existsSync('/usr/local/cuda/bin/nvcc') ? '/usr/local/cuda/bin/nvcc' : null);
    if (!nvcc) missing.push({ what: `nvcc (this LibTorch has CUDA ${libtorch.cuda}; radkit compiles its CUDA kernels)`, fix: `install the CUDA toolkit ${libtorch.cuda} (nvcc), or set CUDACXX=/path/to/nvcc` });
    else tools.nvcc = `${nvcc} (${(spawnSync(nvcc, ['--version'], { encoding: 'utf8' }).stdout || '').match(/release [\d.]+/)?.[0] ?? '?'})`;
  }
  if (apt.length) {
    const sudo = typeof process.getuid === 'function' && process.getuid() === 0 ? '' : 'sudo ';
    missing.push({ what: 'build tools', fix: `on Debian/Ubuntu: ${sudo}apt-get install -y ${apt.join(' ')}` });
  }
  return { ok: missing.length === 0, libtorch, tools, missing };
}

function cmakeJs() {
  const pkg = require.resolve('cmake-js/package.json', { paths: [root] });
  return path.join(path.dirname(pkg), 'bin', 'cmake-js');
}

function cachedValue(cacheFile, name) {
  const text = fs.existsSync(cacheFile) ? fs.readFileSync(cacheFile, 'utf8') : '';
  const m = new RegExp(`^${name}:[A-Z]+=(.*)$`, 'm').exec(text);
  return m ? m[1] : null;
}

/** Loads a built binary in a child process; returns its info() or throws with the load error. */
function verifyBinary(file) {
  const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(file)}); console.log(JSON.stringify({ ...m.info(), compiledOps: m.compiledOps || [] }));`], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0) throw new Error(`${file} does not load: ${(r.stderr || '').trim().split('\n').find((l) => /Error/.test(l)) || r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/**
 * Builds build/Release/radkit.node (or `<out>/Release/radkit.node`) with cmake-js against the
 * LibTorch found. Options: `out` (build folder, default <package>/build), `clean` (start from an
 * empty folder), `dryRun` (check and configure CMake in a temporary folder; compile nothing), `log`.
 * Returns `{ ok, binary, seconds, info, message }`; never throws for a failed build.
 */
function build(options = {}) {
  const log = options.log || ((m) => console.log(`radkit build: ${m}`));
  const t0 = Date.now();
  const check = checkBuild(options.libtorch);
  if (check.libtorch) log(`LibTorch: ${describeLibTorch(check.libtorch)}; flavour ${flavourId(check.libtorch)}`);
  for (const [k, v] of Object.entries(check.tools)) log(`${k}: ${v}`);
  if (!check.ok) {
    const message = `cannot build, missing:\n${check.missing.map((m) => `  - ${m.what}: ${m.fix}`).join('\n')}`;
    log(message);
    return { ok: false, binary: null, seconds: 0, message };
  }
  const out = options.dryRun ? fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-configure-')) : path.resolve(options.out || path.join(root, 'build'));
  const cache = path.join(out, 'CMakeCache.txt');
  const staleTorch = cachedValue(cache, 'Torch_DIR');
  const staleHome = cachedValue(cache, 'CMAKE_HOME_DIRECTORY');
  if (options.clean || (staleTorch && path.resolve(staleTorch) !== path.resolve(check.libtorch.torchConfigDir)) || (staleHome && path.resolve(staleHome) !== root)) {
    if (fs.existsSync(out)) log(`starting from an empty ${out}${options.clean ? '' : ' (it was configured for another LibTorch or folder)'}`);
    fs.rmSync(out, { recursive: true, force: true });
  }
  const jobs = Math.max(1, Number(process.env.RADKIT_BUILD_JOBS) || (os.availableParallelism ? os.availableParallelism() : os.cpus().length));
  // Torch_DIR alone is not enough where two LibTorch live on one machine (Python torch beside
  // Debian's libtorch-dev): TorchConfig looks up Caffe2 and its libraries with PATHS hints, which CMake
  // searches after the system folders. The LibTorch root first on CMAKE_PREFIX_PATH and Caffe2_DIR
  // keep every part of the build on the LibTorch found.
  const args = [cmakeJs(), options.dryRun ? 'configure' : 'build', '--out', out, '--config', 'Release', `--CDTorch_DIR=${check.libtorch.torchConfigDir}`, `--CDCMAKE_PREFIX_PATH=${check.libtorch.root}`];
  const caffe2 = path.join(path.dirname(check.libtorch.torchConfigDir), 'Caffe2');
  if (fs.existsSync(path.join(caffe2, 'Caffe2Config.cmake'))) args.push(`--CDCaffe2_DIR=${caffe2}`);
  if (!options.dryRun) args.push('--parallel', String(jobs));
  if (options.quiet) args.push('--log-level', 'warn');
  log(options.dryRun ? `configuring in ${out} (dry run: nothing is compiled)` : `compiling with ${jobs} job(s) into ${out}; this takes several minutes`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: options.stdio || 'inherit', env: process.env });
  const seconds = (Date.now() - t0) / 1000;
  if (r.status !== 0) {
    const message = `the ${options.dryRun ? 'CMake configuration' : 'build'} failed (exit ${r.status ?? r.signal}); the output above says why. \`npx radkit doctor\` shows what was found.`;
    log(message);
    if (options.dryRun) fs.rmSync(out, { recursive: true, force: true });
    return { ok: false, binary: null, seconds, message };
  }
  if (options.dryRun) {
    fs.rmSync(out, { recursive: true, force: true });
    const message = `configuration works (${seconds.toFixed(1)} s); \`npx radkit build\` compiles`;
    log(message);
    return { ok: true, binary: null, seconds, message };
  }
  const binary = path.join(out, 'Release', 'radkit.node');
  let info;
  try {
    info = verifyBinary(binary);
  } catch (err) {
    const message = `built, but ${err.message}`;
    log(message);
    return { ok: false, binary, seconds, message };
  }
  const first = path.resolve(out) === path.join(root, 'build') ? '; it loads before any prebuilt binary' : '';
  const message = `built ${binary} in ${seconds.toFixed(0)} s (LibTorch ${info.torchVersion}, CUDA kernels ${info.builtWithCuda ? 'yes' : 'no'})${first}`;
  log(message);
  return { ok: true, binary, seconds, info, message };
}

module.exports = { build, checkBuild, verifyBinary, cmakeJs };

if (require.main === module) {
  const argv = process.argv.slice(2);
  const known = ['--clean', '--dry-run'];
  const bad = argv.filter((a) => !known.includes(a));
  if (bad.length) {
    console.error(`usage: node scripts/build.js [--clean] [--dry-run] (unknown: ${bad.join(' ')})`);
    process.exit(2);
  }
  const r = build({ clean: argv.includes('--clean'), dryRun: argv.includes('--dry-run') });
  process.exit(r.ok ? 0 : 1);
}
