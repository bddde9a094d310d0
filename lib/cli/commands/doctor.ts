import type { Command } from '../command.js';
import { loadReport, packageRoot } from '../../native.js';
import { info } from '../../runtime.js';
import * as path from 'node:path';

interface LibTorchCandidate {
  found: boolean;
  source: string;
  root?: string;
  problem?: string;
  cuda?: boolean;
  cxx11abi?: number;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const discovery = require(path.join(packageRoot, 'scripts', 'find-libtorch.js')) as {
  findLibTorch(): { found: LibTorchCandidate | null; tried: LibTorchCandidate[] };
  FIX: string;
};

/** `radkit doctor`: what was found, which binary loaded and why, and the fix for each problem. */
export const doctor: Command = {
  name: 'doctor',
  summary: 'show LibTorch, CUDA, threads and which native binary loaded (and how to fix problems)',
  usage: 'usage: radkit doctor [--json]',
  flags: { json: { type: 'boolean', help: 'print JSON' } },
  async run({ values }) {
    const lines: string[] = [];
    const problems: string[] = [];
    const ok = (s: string) => lines.push(`  ok    ${s}`);
    const bad = (s: string, fix: string) => {
      lines.push(`  FAIL  ${s}`);
      problems.push(fix);
    };
    lines.push(`radkit doctor (node ${process.version}, ${process.platform}-${process.arch})`, '', 'LibTorch (build-time discovery: LIBTORCH, Torch_DIR, Python torch, system):');
    const disc = discovery.findLibTorch();
    for (const t of disc.tried) {
      if (t.found) ok(`${t.source}: ${t.root} (CUDA ${t.cuda ? 'yes' : 'no'}, C++11 ABI ${t.cxx11abi})`);
      else lines.push(`  --    ${t.source}: ${t.problem}`);
    }
    if (!disc.found) bad('no LibTorch to build against', discovery.FIX);

    lines.push('', 'Native binary (order: RADKIT_NATIVE, prebuilds/, build/Release):');
    const report = loadReport();
    for (const a of report.attempts) lines.push(`  --    ${a.path}: ${a.error}`);
    let facts: ReturnType<typeof info> | null = null;
    if (report.loaded) {
      ok(`loaded ${report.path} (from ${report.source})`);
      facts = info();
      ok(`LibTorch ${facts.torchVersion} at ${facts.torchLibrary}`);
      ok(`threads: ${facts.threads} (radkit.setNumThreads or OMP_NUM_THREADS change it)`);
      if (facts.cudaAvailable) ok(`CUDA: ${facts.cudaDevices} device(s)${facts.builtWithCuda ? '' : ' (radkit kernels built without CUDA: ops fall back to LibTorch or fail on CUDA tensors)'}`);
      else lines.push(`  --    CUDA: not available${facts.builtWithCuda ? ' (built with CUDA, but no device is visible)' : ' (CPU LibTorch)'}`);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const compiled = (require(report.path!) as { compiledOps?: string[] }).compiledOps ?? [];
      ok(`ops compiled in: ${compiled.length ? compiled.join(', ') : '(none)'}`);
    } else {
      bad('no native binary could be loaded', report.fix ?? 'run `npm run build:native`');
    }
    if (values.json) {
      console.log(JSON.stringify({ libtorch: disc, binary: report, info: facts, problems }, null, 2));
    } else {
      console.log(lines.join('\n'));
      console.log(problems.length ? `\n${problems.length} problem(s):\n${problems.map((p, i) => `  ${i + 1}. ${p}`).join('\n')}` : '\nEverything radkit needs was found.');
    }
    return problems.length ? 1 : 0;
  },
};
