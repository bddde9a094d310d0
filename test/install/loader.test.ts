import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The package as a consumer gets it, without packing: a copy of package.json, scripts/ and dist/
// under <tmp>/node_modules/radkit with the CI build as its one prebuilt flavour (flavour.json from
// scripts/prebuild.js) and no build/. Each case loads it in a child process under its own
// environment. The packed-tarball version of this is test/install/smoke.cjs, run by .ci/run.
const root = path.resolve(__dirname, '..', '..');
// The binary to ship in the copy: RADKIT_NATIVE when set (the repo's convention for a build of one's own), else the CI build.
const built = process.env.RADKIT_NATIVE ? path.resolve(process.env.RADKIT_NATIVE) : path.join(root, 'build', 'Release', 'radkit.node');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const discovery = require(path.join(root, 'scripts', 'find-libtorch.js'));
const system = discovery.findLibTorch().found;
const enabled = fs.existsSync(built) && fs.existsSync(path.join(root, 'dist', 'lib', 'index.js')) && system?.source === 'system';

let tmp = '';
let pkg = '';
let flavour = '';

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of ['RADKIT_NATIVE', 'LIBTORCH', 'Torch_DIR', 'npm_command', 'npm_config_build_from_source']) if (!(k in extra)) delete e[k];
  return e;
}

/** Loads the copy in a child; returns info().binary (+ a tensor sum) or the error thrown. */
function load(extra: Record<string, string> = {}, after = '') {
  const script = `const r = require(${JSON.stringify(path.join(pkg, 'dist/lib/index.js'))});
    try {
      const i = r.info();
      const s = Array.from(r.sum(r.Tensor.from(new Float32Array([1, 2, 3]), [3])).toArray());
      ${after}
      console.log(JSON.stringify({ binary: i.binary, sum: s, extra: typeof extra === 'undefined' ? null : extra }));
    } catch (e) {
      console.log(JSON.stringify({ error: { name: e.name, code: e.code, isLoadError: e instanceof r.LoadError, message: e.message } }));
    }`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: env(extra) });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function doctor(extra: Record<string, string> = {}) {
  return spawnSync(process.execPath, [path.join(pkg, 'dist/lib/cli/main.js'), 'doctor'], { encoding: 'utf8', env: env(extra) });
}

function fakeLibTorch(dir: string, version: [number, number, number]): string {
  fs.mkdirSync(path.join(dir, 'include/ATen'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'include/torch/csrc/api/include/torch'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'include/ATen/ATen.h'), '');
  fs.writeFileSync(path.join(dir, 'include/torch/csrc/api/include/torch/version.h'), `#define TORCH_VERSION_MAJOR ${version[0]}\n#define TORCH_VERSION_MINOR ${version[1]}\n#define TORCH_VERSION_PATCH ${version[2]}\n`);
  fs.writeFileSync(path.join(dir, 'lib/libtorch_cpu.so'), '');
  return dir;
}

describe('flavour matching (scripts/find-libtorch.js)', () => {
  const lt = { found: true, source: 'python torch', root: '/t', libDir: '/t/lib', version: '2.5.1', cuda: '12.4', cxx11abi: 0, libraries: ['libc10.so', 'libc10_cuda.so', 'libtorch.so', 'libtorch_cpu.so', 'libtorch_cuda.so'] };
  const fl = (torch: object) => ({ flavour: 'x', napi: 9, torch: { version: '2.5.1', cxx11abi: 0, cuda: '12.4', libraries: ['libc10.so', 'libtorch_cpu.so', 'libtorch_cuda.so'], source: 'python torch', root: '/b', ...torch } });
  it('ids name version, CUDA and ABI', () => {
    expect(discovery.flavourId(lt)).toBe('torch2.5-cu124-abi0');
    expect(discovery.flavourId({ ...lt, cuda: null, version: '1.13.0', cxx11abi: 1 })).toBe('torch1.13-cpu-abi1');
  });
  it('exact, compatible (CPU flavour on a CUDA LibTorch) and each kind of mismatch', () => {
    expect(discovery.matchFlavour(fl({}), lt)).toEqual({ match: 'exact', why: [] });
    expect(discovery.matchFlavour(fl({ version: '2.5.0' }), lt).match).toBe('exact');
    expect(discovery.matchFlavour(fl({ cuda: null, libraries: ['libtorch_cpu.so'] }), lt).match).toBe('compatible');
    expect(discovery.matchFlavour(fl({ version: '2.4.0' }), lt).why).toEqual(['built for LibTorch 2.4, found 2.5.1']);
    expect(discovery.matchFlavour(fl({ cxx11abi: 1 }), lt).why).toEqual(['built with C++11 ABI 1, found ABI 0']);
    expect(discovery.matchFlavour(fl({ cuda: '12.1' }), lt).why).toEqual(['built for CUDA 12.1, found CUDA 12.4']);
    expect(discovery.matchFlavour(fl({}), { ...lt, cuda: null }).why).toEqual(['built for CUDA 12.4, found a CPU-only LibTorch']);
    expect(discovery.matchFlavour(fl({ libraries: ['libtorch_cpu.so.1.13'] }), lt).why).toEqual(['links libtorch_cpu.so.1.13, which /t/lib does not have']);
  });
});

describe.skipIf(!enabled)('an installed copy of the package (CI build as its prebuilt flavour)', () => {
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-loader-'));
    pkg = path.join(tmp, 'node_modules', 'radkit');
    fs.mkdirSync(pkg, { recursive: true });
    for (const item of ['package.json', 'scripts', 'dist/lib', 'dist/typings']) fs.cpSync(path.join(root, item), path.join(pkg, item), { recursive: true });
    // Dependencies resolve from the checkout's node_modules, as from a project's.
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const meta = require(path.join(root, 'scripts', 'prebuild.js')).flavourMeta(built, system, 'test copy of build/Release');
    flavour = meta.flavour;
    const dir = path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`, flavour);
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(built, path.join(dir, 'radkit.node'));
    fs.writeFileSync(path.join(dir, 'flavour.json'), JSON.stringify(meta));
  });
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('flavour.json records what the binary needs from LibTorch', () => {
    const meta = JSON.parse(fs.readFileSync(path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`, flavour, 'flavour.json'), 'utf8'));
    expect(meta.flavour).toBe(discovery.flavourId(system));
    expect(meta.torch.version).toBe(system.version);
    expect(meta.torch.libraries.length).toBeGreaterThan(0);
    for (const l of meta.torch.libraries) expect(system.libraries).toContain(l);
    expect(meta.sourceHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('loads the prebuilt flavour that matches the system LibTorch and says why', () => {
    const out = load();
    expect(out.error).toBeUndefined();
    expect(out.binary).toMatchObject({ loaded: true, source: 'prebuild', flavour });
    expect(out.binary.path).toBe(path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`, flavour, 'radkit.node'));
    expect(out.binary.why).toContain(`prebuilt flavour ${flavour} matches system LibTorch ${system.version}`);
    expect(out.sum).toEqual([6]);
  });

  it('a source build in build/Release comes first', () => {
    fs.mkdirSync(path.join(pkg, 'build', 'Release'), { recursive: true });
    fs.copyFileSync(built, path.join(pkg, 'build', 'Release', 'radkit.node'));
    try {
      expect(load().binary).toMatchObject({ loaded: true, source: 'build', flavour: null });
    } finally {
      fs.rmSync(path.join(pkg, 'build'), { recursive: true, force: true });
    }
  });

  it('a LibTorch in another folder: its libraries are the ones the prebuilt binary links', () => {
    // A copy of the system LibTorch's libraries elsewhere, pointed at by LIBTORCH: the loader
    // preloads them, so the binary (built against /usr) runs on the copy and never maps /usr's.
    const lt = path.join(tmp, 'libtorch-copy');
    fs.mkdirSync(path.join(lt, 'lib'), { recursive: true });
    fs.symlinkSync('/usr/include', path.join(lt, 'include'));
    const meta = JSON.parse(fs.readFileSync(path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`, flavour, 'flavour.json'), 'utf8'));
    for (const l of meta.torch.libraries) fs.copyFileSync(fs.realpathSync(path.join(system.libDir, l)), path.join(lt, 'lib', l));
    const cpu = meta.torch.libraries.find((l: string) => l.startsWith('libtorch_cpu.'));
    if (cpu !== 'libtorch_cpu.so') fs.symlinkSync(cpu, path.join(lt, 'lib', 'libtorch_cpu.so'));
    const out = load({ LIBTORCH: lt }, `const extra = [...new Set(require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/).pop()).filter((f) => /lib(torch|c10)/.test(f)))];`);
    expect(out.error).toBeUndefined();
    expect(out.binary.why).toContain(`matches LIBTORCH LibTorch ${system.version}`);
    expect(out.sum).toEqual([6]);
    expect(out.extra.length).toBe(meta.torch.libraries.length);
    for (const f of out.extra) expect(f.startsWith(path.join(lt, 'lib'))).toBe(true);
  });

  it('a LibTorch no flavour fits: one LoadError naming it, the flavours shipped and the build command; doctor repeats it, exit 1', () => {
    const fake = fakeLibTorch(path.join(tmp, 'libtorch-0.1'), [0, 1, 0]);
    const { error } = load({ LIBTORCH: fake });
    expect(error).toMatchObject({ name: 'LoadError', code: 'ERR_LOAD', isLoadError: true });
    expect(error.message).toContain(`LibTorch found: LIBTORCH LibTorch 0.1.0 (CPU, C++11 ABI 1) at ${fake}.`);
    expect(error.message).toContain(`${flavour} (LibTorch ${system.version.split('.').slice(0, 2).join('.')}, CPU, C++11 ABI 1, built against system /usr): no match: built for LibTorch 1.13, found 0.1.0`);
    expect(error.message).toContain('Fix: Build radkit for this LibTorch (flavour torch0.1-cpu-abi1): `npx radkit build`');
    // The system LibTorch fits the shipped flavour: the message says how to pick it.
    expect(error.message).toContain(`which the prebuilt ${flavour} fits: \`export LIBTORCH=/usr\``);
    const d = doctor({ LIBTORCH: fake });
    expect(d.status).toBe(1);
    expect(d.stdout).toContain(error.message);
    expect(d.stdout).toContain('FAIL  no native binary could be loaded');
  });

  it('no LibTorch anywhere: LoadError with the install command; doctor exits 1 with the same text', () => {
    const none = { RADKIT_LIBTORCH_SYSROOT: path.join(tmp, 'empty-root'), PYTHON: path.join(tmp, 'no-python') };
    const { error } = load(none);
    expect(error).toMatchObject({ code: 'ERR_LOAD', isLoadError: true });
    expect(error.message).toContain('LibTorch found: none');
    expect(error.message).toContain(`Fix: ${discovery.FIX} On Debian/Ubuntu, libtorch-dev is what the prebuilt ${flavour} needs. Then radkit loads its prebuilt binary.`);
    const d = doctor(none);
    expect(d.status).toBe(1);
    expect(d.stdout).toContain(error.message);
  });

  it('RADKIT_NATIVE is used alone: when it does not load, that is the error', () => {
    const { error } = load({ RADKIT_NATIVE: path.join(tmp, 'nothing.node') });
    expect(error.code).toBe('ERR_LOAD');
    expect(error.message).toContain(`RADKIT_NATIVE=${path.join(tmp, 'nothing.node')} does not load.`);
  });

  it('the install hook never fails: ready, no LibTorch on install, and a rebuild that cannot build', () => {
    const hook = (extra: Record<string, string>) => spawnSync(process.execPath, [path.join(pkg, 'scripts', 'install.js')], { encoding: 'utf8', env: env(extra) });
    const ready = hook({});
    expect(ready.status).toBe(0);
    expect(ready.stdout).toContain(`radkit: native addon ready: prebuilds/${process.platform}-${process.arch}/${flavour}/radkit.node`);
    const none = { RADKIT_LIBTORCH_SYSROOT: path.join(tmp, 'empty-root'), PYTHON: path.join(tmp, 'no-python') };
    const install = hook(none);
    expect(install.status).toBe(0);
    expect(install.stdout).toContain('LibTorch found: none');
    const rebuild = hook({ ...none, npm_command: 'rebuild' });
    expect(rebuild.status).toBe(0);
    expect(rebuild.stdout).toContain(`radkit: cannot build, missing:\n  - LibTorch: ${discovery.FIX}`);
  });
});
