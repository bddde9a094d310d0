// Data-parallel training on c10d (Gloo over loopback), in child processes that run dist/ (npm run
// build:ts first): 2 ranks with global batch 16 end with the parameters of 1 process with batch 16
// (float64, contrastive and batch-norm terms on) for XProNet and AdaMatch; the epoch shards; the
// rendezvous errors (no master, world sizes that differ, a rank given twice, configurations that
// differ) reach every rank within seconds; a killed rank stops the run and a rerun resumes;
// evaluation gathered over ranks scores as one process does.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { distributedFromEnv, evaluationBlock, shardBatches } from '../../lib/train/distributed.js';
import { workerArgv } from '../../lib/cli/launch.js';

const here = __dirname;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-dist-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const port = () => 20000 + Math.floor(Math.random() * 30000);

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, OMP_NUM_THREADS: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - t0) / 1000 }));
  });
}

describe('epoch shards (no addon)', () => {
  it('every item of an epoch is in exactly one rank, in global-batch slices; the last batch is padded from the start', () => {
    const order = Array.from({ length: 37 }, (_, i) => (i * 11) % 37);  // a shuffled epoch
    for (const world of [1, 2, 3, 4]) {
      const batch = 4 * world;
      const shards = Array.from({ length: world }, (_, r) => shardBatches(order, batch, r, world));
      const steps = Math.ceil(order.length / batch);
      shards.forEach((s) => expect(s.length).toBe(steps));  // every rank steps alike
      const seen = new Map<number, number>();
      for (const s of shards) for (const g of s) for (const i of g) seen.set(i, (seen.get(i) ?? 0) + 1);
      expect([...seen.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 37 }, (_, i) => i));
      const twice = [...seen.values()].filter((n) => n === 2).length;
      expect(twice).toBe((world - (37 % batch) % world) % world);  // padding: fewer than world items seen twice
      // Step k of the ranks, concatenated in rank order, is the global batch k (what one process reads).
      for (let k = 0; k < steps - 1; k++) expect(shards.flatMap((s) => s[k])).toEqual(order.slice(k * batch, (k + 1) * batch));
    }
    expect(() => shardBatches(order, 6, 0, 4)).toThrow(/multiple of the 4 ranks/);
  });

  it('evaluation blocks tile the split in order', () => {
    for (const [n, w] of [[10, 3], [2, 4], [16, 2]]) {
      const blocks = Array.from({ length: w }, (_, r) => evaluationBlock(n, r, w));
      expect(blocks.flatMap((b) => Array.from({ length: b.end - b.start }, (_, i) => b.start + i))).toEqual(Array.from({ length: n }, (_, i) => i));
    }
  });

  it("reads torchrun's environment and names a bad variable", () => {
    expect(distributedFromEnv({})).toBeNull();
    expect(distributedFromEnv({ WORLD_SIZE: '4', RANK: '3', LOCAL_RANK: '1', MASTER_ADDR: 'node0', MASTER_PORT: '29501' })).toEqual({
      worldSize: 4, rank: 3, localRank: 1, masterAddr: 'node0', masterPort: 29501, backend: 'gloo',
    });
    expect(() => distributedFromEnv({ WORLD_SIZE: '2', RANK: '2', MASTER_ADDR: 'h', MASTER_PORT: '1' })).toThrow(/RANK must be a whole number in \[0, 1\]/);
    expect(() => distributedFromEnv({ WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '1' })).toThrow(/MASTER_ADDR/);
    expect(() => distributedFromEnv({ WORLD_SIZE: '2', RANK: '0', MASTER_ADDR: 'h' })).toThrow(/MASTER_PORT/);
    expect(workerArgv(['--model', 'xpronet', '--nproc-per-node', '2', '--master-port=1234', '--backend', 'gloo', '--out', 'r'])).toEqual(['--model', 'xpronet', '--out', 'r']);
  });
});

// The native parts need dist/ (the worker scripts require it) and a binary with Gloo.
const built = fs.existsSync(path.join(here, '../../dist/lib/train/distributed.js'));

describe.runIf(built)('two ranks against one process (float64, Gloo over loopback)', () => {
  for (const kind of ['xpronet', 'adamatch']) {
    it(`${kind}: 2 ranks x 8 rows give the parameters of 1 process x 16 rows after 5 steps (within 1e-10)`, async () => {
      const p = port();
      const outs = [0, 1, 2].map((i) => path.join(tmp, `${kind}-${i}.json`));
      const script = path.join(here, 'distributed-worker.cjs');
      const [one, r0, r1] = await Promise.all([
        run([script, kind, '1', '0', '0', outs[0]]),
        run([script, kind, '2', '0', String(p), outs[1]]),
        run([script, kind, '2', '1', String(p), outs[2]]),
      ]);
      for (const e of [one, r0, r1]) expect(e.code, e.stderr).toBe(0);
      const [a, b, c] = outs.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as { losses: number[]; weights: Record<string, number[]> });
      let worst = 0;
      let moved = 0;
      for (const [name, w] of Object.entries(a.weights)) {
        expect(b.weights[name], name).toHaveLength(w.length);
        for (let i = 0; i < w.length; i++) {
          worst = Math.max(worst, Math.abs(w[i] - b.weights[name][i]), Math.abs(b.weights[name][i] - c.weights[name][i]));
        }
        if (name.endsWith('running_mean') || name.endsWith('running_var')) moved += w.some((x, i) => x !== (name.endsWith('running_var') ? 1 : 0)) ? 1 : 0;
      }
      expect(worst).toBeLessThan(1e-10);
      expect(moved).toBeGreaterThan(0);  // batch norms trained (their statistics follow the global batch)
      // The reported loss is the global batch's, on every rank.
      a.losses.forEach((l, i) => {
        expect(Math.abs(l - b.losses[i])).toBeLessThan(1e-9);
        expect(Math.abs(l - c.losses[i])).toBeLessThan(1e-9);
      });
      expect(a.losses[4]).toBeLessThan(a.losses[0]);
    });
  }
});

describe.runIf(built)('rendezvous errors reach every rank within seconds', () => {
  const scenario = path.join(here, 'distributed-scenarios.cjs');
  const parse = (e: Exit) => JSON.parse(e.stderr.trim().split('\n').pop()!) as { code: string; message: string; seconds: number };

  it('no master: a rank without rank 0 fails naming the address', async () => {
    const e = await run([scenario, 'join', '1', '2', String(port())], { INIT_TIMEOUT: '3' });
    expect(e.code).toBe(1);
    const f = parse(e);
    expect(f.code).toBe('ERR_DISTRIBUTED');
    expect(f.message).toMatch(/rank 1 of 2: no master at 127\.0\.0\.1:\d+ within 3 s/);
    expect(f.seconds).toBeLessThan(60);
  });

  it('world sizes that differ: both ranks fail and say so', async () => {
    const p = String(port());
    const [a, b] = await Promise.all([run([scenario, 'join', '0', '2', p], { INIT_TIMEOUT: '4' }), run([scenario, 'join', '1', '3', p], { INIT_TIMEOUT: '4' })]);
    expect(a.code).toBe(1);
    expect(b.code).toBe(1);
    expect(parse(a).message).toMatch(/rank 1 was started with world size 3 but this rank with 2|did not join/);
    expect(parse(b).message).toMatch(/world size|did not join|lost the rendezvous store/);
    expect(Math.max(parse(a).seconds, parse(b).seconds)).toBeLessThan(60);
  });

  it('the same rank twice is refused', async () => {
    const p = String(port());
    // Rank 0 keeps the store up a while, so the later of the two rank-1 workers finds the claim taken.
    const slow = { INIT_TIMEOUT: '40', HOLD: '8' };
    const [a, b, c] = await Promise.all([run([scenario, 'join', '0', '2', p], slow), run([scenario, 'join', '1', '2', p], slow), run([scenario, 'join', '1', '2', p], slow)]);
    const messages = [a, b, c].filter((e) => e.code !== 0).map((e) => parse(e).message);
    expect(messages.some((m) => /another process already joined as rank 1/.test(m))).toBe(true);
  });

  it('configurations that differ: every rank fails naming the ranks', async () => {
    const p = String(port());
    const [a, b] = await Promise.all([run([scenario, 'agree', '0', '2', p, '{"dModel":64}']), run([scenario, 'agree', '1', '2', p, '{"dModel":32}'])]);
    for (const e of [a, b]) {
      expect(e.code).toBe(1);
      expect(parse(e).message).toMatch(/the ranks disagree on the model configuration: rank\(s\) 1 differ from rank 0/);
    }
  });
});

describe.runIf(built)('radkit train --nproc-per-node 2', () => {
  const cli = path.join(here, '../../dist/lib/cli/main.js');
  const data = path.join(tmp, 'synth');
  const tiny = ['--model', 'xpronet', '--data', data, '--image-size', '32', '--batch-size', '8', '--threshold', '1', '--progress', 'json'];

  it('trains, a killed rank stops the run with an error naming it, a rerun resumes; gathered evaluation scores as one process', async () => {
    const synth = spawnSync(process.execPath, [cli, 'synth', '--out', data, '--train', '48', '--val', '10', '--test', '2', '--size', '32'], { encoding: 'utf8' });
    expect(synth.status, synth.stderr).toBe(0);
    const out = path.join(tmp, 'run');
    const p = String(port());
    const args = [cli, 'train', ...tiny, '--out', out, '--epochs', '4', '--nproc-per-node', '2', '--master-port', p, '--no-eval'];
    // Kill rank 1 once the first epoch is checkpointed: the launcher stops rank 0 and fails.
    const child = spawn(process.execPath, args, { env: { ...process.env, OMP_NUM_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const log = path.join(out, 'train-log.jsonl');
    const code = await new Promise<number | null>((resolve) => {
      const poll = setInterval(() => {
        if (fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('"type":"checkpoint"')) {
          clearInterval(poll);
          // Rank 1 is the launcher's second child: find it by its environment.
          const pids = spawnSync('sh', ['-c', `for p in $(pgrep -P ${child.pid}); do tr '\\0' '\\n' < /proc/$p/environ | grep -qx RANK=1 && echo $p; done`], { encoding: 'utf8' }).stdout.trim();
          if (pids) process.kill(Number(pids.split('\n')[0]), 'SIGKILL');
        }
      }, 200);
      child.on('exit', (c) => {
        clearInterval(poll);
        resolve(c);
      });
    });
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/rank 1 was killed \(SIGKILL\); the other workers were stopped/);
    const done = JSON.parse(fs.readFileSync(path.join(out, 'checkpoints', 'last', 'checkpoint.json'), 'utf8')).epoch as number;
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(4);
    // The same command again resumes after the last checkpoint and finishes.
    const again = await run(args);
    expect(again.code, again.stderr).toBe(0);
    const events = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const starts = events.filter((e) => e.type === 'start');
    expect(starts[starts.length - 1].startEpoch).toBe(done);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'checkpoints', 'last', 'checkpoint.json'), 'utf8')).epoch).toBe(4);
    expect(events.some((e) => e.type === 'distributed' && e.worldSize === 2 && /global batch/.test(e.terms))).toBe(true);

    // Evaluation of the trained checkpoint: 2 ranks gathered vs 1 process.
    const scenario = path.join(here, 'distributed-scenarios.cjs');
    const q = String(port());
    const [single, e0, e1] = await Promise.all([
      run([scenario, 'evaluate', '0', '1', String(port()), `${out},${data}`]),
      run([scenario, 'evaluate', '0', '2', q, `${out},${data}`]),
      run([scenario, 'evaluate', '1', '2', q, `${out},${data}`]),
    ]);
    for (const e of [single, e0, e1]) expect(e.code, e.stderr).toBe(0);
    const [s, g0, g1] = [single, e0, e1].map((e) => JSON.parse(e.stdout.trim().split('\n')[0]) as { headline: Record<string, number>; ids: string[] });
    expect(g0.ids).toEqual(s.ids);
    expect(g0.headline).toEqual(s.headline);
    expect(g1.headline).toEqual(s.headline);
  });
});
