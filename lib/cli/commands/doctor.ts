import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from '../command.js';
import { buildCommand, checkFlavours, libtorchDiscovery, loadReport, packageRoot, type LibTorchFound } from '../../native.js';
import { devices, info, type DeviceInfo } from '../../runtime.js';

const real = (p: string) => {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
};

interface BuildCheck {
  ok: boolean;
  tools: Record<string, string>;
  missing: { what: string; fix: string }[];
}

/**
 * `radkit doctor`: the LibTorch found, the prebuilt flavours and whether they fit it, which binary
 * loaded and why, whether a source build could run, and, when nothing loads, the one fix (the
 * LoadError's own text). Exit 1 when nothing loads.
 */
export const doctor: Command = {
  name: 'doctor',
  summary: 'show LibTorch, the prebuilt flavours, which native binary loaded and why (and the fix when none does)',
  usage: 'usage: radkit doctor [--json]',
  flags: { json: { type: 'boolean', help: 'print JSON' } },
  async run({ values }) {
    const lines: string[] = [];
    const problems: string[] = [];
    const ok = (s: string) => lines.push(`  ok    ${s}`);
    const note = (s: string) => lines.push(`  --    ${s}`);
    const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
    const d = libtorchDiscovery();
    lines.push(`radkit doctor (radkit ${pkg.version} at ${packageRoot}, node ${process.version}, ${process.platform}-${process.arch})`, '');

    lines.push('LibTorch (discovery order: LIBTORCH, Torch_DIR, Python torch, system; the first found is used):');
    const disc = d.findLibTorch({ all: true });
    const used = disc.found;
    for (const t of disc.tried) {
      if (t.found) (t === used ? ok : note)(`${d.describeLibTorch(t)}${t === used ? ` <- used (flavour ${d.flavourId(t)})` : ' (not used: an earlier one was found)'}`);
      else note(`${t.source}: ${t.problem}`);
    }
    if (!used) lines.push('  FAIL  no LibTorch found');

    const flavours = checkFlavours(used);
    lines.push('', `Prebuilt flavours in this package (prebuilds/${process.platform}-${process.arch}):`);
    if (!flavours.length) note('none');
    for (const f of flavours) (f.match === 'exact' || f.match === 'compatible' ? ok : note)(`${f.description}: ${f.match === 'no' ? `no match: ${f.why.join('; ')}` : f.match === 'unknown' ? 'cannot tell (no LibTorch found)' : `${f.match} match${f.why.length ? ` (${f.why.join('; ')})` : ''}`}`);

    lines.push('', 'Native binary (order: RADKIT_NATIVE, build/Release (a source build), the prebuilt flavour matching LibTorch):');
    const report = loadReport();
    for (const a of report.attempts) note(`${a.path}: ${a.error}`);
    let facts: ReturnType<typeof info> | null = null;
    let usable: DeviceInfo[] | null = null;
    if (report.loaded) {
      ok(`loaded ${report.path}`);
      ok(`why: ${report.why}`);
      facts = info();
      ok(`LibTorch ${facts.torchVersion} at ${facts.torchLibrary} (C++11 ABI ${facts.cxx11Abi ? 1 : 0})`);
      if (used && facts.torchLibrary && real(path.dirname(facts.torchLibrary)) !== real(used.libDir))
        note(`this binary links the LibTorch in ${path.dirname(facts.torchLibrary)}, not the one discovery found (${used.libDir}); \`${buildCommand()}\` rebuilds it for the one found`);
      ok(`threads: ${facts.threads} (radkit.setNumThreads or OMP_NUM_THREADS change it)`);
      if (facts.cudaAvailable) ok(`CUDA: ${facts.cudaDevices} device(s)${facts.builtWithCuda ? '' : ' (radkit kernels built without CUDA: ops fall back to LibTorch or fail on CUDA tensors)'}`);
      else note(`CUDA: not available${facts.builtWithCuda ? ' (built with CUDA, but no device is visible)' : ' (CPU build)'}`);
      // The devices train / generate / evaluate --device take, and why the others cannot be used.
      usable = devices();
      for (const d of usable) (d.usable ? ok : note)(`device ${d.name}: ${d.usable ? `usable${d.detail ? ` (${d.detail})` : ''}` : `not usable: ${d.reason}`}`);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const compiled = (require(report.path!) as { compiledOps?: string[] }).compiledOps ?? [];
      ok(`ops compiled in: ${compiled.length ? compiled.join(', ') : '(none)'}`);
    } else {
      lines.push('  FAIL  no native binary could be loaded');
      problems.push(report.message ?? `radkit's native addon could not be loaded.\nFix: ${report.fix}`);
    }

    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const buildCheck = (require(path.join(packageRoot, 'scripts', 'build.js')) as { checkBuild(t: LibTorchFound | null): BuildCheck }).checkBuild(used);
    lines.push('', `Source build (\`${buildCommand()}\`):`);
    for (const [k, v] of Object.entries(buildCheck.tools)) ok(`${k}: ${v}`);
    if (buildCheck.ok) ok('everything a source build needs is here');
    else for (const m of buildCheck.missing) note(`missing ${m.what}: ${m.fix}`);

    if (values.json) {
      console.log(JSON.stringify({ libtorch: disc, flavours, binary: report, info: facts, devices: usable, build: buildCheck, problems }, null, 2));
    } else {
      console.log(lines.join('\n'));
      console.log(problems.length ? `\n${problems.length} problem(s):\n${problems.join('\n\n')}` : '\nEverything radkit needs was found.');
    }
    return problems.length ? 1 : 0;
  },
};
