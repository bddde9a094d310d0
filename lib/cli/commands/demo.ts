import { formatFlags, type CliFlags, type Command } from '../command.js';
import { runDemo } from '../../demo.js';

const FLAGS: CliFlags = {
  out: { type: 'string', help: 'output folder (default runs/demo)' },
  train: { type: 'integer', min: 1, help: 'training studies (default 3000)' },
  val: { type: 'integer', min: 1, help: 'validation studies (default 40)' },
  test: { type: 'integer', min: 1, help: 'test studies (default 100)' },
  epochs: { type: 'integer', min: 1, help: 'epochs (default 8)' },
  seed: { type: 'integer', min: 0, help: 'seed (default 0)' },
  device: { type: 'string', arg: 'DEVICE', help: 'cpu (default: small preset, 128 px) or cuda[:N] (the GPU preset: paper-size XProNet at 224 px, OUT runs/demo-gpu)' },
  precision: { type: 'string', choices: ['float32', 'bfloat16', 'float16'], help: 'training precision (default float32)' },
};

/** `radkit demo` (`npm run demo`): the main job. */
export const demo: Command = {
  name: 'demo',
  summary: 'SynthCXR -> train a small XProNet on the CPU -> generate and score test reports -> HTML page',
  get usage() {
    return `usage: radkit demo [options]

Generates a SynthCXR set (reused when present), trains a small XProNet, generates test reports with
beam 3 (labels predicted from the image; oracle labels shown too), scores them (BLEU, METEOR,
ROUGE-L, CIDEr-D, clinical efficacy) against the most-common-training-report baseline and writes
OUT/report.html and OUT/results.json. Delete OUT/run to train again from scratch.
${formatFlags(FLAGS)}`;
  },
  flags: FLAGS,
  async run({ values }) {
    const n = (k: string) => values[k] as number | undefined;
    await runDemo({
      outDir: values.out as string | undefined, train: n('train'), val: n('val'), test: n('test'), epochs: n('epochs'), seed: n('seed'),
      device: values.device as string | undefined, precision: values.precision as 'float32' | 'bfloat16' | 'float16' | undefined,
    });
    return 0;
  },
};
