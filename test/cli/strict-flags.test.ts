// Every command parses its flags strictly: a wrong command line stops with one line naming the
// problem, the command's usage and exit code 2, before any work (no training, no files).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../lib/cli/main.js';
import { commands } from '../../lib/cli/commands/index.js';

// A valid base line per command (what is needed to get past parsing) and one of its number flags.
const CASES: Record<string, { base: string[]; numberFlag: string; wellKnown: string }> = {
  demo: { base: [], numberFlag: 'epochs', wellKnown: 'epochs' },
  doctor: { base: [], numberFlag: '', wellKnown: 'json' },
  build: { base: [], numberFlag: '', wellKnown: 'clean' },
  train: { base: ['--data', 'D', '--out', 'OUT'], numberFlag: 'epochs', wellKnown: 'epochs' },
  generate: { base: ['--checkpoint', 'C', 'img.png'], numberFlag: 'beams', wellKnown: 'beams' },
  evaluate: { base: ['--checkpoint', 'C', '--data', 'D'], numberFlag: 'beams', wellKnown: 'split' },
  report: { base: ['EVAL'], numberFlag: '', wellKnown: 'data' },
  retrieve: { base: ['--checkpoint', 'C', '--data', 'D'], numberFlag: 'top', wellKnown: 'split' },
  codebooks: { base: ['--checkpoint', 'C', '--data', 'D'], numberFlag: 'kappa0', wellKnown: 'kappa0' },
  explain: { base: ['--checkpoint', 'C', 'img.png'], numberFlag: 'top', wellKnown: 'top' },
  metrics: { base: ['--hyps', 'H', '--refs', 'R'], numberFlag: 'max-seq-length', wellKnown: 'format' },
  synth: { base: ['--out', 'OUT'], numberFlag: 'train', wellKnown: 'train' },
  prepare: { base: ['--data', 'D'], numberFlag: 'size', wellKnown: 'size' },
  'import-vq': { base: ['--vq', 'F', '--out', 'O'], numberFlag: 'image-size', wellKnown: 'preset' },
  'tokenize-images': { base: ['--checkpoint', 'C', '--data', 'D'], numberFlag: 'batch-size', wellKnown: 'splits' },
  decode: { base: ['--checkpoint', 'C', '--out', 'O'], numberFlag: '', wellKnown: 'tokens' },
  'cyclic-hints': { base: ['--adamatch', 'A', '--vq', 'V', '--data', 'D', '--out', 'O'], numberFlag: 'max-items', wellKnown: 'codebooks' },
};

let errors: string[] = [];
let cwd: string;
beforeEach(() => {
  errors = [];
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.join(' ')));
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  // Relative paths of the cases land here, so a command that wrongly started would leave files.
  cwd = process.cwd();
  process.chdir(fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-flags-')));
});
afterEach(() => {
  vi.restoreAllMocks();
  const here = process.cwd();
  process.chdir(cwd);
  expect(fs.readdirSync(here)).toEqual([]);
});

async function expectUsageError(argv: string[], message: RegExp) {
  errors = [];
  const code = await main(argv);
  expect(code, `radkit ${argv.join(' ')}`).toBe(2);
  const text = errors.join('\n');
  expect(text.split('\n')[0]).toMatch(message);
  expect(text).toMatch(new RegExp(`usage: radkit ${argv[0]}`));
}

describe('strict command lines', () => {
  it('covers every command', () => {
    expect(commands.map((c) => c.name).sort()).toEqual(Object.keys(CASES).sort());
  });

  for (const [name, c] of Object.entries(CASES)) {
    describe(name, () => {
      it('unknown flag', async () => {
        await expectUsageError([name, ...c.base, '--frobnicate', 'x'], /unknown flag --frobnicate/);
      });
      it('misspelt flag (with a hint)', async () => {
        const misspelt = c.wellKnown.slice(0, -1);
        await expectUsageError([name, ...c.base, `--${misspelt}`, '2'], new RegExp(`unknown flag --${misspelt} \\(did you mean --${c.wellKnown}\\?\\)`));
      });
      it.skipIf(!c.numberFlag)('missing value', async () => {
        await expectUsageError([name, ...c.base, `--${c.numberFlag}`], new RegExp(`--${c.numberFlag} needs a value`));
      });
      it.skipIf(!c.numberFlag)('bad number', async () => {
        await expectUsageError([name, ...c.base, `--${c.numberFlag}`, 'two'], new RegExp(`--${c.numberFlag} needs a number, got 'two'`));
        await expectUsageError([name, ...c.base, `--${c.numberFlag}`, '0.5'], new RegExp(`--${c.numberFlag} needs a whole number`));
      });
    });
  }

  it('ranges, choices, required flags and model kinds', async () => {
    await expectUsageError(['generate', '--checkpoint', 'C', 'a.png', '--views-per-study', '0'], /--views-per-study must be at least 1, got 0/);
    await expectUsageError(['train', '--data', 'D', '--out', 'O', '--epochs', '-1'], /--epochs needs a value/);
    await expectUsageError(['train', '--data', 'D', '--out', 'O', '--epochs=-1'], /--epochs must be at least 1, got -1/);
    await expectUsageError(['train', '--data', 'D'], /--out is required/);
    await expectUsageError(['train', '--model', 'nope', '--data', 'D', '--out', 'O'], /--model must be one of xpronet, adamatch.*got 'nope'/);
    // A kind's own flag belongs to that kind only.
    await expectUsageError(['train', '--model', 'xpronet', '--data', 'D', '--out', 'O', '--bert', 'B'], /unknown flag --bert/);
    await expectUsageError(['evaluate', '--checkpoint', 'C', '--data', 'D', '--split', 'dev'], /--split must be one of train, val, test, got 'dev'/);
    await expectUsageError(['generate', '--checkpoint', 'C'], /give at least 1 image file/);
    await expectUsageError(['synth', '--out', 'O', 'extra'], /unexpected argument 'extra'/);
    await expectUsageError(['doctor', '--json=yes'], /--json takes no value/);
  });

  it('train --help lists the registered kinds and their flags', async () => {
    const out: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
    expect(await main(['train', '--help'])).toBe(0);
    const text = out.join('\n');
    expect(text).toMatch(/^ {2}xpronet +XProNet/m);
    expect(text).toMatch(/^ {2}adamatch +AdaMatch/m);
    expect(text).toMatch(/--fixed-patches/);
    expect(text).toMatch(/--label-source oracle\|predicted\|none/);
  });

  it('the installed CLI exits with code 2 and prints the usage', () => {
    const cli = path.resolve(__dirname, '../../dist/lib/cli/main.js');
    const r = spawnSync(process.execPath, [cli, 'train', '--epoch', '2', '--data', 'D', '--out', 'O'], { encoding: 'utf8', cwd: process.cwd() });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^radkit train: unknown flag --epoch \(did you mean --epochs\?\)/);
    expect(r.stderr).toMatch(/usage: radkit train/);
  });
});
