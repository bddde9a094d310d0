import { writeFileSync } from 'node:fs';
import type { Command } from '../command.js';
import { parseFlags } from '../command.js';
import { synthesize } from '../../data/synth/index.js';

const USAGE = `usage: radkit synth --out DIR [--train N] [--val N] [--test N] [--size 128] [--seed S]
                    [--views 1|2] [--unpaired] [--workers N] [--sheet FILE.png]

Writes a SynthCXR dataset: synthetic chest radiographs with findings-style reports, in R2Gen IU X-Ray
format (annotation.json + images/<id>/{0,1}.png) plus labels.json (14 CheXpert observations) and
boxes.json (ground-truth boxes of the drawn findings, frontal view, pixels). Same flags, same bytes.

  --out DIR       output directory (required)
  --train N       training studies (default 2400)
  --val N         validation studies (default 300)
  --test N        test studies (default 300)
  --size PX       image side (default 128)
  --seed S        integer seed (default 0)
  --views 1|2     frontal only, or frontal + lateral (default 2)
  --unpaired      also write unpaired/images.json and unpaired/reports.json (disjoint halves of train)
  --workers N     worker threads (default: cores, at most 8)
  --sheet FILE    also write a contact sheet PNG of the first 24 training images with their boxes`;

function intFlag(flags: Record<string, string | true>, name: string, dflt: number): number {
  const v = flags[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v === true || !Number.isInteger(n)) throw new Error(`--${name} needs an integer, got ${v === true ? 'nothing' : `'${v}'`}`);
  return n;
}

export const synthCommand: Command = {
  name: 'synth',
  summary: 'generate the SynthCXR dataset (images, reports, labels, boxes)',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const { flags, positional } = parseFlags(argv);
    if (positional.length > 0) {
      console.error(`radkit synth: unexpected argument '${positional[0]}'\n\n${USAGE}`);
      return 2;
    }
    const known = new Set(['out', 'train', 'val', 'test', 'size', 'seed', 'views', 'unpaired', 'workers', 'sheet']);
    for (const k of Object.keys(flags))
      if (!known.has(k)) {
        console.error(`radkit synth: unknown flag --${k}\n\n${USAGE}`);
        return 2;
      }
    if (typeof flags.out !== 'string') {
      console.error(`radkit synth: --out DIR is required\n\n${USAGE}`);
      return 2;
    }
    const views = intFlag(flags, 'views', 2);
    if (views !== 1 && views !== 2) throw new Error(`--views must be 1 or 2, got ${views}`);
    const res = await synthesize({
      out: flags.out,
      train: intFlag(flags, 'train', 2400),
      val: intFlag(flags, 'val', 300),
      test: intFlag(flags, 'test', 300),
      size: intFlag(flags, 'size', 128),
      seed: intFlag(flags, 'seed', 0),
      views,
      unpaired: flags.unpaired === true || flags.unpaired === 'true',
      workers: flags.workers !== undefined ? intFlag(flags, 'workers', 1) : undefined,
    });
    const n = res.counts.train + res.counts.val + res.counts.test;
    console.log(
      `radkit synth: ${n} studies (train ${res.counts.train}, val ${res.counts.val}, test ${res.counts.test}) -> ${res.out} in ${res.seconds.toFixed(1)} s (${res.workers} worker${res.workers === 1 ? '' : 's'})`,
    );
    if (typeof flags.sheet === 'string') {
      const { sheetFromDataset } = await import('../../data/synth/sheet.js');
      writeFileSync(flags.sheet, sheetFromDataset(res.out, 24));
      console.log(`radkit synth: contact sheet -> ${flags.sheet}`);
    }
    return 0;
  },
};
