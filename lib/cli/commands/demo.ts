import type { Command } from '../command.js';
import { parseFlags } from '../command.js';
import { runDemo } from '../../demo.js';

/** `radkit demo` (`npm run demo`): the main job. */
export const demo: Command = {
  name: 'demo',
  summary: 'SynthCXR -> train a small XProNet on the CPU -> generate and score test reports -> HTML page',
  usage: `usage: radkit demo [--out runs/demo] [--train N] [--val N] [--test N] [--epochs E] [--seed S]

Generates a SynthCXR set (reused when present), trains a small XProNet, generates test reports with
beam 3 (labels predicted from the image; oracle labels shown too), scores them (BLEU, METEOR,
ROUGE-L, CIDEr-D, clinical efficacy) against the most-common-training-report baseline and writes
OUT/report.html and OUT/results.json. Delete OUT/run to train again from scratch.`,
  async run(argv) {
    const { flags } = parseFlags(argv);
    const num = (k: string) => (flags[k] === undefined ? undefined : Number(flags[k]));
    await runDemo({ outDir: flags.out as string | undefined, train: num('train'), val: num('val'), test: num('test'), epochs: num('epochs'), seed: num('seed') });
    return 0;
  },
};
