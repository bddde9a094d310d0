import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoadError, nativeErrorClasses } from './errors.js';
import type { NativeModule } from '../typings/native.js';

/** Where the addon came from and why; `radkit doctor` prints it. */
export interface LoadReport {
  loaded: boolean;
  path: string | null;
  /** 'RADKIT_NATIVE' | 'prebuild' | 'build' */
  source: string | null;
  attempts: { path: string; error: string }[];
  fix: string | null;
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

let cached: NativeModule | null = null;
let report: LoadReport | null = null;

function candidates(): { path: string; source: string }[] {
  const out: { path: string; source: string }[] = [];
  if (process.env.RADKIT_NATIVE) out.push({ path: path.resolve(process.env.RADKIT_NATIVE), source: 'RADKIT_NATIVE' });
  // node-gyp-build's order: prebuilds/ for this platform first, then build/Release.
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const resolve = require('node-gyp-build').resolve as (dir: string) => string;
    const p = resolve(packageRoot);
    out.push({ path: p, source: p.includes(`${path.sep}prebuilds${path.sep}`) ? 'prebuild' : 'build' });
  } catch {
    /* nothing found by node-gyp-build; fall through to the explicit paths for a precise report */
  }
  for (const [p, source] of [
    [path.join(packageRoot, 'build', 'Release', 'radkit.node'), 'build'],
  ] as const) {
    if (!out.some((c) => c.path === p) && fs.existsSync(p)) out.push({ path: p, source });
  }
  return out;
}

function fixFor(message: string): string {
  if (/libtorch|libc10|libtorch_cpu/.test(message))
    return 'The addon cannot find LibTorch at run time. Install it (`sudo apt-get install -y libtorch-dev`) or rebuild against the LibTorch you have (`npm run build:native`, with LIBTORCH set if it is not in a standard place).';
  if (/undefined symbol/.test(message))
    return 'The addon was built against a different LibTorch than the one it found. Rebuild it: `npm run build:native`.';
  if (/NODE_MODULE_VERSION|was compiled against a different Node/.test(message))
    return 'The addon was built for another Node.js. Rebuild it: `npm run build:native`.';
  return 'Rebuild the addon with `npm run build:native`; `radkit doctor` shows the details.';
}

/** Loads the native addon once; throws LoadError with the cause and the fix when it cannot. */
export function loadNative(): NativeModule {
  if (cached) return cached;
  const attempts: LoadReport['attempts'] = [];
  for (const c of candidates()) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(c.path) as NativeModule;
      mod.setErrorClasses(nativeErrorClasses);
      cached = mod;
      report = { loaded: true, path: c.path, source: c.source, attempts, fix: null };
      return mod;
    } catch (err) {
      attempts.push({ path: c.path, error: (err as Error).message.split('\n')[0] });
    }
  }
  const fix = attempts.length
    ? fixFor(attempts.map((a) => a.error).join('\n'))
    : 'No native build was found (no prebuilds/ for this platform and no build/Release/radkit.node). Build it with `npm run build:native` (needs LibTorch: `sudo apt-get install -y libtorch-dev`).';
  report = { loaded: false, path: null, source: null, attempts, fix };
  const detail = attempts.map((a) => `  ${a.path}: ${a.error}`).join('\n');
  throw new LoadError(`radkit native addon could not be loaded.${detail ? `\n${detail}` : ''}\nFix: ${fix}`, 'ERR_LOAD', 'loadNative');
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
