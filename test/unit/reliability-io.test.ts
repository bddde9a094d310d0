// Issue 17 reproductions that need no model: data never overwritten (synth), outputs never inside
// folders training rewrites, damaged checkpoint metadata named, resume settings compared, and the
// metrics input policy.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { synthesize } from '../../lib/data/synth/index.js';
import { synthCommand } from '../../lib/cli/commands/synth.js';
import { loadPairs, metricsCommand } from '../../lib/cli/commands/metrics.js';
import { runCommand } from '../../lib/cli/command.js';
import { evaluate } from '../../lib/metrics/evaluate.js';
import { checkOutputOutsideCheckpoints, defaultOutputDir, readCheckpointMeta } from '../../lib/train/checkpoint.js';
import { settingsDifferences } from '../../lib/train/trainer.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-rel-'));

/** A folder that looks like a checkpoint (what the readers look for), with this metadata. */
function fakeCheckpoint(dir: string, meta: unknown = { format: 'radkit-checkpoint', version: 1, kind: 'xpronet', config: {}, tokenizer: {}, preprocessing: { imageSize: 64, views: 1 }, epoch: 1, best: null }) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'weights.pt'), 'w');
  fs.writeFileSync(path.join(dir, 'checkpoint.json'), typeof meta === 'string' ? meta : JSON.stringify(meta));
}

describe('synth never overwrites data without --force (item 3)', () => {
  it('refuses a folder holding annotation.json / labels.json and writes nothing; --force replaces', async () => {
    const dir = tmp();
    const mine = { train: [{ id: 'mine', report: 'my own report.', image_path: ['x.png'] }] };
    fs.writeFileSync(path.join(dir, 'annotation.json'), JSON.stringify(mine));
    fs.writeFileSync(path.join(dir, 'labels.json'), '{"mine": {}}');
    await expect(runCommand(synthCommand, ['--out', dir, '--train', '2', '--val', '0', '--test', '0', '--size', '32', '--workers', '1'])).rejects.toMatchObject({
      code: 'ERR_EXISTS',
      message: expect.stringMatching(/already holds annotation\.json, labels\.json; nothing was written.*--force/),
    });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'annotation.json'), 'utf8'))).toEqual(mine);
    expect(fs.readFileSync(path.join(dir, 'labels.json'), 'utf8')).toBe('{"mine": {}}');
    expect(fs.existsSync(path.join(dir, 'images'))).toBe(false);
    // A second synthesis into its own earlier output is refused too (images/ alone counts).
    const other = tmp();
    await synthesize({ out: other, train: 2, val: 0, test: 0, size: 32, workers: 1 });
    fs.rmSync(path.join(other, 'annotation.json'));
    await expect(synthesize({ out: other, train: 2, val: 0, test: 0, size: 32, workers: 1 })).rejects.toThrow(/already holds .*labels\.json.*images/);
    expect(await runCommand(synthCommand, ['--out', dir, '--train', '2', '--val', '0', '--test', '0', '--size', '32', '--workers', '1', '--force'])).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'annotation.json'), 'utf8')).train).toHaveLength(2);
  });
});

describe('outputs never go inside folders radkit rewrites (item 2)', () => {
  it('defaults beside the checkpoints and refuses explicit paths inside them', () => {
    const run = tmp();
    fakeCheckpoint(path.join(run, 'checkpoints', 'last'));
    fakeCheckpoint(path.join(run, 'checkpoints', 'best'));
    expect(defaultOutputDir(run, 'eval-test')).toBe(path.join(run, 'eval-test'));
    expect(defaultOutputDir(path.join(run, 'checkpoints', 'best'), 'eval-test')).toBe(path.join(run, 'eval-test'));
    // The reproduction: --checkpoint RUN/checkpoints/last used to write RUN/checkpoints/last/eval-test.
    expect(defaultOutputDir(path.join(run, 'checkpoints', 'last'), 'eval-test')).toBe(path.join(run, 'eval-test-last'));
    const lone = path.join(tmp(), 'ck');
    fakeCheckpoint(lone);
    expect(defaultOutputDir(lone, 'codebooks')).toBe(`${lone}-codebooks`);
    for (const inside of [path.join(run, 'checkpoints', 'last', 'eval-test'), path.join(run, 'checkpoints', 'best', 'a', 'b'), path.join(run, 'checkpoints', 'eval'), lone])
      expect(() => checkOutputOutsideCheckpoints(inside, 'radkit evaluate'), inside).toThrow(/a folder that training rewrites/);
    for (const outside of [path.join(run, 'eval-test'), run, path.join(run, 'eval-test-last')]) expect(() => checkOutputOutsideCheckpoints(outside, 'x')).not.toThrow();
  });
});

describe('damaged checkpoint metadata is named (item 14)', () => {
  it('invalid JSON or missing fields: ERR_CHECKPOINT naming checkpoint.json and what to do', () => {
    const dir = path.join(tmp(), 'last');
    fakeCheckpoint(dir, '{"format": "radkit-checkpoint", "kind": ');
    expect(() => readCheckpointMeta(dir)).toThrow(expect.objectContaining({ code: 'ERR_CHECKPOINT', message: expect.stringMatching(/last\/checkpoint\.json: not valid JSON .*--no-resume/) }));
    fakeCheckpoint(dir, { format: 'radkit-checkpoint', kind: 'xpronet', config: {}, tokenizer: {}, preprocessing: { imageSize: 0, views: 1 }, epoch: 1 });
    expect(() => readCheckpointMeta(dir)).toThrow(/checkpoint\.json: "preprocessing" must hold a positive integer imageSize/);
    fakeCheckpoint(dir, [1, 2]);
    expect(() => readCheckpointMeta(dir)).toThrow(/not a radkit checkpoint/);
  });
});

describe('resume compares the recorded settings (item 5)', () => {
  it('lists every difference; epochs may grow unless the schedule depends on the total', () => {
    const rec = { batchSize: 8, lr: 1e-3, schedule: { kind: 'step', gamma: 0.8 }, epochs: 3, preprocessing: { imageSize: 64, views: 2 }, evaluate: { split: 'val', metric: 'bleu4', every: 1 }, freeze: [] };
    expect(settingsDifferences(rec, { ...rec, epochs: 5 })).toEqual([]);
    expect(settingsDifferences(rec, { ...rec, lr: 2e-3, preprocessing: { imageSize: 96, views: 2 } })).toEqual(['lr: 0.001 -> 0.002', 'preprocessing.imageSize: 64 -> 96']);
    const cos = { ...rec, schedule: { kind: 'cosine', warmupFraction: 0.25 } };
    expect(settingsDifferences(cos, { ...cos, epochs: 5 })).toEqual(['epochs: 3 -> 5']);
    expect(settingsDifferences(rec, { ...rec, evaluate: { ...rec.evaluate, metric: 'ciderD' }, labels: 'labeler' })).toEqual(['evaluate.metric: "bleu4" -> "ciderD"']);
  });
});

describe('metrics input policy (item 11)', () => {
  it('an all-empty hypothesis set scores clinical F1 0 (not 1), and empty hypotheses are reported', () => {
    const refs = [['the heart is normal . the lungs are clear .'], ['no acute cardiopulmonary abnormality .']];
    const r = evaluate(['', '  '], refs, { metrics: ['bleu', 'clinical'] });
    expect(r.clinical!.micro.f1).toBe(0);
    expect(r.clinical!.exampleBased.f1).toBe(0);
    expect(r.inputs).toMatchObject({ emptyHypotheses: 2, emptyHypothesisItems: [0, 1] });
    expect(r.inputs.notes[0]).toMatch(/2 of 2 hypotheses are empty .*scored as saying nothing/);
    const ok = evaluate(['the heart is normal .'], [refs[0]], { metrics: ['bleu'] });
    expect(ok.inputs).toMatchObject({ emptyHypotheses: 0, replacementCharacters: 0, notes: [] });
    expect(evaluate(['a \ufffd b'], [['a b']], { metrics: ['bleu'] }).inputs.replacementCharacterItems).toEqual([0]);
    expect(() => evaluate(['a'], [['', ' ']])).toThrow(/refs\[0\] holds only empty references/);
  });

  it('radkit metrics refuses ids on one side only (unless --partial) and bytes that are not UTF-8', async () => {
    expect(() => loadPairs({ x: 'a' }, { x: 'a', y: 'b', z: 'c' })).toThrow(/--refs has 2 ids without a hypothesis \("y", "z"\).*--partial/);
    expect(loadPairs({ x: 'a' }, { x: 'a', y: 'b' }, { partial: true }).unscoredReferenceIds).toEqual(['y']);
    const dir = tmp();
    const h = path.join(dir, 'h.json');
    const r = path.join(dir, 'r.json');
    fs.writeFileSync(h, Buffer.concat([Buffer.from('["caf'), Buffer.from([0xe9]), Buffer.from(' ."]')]));
    fs.writeFileSync(r, '["cafe ."]');
    await expect(runCommand(metricsCommand, ['--hyps', h, '--refs', r])).rejects.toMatchObject({ code: 'ERR_DATA', message: expect.stringMatching(/cannot read --hyps .*h\.json: not valid UTF-8 text \(first bad byte at offset 5\)/) });
    fs.writeFileSync(h, JSON.stringify({ x: '' }));
    fs.writeFileSync(r, JSON.stringify({ x: 'the heart is normal .', y: 'no effusion .' }));
    const out = path.join(dir, 'm.md');
    expect(await runCommand(metricsCommand, ['--hyps', h, '--refs', r, '--partial', '--metrics', 'bleu', '--format', 'md', '--out', out])).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toMatch(/## Inputs\n\n- 1 of 1 hypotheses are empty[^\n]*\n- --partial: 1 reference ids without a hypothesis were not scored/);
  });
});
