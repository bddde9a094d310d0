#!/usr/bin/env node
'use strict';
// Release smoke test of an installed radkit tarball. .ci/run packs the package, installs the tarball
// into a fresh project with install scripts off, and runs this from that project:
//   node smoke.cjs [--expect-flavour torch1.13-cpu-abi1] [--cuda]
// It checks: the prebuilt binary loads (info()), a tensor round trip, each op on a small input
// (known answers; one backward), `radkit doctor` (exit 0), `radkit build --dry-run` (the source
// build configures from the packed files), and the two failures a consumer can meet: no LibTorch
// at all, and a LibTorch no shipped flavour fits; each is one LoadError whose text `radkit doctor`
// repeats with exit 1. --cuda also runs every op on the GPU and compares it with the CPU.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const argv = process.argv.slice(2);
const valueOf = (flag) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
const expectFlavour = valueOf('--expect-flavour');
const cuda = argv.includes('--cuda');

const cwd = process.cwd();
const pkgDir = path.dirname(require.resolve('radkit/package.json', { paths: [cwd] }));
assert.ok(pkgDir.split(path.sep).includes('node_modules'), `radkit must come from node_modules, got ${pkgDir}`);
const cli = path.join(cwd, 'node_modules', '.bin', 'radkit');
const radkit = require(require.resolve('radkit', { paths: [cwd] }));
const { Tensor, ops } = radkit;

let failures = 0;
function step(name, fn) {
  const t0 = Date.now();
  try {
    fn();
    console.log(`ok    ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    failures++;
    console.log(`FAIL  ${name}: ${err && err.stack}`);
  }
}
const close = (a, b, tol = 1e-6) => Array.from(a).every((x, i) => Math.abs(Number(x) - Number(b[i])) <= tol * Math.max(1, Math.abs(Number(b[i]))));
const f64 = (data, shape, options = {}) => Tensor.from(new Float64Array(data), shape, options);

step('info(): the prebuilt binary loads', () => {
  const info = radkit.info();
  assert.equal(info.binary.loaded, true);
  assert.equal(info.binary.source, 'prebuild', `loaded ${info.binary.path} from ${info.binary.source}`);
  if (expectFlavour) assert.equal(info.binary.flavour, expectFlavour);
  assert.ok(info.binary.path.startsWith(path.join(pkgDir, 'prebuilds')));
  assert.match(info.torchVersion, /^\d+\.\d+\.\d+$/);
  console.log(`      ${info.binary.path}\n      why: ${info.binary.why}\n      LibTorch ${info.torchVersion} at ${info.torchLibrary}, CUDA kernels ${info.builtWithCuda}, ${info.cudaDevices} device(s)`);
  if (cuda) assert.equal(info.builtWithCuda && info.cudaAvailable, true, 'the CUDA flavour must load with a device visible');
});

step('tensor round trip (float32, float64, int32, int64, uint8, bool)', () => {
  const base = radkit.memory().liveTensors;
  const cases = [
    [new Float32Array([1.5, -2, 3.25, 0]), 'float32'],
    [new Float64Array([Math.PI, -1e-300, 1e300, 0]), 'float64'],
    [new Int32Array([1, -2, 2147483647, 0]), 'int32'],
    [new BigInt64Array([1n, -2n, 9007199254740993n, 0n]), 'int64'],
    [new Uint8Array([0, 1, 255, 7]), 'uint8'],
    [new Uint8Array([0, 1, 1, 0]), 'bool'],
  ];
  for (const [data, dtype] of cases) {
    const t = Tensor.from(data, [2, 2], { dtype });
    assert.deepEqual(t.shape, [2, 2]);
    assert.equal(t.dtype, dtype);
    assert.deepEqual(Array.from(t.toArray()), Array.from(data), dtype);
    t.dispose();
  }
  assert.equal(radkit.memory().liveTensors, base);
});

// Each op on a small input with a known answer; run on `device`.
function runOps(device) {
  const on = (t) => (device === 'cpu' ? t : t.to(device));
  const out = {};
  const features = on(f64([1, 2, 3, 4], [1, 1, 2, 2]));
  const boxes = on(f64([1, 1, 2, 2], [1, 1, 4]));
  const patches = ops.adaptivePatchSample(features, boxes, { points: 1 });
  out.adaptivePatchSample = Array.from(patches.to('cpu').toArray());
  const image = on(f64([1, 0, 0, 1], [1, 2, 2]));
  const text = on(f64([1, 0, 0, 2], [1, 2, 2]));
  const sim = ops.maxSimilarity(image, text);
  out.maxSimilarity = [...sim.imageToText.to('cpu').toArray(), ...sim.textToImage.to('cpu').toArray()];
  const cost = ops.euclideanCost(on(f64([0, 0], [1, 1, 2])), on(f64([3, 4, 0, 1], [1, 2, 2])));
  out.euclideanCost = Array.from(cost.to('cpu').toArray());
  const sk = ops.sinkhorn(on(f64([0, 1, 1, 0], [1, 2, 2])), { epsilon: 0.1, maxIterations: 200 });
  out.sinkhornPlan = Array.from(sk.plan.to('cpu').toArray());
  out.sinkhornError = Number(sk.marginalError.to('cpu').toArray()[0]);
  const mq = ops.memoryQuery(on(f64([1, 0], [1, 1, 2])), on(f64([1, 0, 0, 1, -1, 0], [3, 2])), on(f64([10, 20, 30], [3, 1])), { k: 1, similarity: 'dot', weighting: 'softmax' });
  out.memoryQuery = [Number(mq.response.to('cpu').toArray()[0]), Number(mq.indices.to('cpu').toArray()[0]), Number(mq.weights.to('cpu').toArray()[0])];
  return out;
}

step('each op on a small input (CPU, known answers)', () => {
  const o = runOps('cpu');
  assert.ok(close(o.adaptivePatchSample, [2.5]), `adaptivePatchSample ${o.adaptivePatchSample}`);
  assert.ok(close(o.maxSimilarity, [1.5, 1.5]), `maxSimilarity ${o.maxSimilarity}`);
  assert.ok(close(o.euclideanCost, [5, 1]), `euclideanCost ${o.euclideanCost}`);
  assert.ok(o.sinkhornPlan[0] > 0.49 && o.sinkhornPlan[3] > 0.49 && o.sinkhornError < 1e-6, `sinkhorn ${o.sinkhornPlan} error ${o.sinkhornError}`);
  assert.deepEqual(o.memoryQuery, [10, 0, 1]);
  // Autograd through a kernel: d sum(patches) / d features = 1/4 each (bilinear at the centre).
  const features = f64([1, 2, 3, 4], [1, 1, 2, 2], { requiresGrad: true });
  const y = radkit.sum(ops.adaptivePatchSample(features, f64([1, 1, 2, 2], [1, 1, 4]), { points: 1 }));
  y.backward();
  assert.ok(close(features.grad.toArray(), [0.25, 0.25, 0.25, 0.25]));
});

if (cuda) {
  step('each op on the GPU matches the CPU', () => {
    const c = runOps('cpu');
    const g = runOps('cuda');
    for (const k of Object.keys(c)) assert.ok(close([].concat(g[k]), [].concat(c[k]), 1e-9), `${k}: cuda ${g[k]} cpu ${c[k]}`);
  });
}

const run = (args, env = {}) => spawnSync(cli, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env } });

step('radkit doctor: exit 0, names the flavour loaded and why', () => {
  const r = run(['doctor']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /why: prebuilt flavour \S+ (matches|is compatible with)/);
  assert.match(r.stdout, /Everything radkit needs was found/);
});

step('radkit build --dry-run: the source build configures from the packed files', () => {
  const r = run(['build', '--dry-run']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /configuration works/);
});

// The failures: a child process loads radkit under another environment; LoadError and doctor agree.
function failure(env) {
  const script = `try { require(${JSON.stringify(require.resolve('radkit', { paths: [cwd] }))}).info(); console.log(JSON.stringify({ loaded: true })); }
    catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, isLoadError: e instanceof require(${JSON.stringify(require.resolve('radkit', { paths: [cwd] }))}).LoadError, message: e.message })); }`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  const err = JSON.parse(r.stdout.trim().split('\n').pop());
  const doc = run(['doctor'], env);
  return { err, doc };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-smoke-'));
step('no LibTorch on the machine: one LoadError with the fix; doctor exits 1 with the same text', () => {
  const { err, doc } = failure({ RADKIT_LIBTORCH_SYSROOT: tmp, PYTHON: path.join(tmp, 'no-python'), LIBTORCH: '', Torch_DIR: '' });
  assert.equal(err.isLoadError, true, JSON.stringify(err));
  assert.equal(err.code, 'ERR_LOAD');
  assert.match(err.message, /LibTorch found: none/);
  assert.match(err.message, /Fix: LibTorch was not found\. Install it with `sudo apt-get install -y libtorch-dev`/);
  assert.equal(doc.status, 1);
  assert.ok(doc.stdout.includes(err.message), `doctor does not repeat the LoadError:\n${doc.stdout}`);
  console.log(err.message.replace(/^/gm, '      '));
});

step('a LibTorch no flavour fits: LoadError names it, the flavours shipped and the build command; doctor agrees', () => {
  const fake = path.join(tmp, 'libtorch-0.1');
  fs.mkdirSync(path.join(fake, 'include/ATen'), { recursive: true });
  fs.mkdirSync(path.join(fake, 'include/torch/csrc/api/include/torch'), { recursive: true });
  fs.mkdirSync(path.join(fake, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(fake, 'include/ATen/ATen.h'), '');
  fs.writeFileSync(path.join(fake, 'include/torch/csrc/api/include/torch/version.h'), '#define TORCH_VERSION_MAJOR 0\n#define TORCH_VERSION_MINOR 1\n#define TORCH_VERSION_PATCH 0\n');
  fs.writeFileSync(path.join(fake, 'lib/libtorch_cpu.so'), '');
  const { err, doc } = failure({ LIBTORCH: fake });
  assert.equal(err.isLoadError, true, JSON.stringify(err));
  assert.ok(err.message.includes(`LibTorch found: LIBTORCH LibTorch 0.1.0 (CPU, C++11 ABI 1) at ${fake}`), err.message);
  const shipped = fs.readdirSync(path.join(pkgDir, 'prebuilds', `${process.platform}-${process.arch}`));
  for (const f of shipped) assert.ok(err.message.includes(`${f} (LibTorch`), `flavour ${f} not named:\n${err.message}`);
  assert.match(err.message, /no match: built for LibTorch \d+\.\d+, found 0\.1\.0/);
  assert.match(err.message, /Fix: Build radkit for this LibTorch \(flavour torch0\.1-cpu-abi1\): `npx radkit build`/);
  assert.equal(doc.status, 1);
  assert.ok(doc.stdout.includes(err.message), `doctor does not repeat the LoadError:\n${doc.stdout}`);
  console.log(err.message.replace(/^/gm, '      '));
});
fs.rmSync(tmp, { recursive: true, force: true });

console.log(failures ? `\n${failures} smoke check(s) failed` : '\nsmoke test passed');
process.exit(failures ? 1 : 0);
