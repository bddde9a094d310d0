/**
 * SynthCXR generation benchmark: 3,000 studies (2,400 / 300 / 300) at 128 px, seconds wall-clock.
 * Run after `npm run build:ts`: `node dist/bench/synth.js [--workers N] [--views 1|2] [--size 128]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine } from '../lib/cli/command.js';
import { synthesize } from '../lib/data/synth/index.js';

export async function benchSynth(
  argv: string[] = [],
): Promise<{ seconds: number; cpuSeconds: number; studies: number; workers: number; views: number; size: number }> {
  const { values } = parseCommandLine(argv, {
    size: { type: 'integer', min: 16, default: 128, help: 'image side' },
    views: { type: 'integer', min: 1, max: 2, default: 2, help: 'views per study' },
    workers: { type: 'integer', min: 1, help: 'worker threads' },
  });
  const size = values.size as number;
  const views = values.views as 1 | 2;
  const workers = values.workers as number | undefined;
  const out = mkdtempSync(join(tmpdir(), 'radkit-bench-synth-'));
  try {
    const c0 = process.cpuUsage();
    const r = await synthesize({ out, train: 2400, val: 300, test: 300, size, seed: 1, views, workers });
    const c = process.cpuUsage(c0); // all threads of this process, workers included
    return { seconds: r.seconds, cpuSeconds: (c.user + c.system) / 1e6, studies: 3000, workers: r.workers, views, size };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (require.main === module) {
  benchSynth(process.argv.slice(2)).then((r) => {
    console.log(
      `synth: ${r.studies} studies at ${r.size} px, ${r.views} view(s), ${r.workers} worker(s): ${r.seconds.toFixed(2)} s wall, ${r.cpuSeconds.toFixed(2)} s CPU (${(r.cpuSeconds / 2).toFixed(2)} s if spread over 2 idle cores)`,
    );
  });
}
