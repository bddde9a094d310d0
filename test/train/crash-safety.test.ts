// Issue 17 acceptance: `train` killed with -9 twenty times at random points (during start-up,
// steps, evaluation and inside checkpoint writes) and run again each time: after every kill
// `last` and `best` are whole, and the run ends with exactly the weights, losses and best
// checkpoint of an uninterrupted run (weights, optimizer state, random generators and data order
// are all restored on resume).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { weightsOf } from './run-weights.js';
import { Rng } from '../../lib/data/synth/rng.js';
import { readCheckpointMeta } from '../../lib/train/checkpoint.js';

const script = path.join(__dirname, 'crash-script.cjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-crash-'));
const dataDir = path.join(tmp, 'data');
const EPOCHS = 40;
const KILLS = 20;

beforeAll(async () => {
  await radkit.data.synthesize({ out: dataDir, train: 12, val: 4, test: 0, size: 32, seed: 8, views: 1, workers: 1 });
}, 60_000);

function lastEpoch(run: string): number {
  try {
    return readCheckpointMeta(path.join(run, 'checkpoints', 'last'))?.epoch ?? 0;
  } catch {
    return 0;
  }
}

/** Every checkpoint the run has is whole: its metadata parses and its weights load. */
async function checkWhole(run: string): Promise<void> {
  for (const name of ['last', 'best']) {
    const dir = path.join(run, 'checkpoints', name);
    if (!fs.existsSync(dir) && !fs.existsSync(`${dir}.old`)) continue;
    const meta = readCheckpointMeta(dir);
    expect(meta, `${name} has no readable checkpoint.json`).not.toBeNull();
    const ck = await radkit.loadCheckpoint(fs.existsSync(path.join(dir, 'checkpoint.json')) ? dir : `${dir}.old`);
    ck.model.dispose();
  }
}

describe('kill -9 at random points, 20 times (tiny XProNet)', () => {
  it('every resume finds whole checkpoints, and the run ends bit-identical to an uninterrupted one', async () => {
    const reference = path.join(tmp, 'reference');
    const spawned = Date.now();
    const ref = spawnSync(process.execPath, [script, dataDir, reference, String(EPOCHS)], { encoding: 'utf8' });
    expect(ref.status, ref.stderr).toBe(0);
    // This machine's pace, from the reference run's log: start-up, then one epoch (steps, evaluation, checkpoints).
    const log = fs.readFileSync(path.join(reference, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const startupMs = Date.parse(log.find((e) => e.type === 'start').time) - spawned;
    const marks = log.filter((e) => e.type === 'checkpoint').map((e) => Date.parse(e.time));
    const epochMs = Math.max(20, (marks.at(-1)! - marks[0]) / Math.max(1, marks.length - 1));

    const run = path.join(tmp, 'crashed');
    const rng = new Rng(1717);
    const where: Record<string, number> = {};
    let kills = 0;
    for (let life = 0; kills < KILLS; life++) {
      expect(life, 'the run completed before it could be killed 20 times').toBeLessThan(60);
      const startEpoch = lastEpoch(run);
      const insideWrite = life % 2 === 1;
      const child = spawn(process.execPath, [script, dataDir, run, String(EPOCHS), insideWrite ? String(rng.int(20, 40)) : '0'], { stdio: 'ignore' });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      let done = false;
      void exited.then(() => (done = true));
      const t0 = Date.now();
      if (insideWrite) {
        // Let it complete 0 or 1 epochs, then kill it while a checkpoint write is in its temporary folder.
        const advance = rng.int(0, 1);
        const ckpts = path.join(run, 'checkpoints');
        while (!done && Date.now() - t0 < 60_000) {
          const writing = fs.existsSync(ckpts) && fs.readdirSync(ckpts).some((n) => n.includes('.tmp-'));
          if (writing && lastEpoch(run) >= startEpoch + advance) break;
          await new Promise((r) => setTimeout(r, 2));
        }
        await new Promise((r) => setTimeout(r, rng.int(0, 15)));
      } else {
        // Anywhere: start-up, restoring, steps, evaluation, writes (at most about 1.5 epochs in).
        await new Promise((r) => setTimeout(r, rng.int(0, Math.round(startupMs + 1.5 * epochMs))));
      }
      if (done) {
        expect(await exited).toBe(0);
        break;
      }
      const ckpts = path.join(run, 'checkpoints');
      const inWrite = fs.existsSync(ckpts) && fs.readdirSync(ckpts).some((n) => n.includes('.tmp-') || n.endsWith('.old'));
      child.kill('SIGKILL');
      await exited;
      kills++;
      const at = inWrite ? 'inside a checkpoint write' : lastEpoch(run) === 0 && !fs.existsSync(ckpts) ? 'before the first checkpoint' : 'between checkpoint writes';
      where[at] = (where[at] ?? 0) + 1;
      await checkWhole(run);
    }
    console.log(`crash-safety: ${kills} kills (start-up ${startupMs} ms, epoch ${Math.round(epochMs)} ms): ${JSON.stringify(where)}`);
    expect(kills).toBe(KILLS);
    expect(where['inside a checkpoint write'] ?? 0).toBeGreaterThanOrEqual(3);

    // The last life finishes the run.
    const fin = spawnSync(process.execPath, [script, dataDir, run, String(EPOCHS)], { encoding: 'utf8' });
    expect(fin.status, fin.stderr).toBe(0);
    await checkWhole(run);
    const a = JSON.parse(ref.stdout.trim().split('\n').pop()!).result;
    const b = JSON.parse(fin.stdout.trim().split('\n').pop()!).result;
    const strip = (h: { epoch: number; trainLoss: number; metrics?: Record<string, number> }[]) => h.map(({ epoch, trainLoss, metrics }) => ({ epoch, trainLoss, metrics }));
    expect(strip(b.history)).toEqual(strip(a.history));
    expect(b.best).toEqual(a.best);
    expect(await weightsOf(run)).toEqual(await weightsOf(reference));
    const best = (r: string) => readCheckpointMeta(path.join(r, 'checkpoints', 'best'))!.best;
    expect(best(run)).toEqual(best(reference));
    // Nothing left behind: no temporary folders, no .old copies, no lock.
    expect(fs.readdirSync(path.join(run, 'checkpoints')).sort()).toEqual(['best', 'last']);
    expect(fs.existsSync(path.join(run, 'train.lock'))).toBe(false);
  }, 600_000);
});
