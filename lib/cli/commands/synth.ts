import { writeFileSync } from 'node:fs';
import { formatFlags, type CliFlags, type Command } from '../command.js';
import { synthesize } from '../../data/synth/index.js';

const FLAGS: CliFlags = {
  out: { type: 'string', required: true, help: 'output directory' },
  train: { type: 'integer', min: 0, default: 2400, help: 'training studies' },
  val: { type: 'integer', min: 0, default: 300, help: 'validation studies' },
  test: { type: 'integer', min: 0, default: 300, help: 'test studies' },
  size: { type: 'integer', min: 16, max: 4096, default: 128, help: 'image side in pixels' },
  seed: { type: 'integer', min: 0, default: 0, help: 'seed' },
  views: { type: 'integer', min: 1, max: 2, default: 2, help: 'frontal only (1), or frontal + lateral (2)' },
  unpaired: { type: 'boolean', help: 'also write unpaired/images.json and unpaired/reports.json (disjoint halves of train)' },
  workers: { type: 'integer', min: 1, max: 64, help: 'worker threads (default: cores, at most 8)' },
  sheet: { type: 'string', help: 'also write a contact sheet PNG of the first 24 training images with their boxes' },
  force: { type: 'boolean', help: 'replace the annotation, labels and images already in --out (refused otherwise)' },
};

const USAGE = `usage: radkit synth --out DIR [options]

Writes a SynthCXR dataset: synthetic chest radiographs with findings-style reports, in R2Gen IU X-Ray
format (annotation.json + images/<id>/{0,1}.png) plus labels.json (14 CheXpert observations) and
boxes.json (ground-truth boxes of the drawn findings, frontal view, pixels). Same flags, same bytes.

${formatFlags(FLAGS)}`;

export const synthCommand: Command = {
  name: 'synth',
  summary: 'generate the SynthCXR dataset (images, reports, labels, boxes)',
  usage: USAGE,
  flags: FLAGS,
  async run({ values: flags }) {
    const res = await synthesize({
      out: flags.out as string,
      train: flags.train as number,
      val: flags.val as number,
      test: flags.test as number,
      size: flags.size as number,
      seed: flags.seed as number,
      views: flags.views as 1 | 2,
      unpaired: flags.unpaired === true,
      workers: flags.workers as number | undefined,
      force: flags.force === true,
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
