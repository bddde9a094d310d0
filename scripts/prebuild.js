#!/usr/bin/env node
'use strict';
// Prebuilt binaries for the npm package, one folder per LibTorch flavour:
//   prebuilds/<platform>-<arch>/<flavour>/radkit.node + flavour.json
// The flavour (torch<major.minor>-<cpu|cu<ver>>-abi<0|1>) and flavour.json record what the binary
// needs from the LibTorch it runs with (version, C++ ABI, CUDA version, the LibTorch library names
// it links); lib/native.ts loads the flavour that matches the LibTorch found on the user's machine.
//
//   npm run prebuild                          build with cmake-js into build-prebuild/<flavour>/ against the
//                                             LibTorch found (Debian libtorch-dev: torch1.13-cpu-abi1;
//                                             on a GPU machine with Python torch: its CUDA flavour) and add it
//   node scripts/prebuild.js --from FILE      add FILE, a cmake-js Release build of this tree against
//                                             the LibTorch found (CI: build/Release/radkit.node)
//   node scripts/prebuild.js --check          before packing (prepack): at least one linux-x64 flavour,
//                                             each built from the current native/ sources; dist/ built
//   node scripts/prebuild.js --list           the flavours in prebuilds/
// Other flavours already in prebuilds/ are kept (a CUDA flavour made on a GPU machine is copied in
// beside the CPU one); the same flavour is replaced.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { findLibTorch, flavourId, describeLibTorch, describeFlavour, FIX } = require('./find-libtorch.js');
const { build, verifyBinary } = require('./build.js');

const root = path.resolve(__dirname, '..');
const prebuildsDir = path.join(root, 'prebuilds');
// stderr: `npm pack --json` runs --check (prepack) and its stdout must stay JSON.
const say = (m) => console.error(`radkit prebuild: ${m}`);
const LIBTORCH_LIB = /^lib(torch|torch_cpu|torch_cuda|c10|c10_cuda)\.so/;

function fail(message) {
  console.error(`radkit prebuild: ${message}`);
  process.exit(1);
}

function walk(p, out = []) {
  if (!fs.existsSync(p)) return out;
  if (fs.statSync(p).isDirectory()) for (const f of fs.readdirSync(p).sort()) walk(path.join(p, f), out);
  else out.push(p);
  return out;
}

/** sha256 of the native sources a binary is built from (native/ and CMakeLists.txt, as packed). */
function sourceHash() {
  const h = crypto.createHash('sha256');
  for (const f of [...walk(path.join(root, 'native')), path.join(root, 'CMakeLists.txt')]) {
    h.update(path.relative(root, f).split(path.sep).join('/'));
    h.update('\0');
    h.update(fs.readFileSync(f));
    h.update('\0');
  }
  return h.digest('hex');
}

function newestSourceMtime() {
  return Math.max(...[...walk(path.join(root, 'native')), path.join(root, 'CMakeLists.txt')].map((f) => fs.statSync(f).mtimeMs));
}

/** The DT_NEEDED entries of a shared object (readelf, from binutils, which every compiler brings). */
function neededLibraries(file) {
  const r = spawnSync('readelf', ['-d', file], { encoding: 'utf8' });
  if (r.status !== 0) fail(`readelf -d ${file} failed (${(r.stderr || r.error || '').toString().trim()}); install binutils`);
  return [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

function cachedValue(cacheFile, name) {
  const text = fs.existsSync(cacheFile) ? fs.readFileSync(cacheFile, 'utf8') : '';
  const m = new RegExp(`^${name}:[A-Z]+=(.*)$`, 'm').exec(text);
  return m ? m[1] : null;
}

/**
 * What a built binary needs, as flavour.json records it; throws when `file` was not built against
 * `libtorch` (another version, ABI, CUDA setting or library names).
 */
function flavourMeta(file, libtorch, how) {
  const info = verifyBinary(file);
  const problems = [];
  if (info.torchVersion !== libtorch.version) problems.push(`it reports LibTorch ${info.torchVersion}, the LibTorch found is ${libtorch.version}`);
  if (Number(info.cxx11Abi) !== libtorch.cxx11abi) problems.push(`it uses C++11 ABI ${Number(info.cxx11Abi)}, the LibTorch found uses ${libtorch.cxx11abi}`);
  if (!!info.builtWithCuda !== !!libtorch.cuda) problems.push(libtorch.cuda ? 'it has no CUDA kernels although the LibTorch found has CUDA' : 'it has CUDA kernels although the LibTorch found has none');
  const needed = neededLibraries(file);
  const torchLibs = needed.filter((l) => LIBTORCH_LIB.test(l));
  const foreign = torchLibs.filter((l) => !libtorch.libraries.includes(l));
  if (foreign.length) problems.push(`it links ${foreign.join(', ')}, which ${libtorch.libDir} does not have`);
  if (problems.length) throw new Error(`${file} was not built against ${describeLibTorch(libtorch)}: ${problems.join('; ')}`);
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  return {
    flavour: flavourId(libtorch),
    platform: process.platform,
    arch: process.arch,
    libc: 'glibc',
    napi: pkg.binary?.napi_versions?.[0] ?? 9,
    torch: {
      version: libtorch.version,
      label: libtorch.label,
      cxx11abi: libtorch.cxx11abi,
      cuda: libtorch.cuda,
      libraries: torchLibs,
      source: libtorch.source,
      root: libtorch.root,
    },
    otherLibraries: needed.filter((l) => !LIBTORCH_LIB.test(l)),
    builtWithCuda: !!info.builtWithCuda,
    compiledOps: info.compiledOps,
    radkitVersion: pkg.version,
    sourceHash: sourceHash(),
    built: { how, node: process.version, date: new Date().toISOString() },
  };
}

/** Checks `file` against the LibTorch found, strips it into prebuilds/ and writes flavour.json. */
function addFlavour(file, libtorch, how) {
  let meta;
  try {
    meta = flavourMeta(file, libtorch, how);
  } catch (err) {
    fail(`${err.message}. Build with \`npm run prebuild\` instead.`);
  }
  const dir = path.join(prebuildsDir, `${process.platform}-${process.arch}`, meta.flavour);
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const target = path.join(tmp, 'radkit.node');
  const s = spawnSync('strip', ['--strip-unneeded', '-o', target, file], { encoding: 'utf8' });
  if (s.status !== 0) {
    say(`strip is not available (${(s.stderr || s.error || '').toString().trim()}); copying unstripped`);
    fs.copyFileSync(file, target);
  }
  verifyBinary(target);
  fs.writeFileSync(path.join(tmp, 'flavour.json'), `${JSON.stringify(meta, null, 2)}\n`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  const size = fs.statSync(path.join(dir, 'radkit.node')).size;
  say(`added ${path.relative(root, dir)}/radkit.node (${(size / 1e6).toFixed(1)} MB): ${describeFlavour(meta)}`);
  return meta;
}

/** Every flavour in prebuilds/: [{ dir, meta }]. */
function listFlavours() {
  const out = [];
  if (!fs.existsSync(prebuildsDir)) return out;
  for (const plat of fs.readdirSync(prebuildsDir).sort()) {
    const platDir = path.join(prebuildsDir, plat);
    if (!fs.statSync(platDir).isDirectory()) continue;
    for (const f of fs.readdirSync(platDir).sort()) {
      const dir = path.join(platDir, f);
      const metaFile = path.join(dir, 'flavour.json');
      out.push({ dir, plat, meta: fs.existsSync(metaFile) ? JSON.parse(fs.readFileSync(metaFile, 'utf8')) : null, binary: fs.existsSync(path.join(dir, 'radkit.node')) });
    }
  }
  return out;
}

function check() {
  const problems = [];
  const flavours = listFlavours();
  const hash = sourceHash();
  for (const f of flavours) {
    const rel = path.relative(root, f.dir);
    if (!f.meta || !f.binary) problems.push(`${rel} lacks ${!f.meta ? 'flavour.json' : 'radkit.node'}`);
    else if (f.meta.sourceHash !== hash) problems.push(`${rel} was built from other native/ sources than these (rebuild it: npm run prebuild${f.meta.torch.cuda ? ', on a machine with that CUDA LibTorch' : ''})`);
    else say(`ok ${rel}: ${describeFlavour(f.meta)}, ${(fs.statSync(path.join(f.dir, 'radkit.node')).size / 1e6).toFixed(1)} MB`);
  }
  if (!flavours.some((f) => f.plat === 'linux-x64' && f.meta)) problems.push('no linux-x64 flavour in prebuilds/: run `npm run prebuild` (Debian libtorch-dev gives torch1.13-cpu-abi1)');
  const newest = (dir) => Math.max(0, ...walk(path.join(root, dir)).map((f) => fs.statSync(f).mtimeMs));
  const dist = path.join(root, 'dist/lib/index.js');
  if (!fs.existsSync(dist)) problems.push('dist/ is not built: run `npm run build:ts`');
  else if (fs.statSync(dist).mtimeMs < Math.max(newest('lib'), newest('typings'))) problems.push('dist/ is older than lib/: run `npm run build:ts`');
  if (problems.length) fail(`not ready to pack:\n  - ${problems.join('\n  - ')}`);
}

/**
 * npm runs a script named `prebuild` before `build` too (`npm run build` would start a
 * multi-minute prebuild). npm gives both the same environment, but names itself by its command
 * line (process title "npm run build"): skip when the npm that started us runs `build`.
 */
function preHookOfBuild() {
  let pid = process.ppid;
  for (let i = 0; i < 4 && pid > 1; i++) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      const m = /^npm(?:\s+\S+)*?\s+(?:run|run-script|rum|urn)\s+(\S+)/.exec(cmd);
      if (m) return m[1] === 'build';
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return false;
    }
  }
  return false;
}

function main(argv) {
  if (process.env.npm_lifecycle_event === 'prebuild' && preHookOfBuild()) {
    say('skipped: npm runs `prebuild` before `build`; `npm run prebuild` makes the prebuilt binaries');
    return;
  }
  const usage = 'usage: node scripts/prebuild.js [--from FILE | --check | --list]';
  if (argv[0] === '--check' && argv.length === 1) return check();
  if (argv[0] === '--list' && argv.length === 1) {
    for (const f of listFlavours()) console.log(`${path.relative(root, f.dir)}: ${f.meta ? describeFlavour(f.meta) : 'no flavour.json'}`);
    return;
  }
  const { found } = findLibTorch();
  if (argv[0] === '--from' && argv.length === 2) {
    if (!found) fail(FIX);
    const file = path.resolve(argv[1]);
    if (!fs.existsSync(file)) fail(`${file} does not exist`);
    // Honest reuse: the binary must be a cmake-js Release build of these sources for this LibTorch.
    if (fs.statSync(file).mtimeMs < newestSourceMtime()) fail(`${file} is older than native/ or CMakeLists.txt: rebuild it first`);
    const cache = path.join(path.dirname(path.dirname(file)), 'CMakeCache.txt');
    if (!fs.existsSync(cache)) fail(`${file} has no CMakeCache.txt beside its folder: only a cmake-js build of this tree can be reused`);
    const type = cachedValue(cache, 'CMAKE_BUILD_TYPE');
    const home = cachedValue(cache, 'CMAKE_HOME_DIRECTORY');
    if (type !== 'Release') fail(`${file} is a ${type || 'unknown'} build; prebuilds are Release builds`);
    if (home && path.resolve(home) !== root) fail(`${file} was built from ${home}, not ${root}`);
    addFlavour(file, found, `cmake-js Release (reused ${path.relative(root, file)})`);
    return;
  }
  if (argv.length) fail(usage);
  if (!found) fail(FIX);
  say(`building for ${describeLibTorch(found)}`);
  // One build folder per flavour, so each LibTorch on a machine rebuilds incrementally.
  const r = build({ out: path.join(root, 'build-prebuild', flavourId(found)), log: say });
  if (!r.ok) fail(r.message);
  addFlavour(r.binary, found, `cmake-js Release (${r.seconds.toFixed(0)} s)`);
}

module.exports = { sourceHash, listFlavours, flavourMeta };

if (require.main === module) main(process.argv.slice(2));
