import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoadError, nativeErrorClasses } from './errors.js';
import type { NativeModule } from '../typings/native.js';

/** A LibTorch found by scripts/find-libtorch.js (the one discovery the build uses too). */
export interface LibTorchFound {
  found: true;
  /** 'LIBTORCH' | 'Torch_DIR' | 'python torch' | 'system' */
  source: string;
  root: string;
  libDir: string;
  /** From torch/version.h, e.g. "1.13.0". */
  version: string | null;
  /** The distribution's own version string when it differs (Python torch: "2.5.1+cu124"). */
  label: string | null;
  /** CUDA version LibTorch was built with; null for a CPU LibTorch. */
  cuda: string | null;
  cxx11abi: number;
  torchConfigDir: string | null;
  /** The LibTorch library files in libDir (their names are what a binary links). */
  libraries: string[];
}

/** A discovery candidate that did not pan out. */
export interface LibTorchMissing {
  found: false;
  source: string;
  root?: string;
  problem: string;
}

/** flavour.json of a prebuilt binary (written by scripts/prebuild.js). */
export interface FlavourMeta {
  flavour: string;
  platform: string;
  arch: string;
  napi: number;
  torch: { version: string; label?: string; cxx11abi: number; cuda: string | null; libraries: string[]; source: string; root: string };
  otherLibraries?: string[];
  builtWithCuda: boolean;
  compiledOps?: string[];
  radkitVersion?: string;
  sourceHash?: string;
}

/** A prebuilt flavour in this package and whether it fits the LibTorch found. */
export interface FlavourCheck {
  flavour: string;
  description: string;
  path: string;
  /** 'exact' | 'compatible' (CPU flavour on a CUDA LibTorch of the same version) | 'no' | 'unknown' (no LibTorch found) */
  match: 'exact' | 'compatible' | 'no' | 'unknown';
  why: string[];
}

/** Where the addon came from and why; `radkit doctor` prints it. */
export interface LoadReport {
  loaded: boolean;
  path: string | null;
  /** 'RADKIT_NATIVE' | 'build' (a source build, build/Release) | 'prebuild' (a prebuilt flavour) */
  source: string | null;
  /** The prebuilt flavour loaded (source 'prebuild'). */
  flavour: string | null;
  /** Why this binary: which rule picked it. */
  why: string | null;
  /** The LibTorch found, when discovery ran (it runs only to pick a prebuilt flavour). */
  libtorch: LibTorchFound | null;
  /** The prebuilt flavours shipped for this platform, matched against `libtorch` (empty when not looked at). */
  flavours: FlavourCheck[];
  attempts: { path: string; error: string }[];
  /** The one thing to do when nothing loaded. */
  fix: string | null;
  /** The LoadError message when nothing loaded (doctor prints the same text). */
  message: string | null;
}

/** The package's root folder (works from lib/ under a test runner and from dist/lib/). */
export const packageRoot = findPackageRoot(__dirname);

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'radkit') return dir;
    if (path.dirname(dir) === dir) return path.resolve(start, '..', '..');
  }
}

interface Discovery {
  findLibTorch(options?: { all?: boolean }): { found: LibTorchFound | null; tried: (LibTorchFound | LibTorchMissing)[] };
  flavourId(t: LibTorchFound): string;
  describeLibTorch(t: LibTorchFound): string;
  describeFlavour(f: FlavourMeta): string;
  matchFlavour(f: FlavourMeta, t: LibTorchFound): { match: 'exact' | 'compatible' | 'no'; why: string[] };
  FIX: string;
}

/** scripts/find-libtorch.js, typed (shipped in the package; plain JS so build scripts share it). */
export function libtorchDiscovery(): Discovery {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(packageRoot, 'scripts', 'find-libtorch.js')) as Discovery;
}

/** Inside node_modules the CLI builds; in a checkout, the npm script does. */
export function buildCommand(): string {
  return packageRoot.split(path.sep).includes('node_modules') ? 'npx radkit build' : 'npm run build:native';
}

/** The prebuilt flavours for this platform: prebuilds/<platform>-<arch>/<flavour>/{radkit.node,flavour.json}. */
export function shippedFlavours(): { dir: string; meta: FlavourMeta }[] {
  const platDir = path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(platDir)) return [];
  const out: { dir: string; meta: FlavourMeta }[] = [];
  for (const name of fs.readdirSync(platDir).sort()) {
    const meta = path.join(platDir, name, 'flavour.json');
    if (fs.existsSync(meta) && fs.existsSync(path.join(platDir, name, 'radkit.node'))) out.push({ dir: path.join(platDir, name), meta: JSON.parse(fs.readFileSync(meta, 'utf8')) as FlavourMeta });
  }
  return out;
}

/** Every shipped flavour checked against a LibTorch (null: none found), best first. */
export function checkFlavours(libtorch: LibTorchFound | null): FlavourCheck[] {
  const d = libtorchDiscovery();
  const rank = { exact: 0, compatible: 1, unknown: 2, no: 3 };
  return shippedFlavours()
    .map(({ dir, meta }) => {
      const base = { flavour: meta.flavour, description: d.describeFlavour(meta), path: path.join(dir, 'radkit.node') };
      if (meta.napi > Number(process.versions.napi)) return { ...base, match: 'no' as const, why: [`needs Node-API ${meta.napi}, this Node.js has ${process.versions.napi}`] };
      if (!libtorch) return { ...base, match: 'unknown' as const, why: ['no LibTorch found'] };
      return { ...base, ...d.matchFlavour(meta, libtorch) };
    })
    .sort((a, b) => rank[a.match] - rank[b.match]);
}

let cached: NativeModule | null = null;
let report: LoadReport | null = null;

// glibc's RTLD_NODELETE: keeps a preloaded LibTorch library mapped after Node closes its handle.
const RTLD_NODELETE = 0x1000;
const PRELOAD_ORDER = ['libc10.', 'libc10_cuda.', 'libtorch_cpu.', 'libtorch_cuda.', 'libtorch.'];

/**
 * Maps the LibTorch libraries a prebuilt binary links from the LibTorch found, before the binary
 * loads: the dynamic loader then satisfies the binary's library names with these (it matches names
 * of libraries already loaded), whatever folder the binary was built against. Node's dlopen throws
 * "did not self-register" for a library that is not an addon; the library stays loaded.
 */
function preloadLibTorch(libDir: string, libraries: string[]): string[] {
  if (process.platform !== 'linux') return [];
  const errors: string[] = [];
  const order = (l: string) => PRELOAD_ORDER.findIndex((p) => l.startsWith(p));
  for (const lib of [...libraries].sort((a, b) => order(a) - order(b))) {
    const file = path.join(libDir, lib);
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, file, os.constants.dlopen.RTLD_NOW | RTLD_NODELETE);
    } catch (err) {
      const msg = (err as Error).message;
      if (!/did not self-register/.test(msg)) errors.push(`${file}: ${msg.split('\n')[0]}`);
    }
  }
  return errors;
}

function fixFor(message: string): string {
  if (/libtorch|libc10|libtorch_cpu/.test(message))
    return `The addon cannot find the LibTorch it was built against. Install that LibTorch, or build radkit against the one you have: \`${buildCommand()}\`.`;
  if (/undefined symbol/.test(message)) return `The addon was built against a different LibTorch than the one it found. Build it again: \`${buildCommand()}\`.`;
  if (/NODE_MODULE_VERSION|was compiled against a different Node/.test(message)) return `The addon was built for another Node.js. Build it again: \`${buildCommand()}\`.`;
  return `Build the addon: \`${buildCommand()}\`; \`radkit doctor\` shows the details.`;
}

/** Loads the native addon once; throws LoadError with the cause and the fix when it cannot. */
export function loadNative(): NativeModule {
  if (cached) return cached;
  const attempts: LoadReport['attempts'] = [];
  const state = { libtorch: null as LibTorchFound | null, flavours: [] as FlavourCheck[] };
  const done = (file: string, source: string, why: string, flavour: string | null = null): NativeModule | null => {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(file) as NativeModule;
      mod.setErrorClasses(nativeErrorClasses);
      cached = mod;
      report = { loaded: true, path: file, source, flavour, why, ...state, attempts, fix: null, message: null };
      return mod;
    } catch (err) {
      attempts.push({ path: file, error: (err as Error).message.split('\n')[0] });
      return null;
    }
  };
  const failWith = (lines: string[], fix: string): never => {
    const tried = attempts.map((a) => `  ${a.path}: ${a.error}`);
    const message = ["radkit's native addon could not be loaded.", ...lines, ...(tried.length ? ['Tried:', ...tried] : []), `Fix: ${fix}`].join('\n');
    report = { loaded: false, path: null, source: null, flavour: null, why: null, ...state, attempts, fix, message };
    throw new LoadError(message, 'ERR_LOAD', 'loadNative');
  };

  // 1. RADKIT_NATIVE: an explicit choice, used alone.
  const explicit = process.env.RADKIT_NATIVE;
  if (explicit) {
    const file = path.resolve(explicit);
    const mod = done(file, 'RADKIT_NATIVE', 'RADKIT_NATIVE names it');
    if (mod) return mod;
    return failWith([`RADKIT_NATIVE=${explicit} does not load.`], `Point RADKIT_NATIVE at a radkit.node that loads, or unset it. ${fixFor(attempts[0].error)}`);
  }

  // 2. A source build on this machine (npx radkit build, npm run build:native) comes before prebuilt binaries.
  const built = path.join(packageRoot, 'build', 'Release', 'radkit.node');
  if (fs.existsSync(built)) {
    const mod = done(built, 'build', 'a source build (build/Release), built on this machine; it comes before prebuilt binaries');
    if (mod) return mod;
  }

  // 3. The prebuilt flavour that matches the LibTorch found.
  const d = libtorchDiscovery();
  const shipped = shippedFlavours();
  const platform = `${process.platform}-${process.arch}`;
  state.libtorch = d.findLibTorch().found;
  state.flavours = checkFlavours(state.libtorch);
  const lt = state.libtorch;
  for (const f of state.flavours.filter((c) => c.match === 'exact' || c.match === 'compatible')) {
    const meta = shipped.find((s) => s.meta.flavour === f.flavour)!.meta;
    const preloadErrors = preloadLibTorch(lt!.libDir, meta.torch.libraries);
    const mod = done(f.path, 'prebuild', `prebuilt flavour ${f.flavour} ${f.match === 'exact' ? 'matches' : 'is compatible with'} ${d.describeLibTorch(lt!)}${f.why.length ? ` (${f.why.join('; ')})` : ''}`, f.flavour);
    if (mod) return mod;
    for (const e of preloadErrors) attempts.push({ path: f.path, error: `preloading ${e}` });
  }

  // Nothing loaded: one message naming the LibTorch found, the flavours shipped and the fix.
  const flavourLines = state.flavours.length
    ? [`Prebuilt flavours in this package (${platform}):`, ...state.flavours.map((f) => `  ${f.description}: ${f.match === 'no' ? `no match: ${f.why.join('; ')}` : f.match === 'unknown' ? 'needs that LibTorch' : 'matches, but did not load'}`)]
    : [`This package has no prebuilt binary for ${platform}.`];
  if (!lt) {
    const want = shipped.filter((s) => s.meta.torch.source === 'system').map((s) => s.meta.flavour);
    return failWith(
      ['LibTorch found: none (looked at LIBTORCH, Torch_DIR, Python torch, the system).', ...flavourLines],
      `${d.FIX}${want.length ? ` On Debian/Ubuntu, libtorch-dev is what the prebuilt ${want.join(', ')} needs.` : ''} Then radkit loads${want.length ? ' its prebuilt binary' : ` after \`${buildCommand()}\``}.`,
    );
  }
  const lines = [`LibTorch found: ${d.describeLibTorch(lt)}.`, ...flavourLines];
  if (state.flavours.some((f) => f.match === 'exact' || f.match === 'compatible')) return failWith(lines, fixFor(attempts.map((a) => a.error).join('\n')));
  // Another LibTorch on this machine may fit a shipped flavour: say how to pick it.
  const others = d.findLibTorch({ all: true }).tried.filter((t): t is LibTorchFound => t.found && t.root !== lt.root);
  const alt = others.map((t) => ({ t, f: checkFlavours(t).find((c) => c.match === 'exact') })).find((x) => x.f);
  const hint = alt ? ` Or use ${d.describeLibTorch(alt.t)}, which the prebuilt ${alt.f!.flavour} fits: \`export LIBTORCH=${alt.t.root}\`.` : '';
  return failWith(
    lines,
    `Build radkit for this LibTorch (flavour ${d.flavourId(lt)}): \`${buildCommand()}\` (needs CMake 3.18+, make or ninja and a C++17 compiler${lt.cuda ? ', and nvcc' : ''}).${hint}`,
  );
}

/** The result of the last load attempt (tries to load if none was made). */
export function loadReport(): LoadReport {
  if (!report) {
    try {
      loadNative();
    } catch {
      /* report is set either way */
    }
  }
  return report!;
}
