// radkit cyclic-hints: AdaMatch-found hints for AdaMatch-Cyclic (keywords per image, keypatch
// tokens per report) written to the file `radkit train --model adamatch-cyclic --hints FILE` reads.
import { formatFlags, UsageError, type CliFlags, type Command } from '../command.js';
import type { SplitName } from '../../data/r2gen.js';
import { hasCodebooks, loadCodebooks } from '../../align/codebooks.js';
import { cyclicHints, saveCyclicHints } from '../../models/cyclic-hints.js';
import { defaultOutputDir, loadCheckpoint } from '../../train/checkpoint.js';
import { DATA_FLAGS, dataset } from './models.js';

const HINTS_FLAGS: CliFlags = {
  adamatch: { type: 'string', arg: 'RUN', required: true, help: 'the frozen AdaMatch run (or checkpoint folder)' },
  codebooks: { type: 'string', arg: 'DIR', help: 'its codebooks (radkit codebooks; default RUN/codebooks)' },
  vq: { type: 'string', arg: 'RUN', required: true, help: 'the vqgan run whose codes the LM reads (encodes the keypatches)' },
  ...DATA_FLAGS,
  out: { type: 'string', arg: 'FILE', required: true, help: 'hints file to write (JSON)' },
  splits: { type: 'string', default: 'train,val,test', help: 'comma-separated splits' },
  'max-items': { type: 'integer', min: 1, help: 'the first N studies of each split' },
  nw: { type: 'integer', min: 1, max: 1000, default: 10, help: 'keywords per image (N_w)' },
  np: { type: 'integer', min: 1, max: 1000, default: 5, help: 'keypatches per report (N_p)' },
  'keypatch-token': { type: 'string', choices: ['context', 'crop'], default: 'context', help: "a keypatch's token: the code under its box centre in its whole encoded image, or its box encoded alone" },
};

export const cyclicHintsCommand: Command = {
  name: 'cyclic-hints',
  summary: "AdaMatch's keywords (per image) and keypatch tokens (per report) for radkit train --model adamatch-cyclic --hints FILE",
  get usage() {
    return `usage: radkit cyclic-hints --adamatch RUN --vq RUN --data DIR --out FILE [options]\n${formatFlags(HINTS_FLAGS)}`;
  },
  flags: () => HINTS_FLAGS,
  async run({ values: flags }) {
    const splits = String(flags.splits).split(',').map((s) => s.trim());
    for (const s of splits) if (!['train', 'val', 'test'].includes(s)) throw new UsageError(`--splits: '${s}' is not train, val or test`);
    const bookDir = (flags.codebooks as string | undefined) ?? defaultOutputDir(flags.adamatch as string, 'codebooks', 'radkit cyclic-hints');
    if (!hasCodebooks(bookDir)) throw new UsageError(`no codebooks in ${bookDir}: build them with radkit codebooks --checkpoint ${flags.adamatch} --data DIR (or give --codebooks DIR)`);
    const ds = dataset(flags);
    const am = await loadCheckpoint(flags.adamatch as string);
    try {
      if (am.meta.kind !== 'adamatch') throw new UsageError(`--adamatch: ${flags.adamatch} holds ${am.meta.kind}, not an adamatch run`);
      const vq = await loadCheckpoint(flags.vq as string);
      try {
        if (vq.meta.kind !== 'vqgan') throw new UsageError(`--vq: ${flags.vq} holds ${vq.meta.kind}, not a vqgan run`);
        const h = await cyclicHints(am.model, am.tokenizer, am.meta.preprocessing, loadCodebooks(bookDir), vq.model, ds, { splits: splits as SplitName[], maxItems: flags['max-items'] as number | undefined, nw: flags.nw as number, np: flags.np as number, keypatchToken: flags['keypatch-token'] as 'context' | 'crop' });
        saveCyclicHints(flags.out as string, h);
        console.log(`${flags.out}: hints of ${Object.keys(h.keywords).length} studies (${h.settings.keypatchesEncoded} keypatches encoded)`);
      } finally {
        vq.model.dispose();
      }
    } finally {
      am.model.dispose();
    }
    return 0;
  },
};
