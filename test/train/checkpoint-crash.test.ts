// Issue 17 item 13: a checkpoint replacement killed (SIGKILL) at every point of its sequence leaves
// a whole checkpoint (the old or the new one), and the next write cleans up what it left.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpointMeta, writeCheckpoint, type CheckpointMeta } from '../../lib/train/checkpoint.js';
import type { Model } from '../../lib/models/model.js';

const script = path.join(__dirname, 'checkpoint-crash.cjs');

const model = {
  saveWeights: async (weights: string, optimizer?: string) => {
    const v = JSON.parse(fs.readFileSync(path.join(path.dirname(weights), '..', '..', 'next.json'), 'utf8')).version;
    fs.writeFileSync(weights, `weights ${v}`);
    if (optimizer) fs.writeFileSync(optimizer, `optimizer ${v}`);
  },
} as unknown as Model;

function meta(epoch: number): CheckpointMeta {
  return { format: 'radkit-checkpoint', version: 1, kind: 'x', config: {}, tokenizer: {} as CheckpointMeta['tokenizer'], preprocessing: { imageSize: 8, views: 1 }, epoch, step: 0, best: null, metrics: {}, trainOptions: {}, savedAt: '' };
}

async function write(dir: string, version: number) {
  fs.writeFileSync(path.join(path.dirname(dir), '..', 'next.json'), JSON.stringify({ version }));
  await writeCheckpoint(dir, model, meta(version), true);
}

/** The checkpoint readers see, checked whole: its weights and optimizer belong to its metadata's version. */
function readable(dir: string): number | null {
  const m = readCheckpointMeta(dir);
  if (!m) return null;
  const at = fs.existsSync(path.join(dir, 'checkpoint.json')) ? dir : `${dir}.old`;
  expect(fs.readFileSync(path.join(at, 'weights.pt'), 'utf8')).toBe(`weights ${m.epoch}`);
  expect(fs.readFileSync(path.join(at, 'optimizer.pt'), 'utf8')).toBe(`optimizer ${m.epoch}`);
  return m.epoch;
}

describe('checkpoint replacement under kill -9 (item 13)', () => {
  // Starting states: no checkpoint yet; a whole one; only `.old` (an earlier crash between the renames).
  const starts: Record<string, (dir: string) => Promise<number | null>> = {
    'first write': async () => null,
    'replacing a whole checkpoint': async (dir) => {
      await write(dir, 1);
      return 1;
    },
    'after a crash that left only .old': async (dir) => {
      await write(dir, 1);
      fs.renameSync(dir, `${dir}.old`);
      return 1;
    },
  };
  for (const [name, setup] of Object.entries(starts)) {
    it(`${name}: killed at every file operation, a whole checkpoint remains and the next write cleans up`, async () => {
      let finished = false;
      const outcomes: string[] = [];
      for (let k = 1; !finished && k < 60; k++) {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-ckcrash-'));
        const dir = path.join(root, 'checkpoints', 'last');
        fs.mkdirSync(path.dirname(dir), { recursive: true });
        const before = await setup(dir);
        const r = spawnSync(process.execPath, [script, dir, '2', String(k)], { encoding: 'utf8' });
        finished = r.status === 0;
        if (!finished) expect(r.signal, r.stderr).toBe('SIGKILL');
        const now = readable(dir);
        // The old checkpoint, or the new one; never none once there was one.
        expect(now === before || now === 2, `kill at operation ${k}: found ${now}`).toBe(true);
        outcomes.push(`${k}:${now}`);
        await write(dir, 3);
        expect(readable(dir)).toBe(3);
        expect(fs.readdirSync(path.dirname(dir))).toEqual(['last']);
        fs.rmSync(root, { recursive: true, force: true });
      }
      expect(finished, outcomes.join(' ')).toBe(true);
      console.log(`checkpoint crash (${name}): killed at ${outcomes.length - 1} points, then ran through; kill:found ${outcomes.join(' ')}`);
      expect(outcomes.length).toBeGreaterThanOrEqual(7);
    }, 120_000);
  }
});
