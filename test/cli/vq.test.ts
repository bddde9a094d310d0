// The VQ image tokenizer through the CLI: radkit train --model vqgan (evaluation: PSNR, SSIM,
// codebook use against the mean-image baseline), radkit tokenize-images (every study's codes; a
// rerun encodes nothing new; a file of another checkpoint is refused) and radkit decode (codes to
// PNG, from a codes file or a --tokens list); radkit import-vq (a user's taming weights as a run,
// unchanged: its codes are the source model's).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../lib/cli/main.js';
import { loadSharp } from '../../lib/data/image.js';
import { readImageCodes } from '../../lib/models/image-codes.js';
import * as radkit from '../../lib/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-cli-vq-'));
const data = path.join(dir, 'synth');
const run = path.join(dir, 'vq');
let out: string[] = [];
let err: string[] = [];
function capture() {
  out = [];
  err = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
}
afterEach(() => vi.restoreAllMocks());

beforeAll(async () => {
  capture();
  expect(await main(['synth', '--out', data, '--train', '8', '--val', '2', '--test', '2', '--size', '48', '--views', '1'])).toBe(0);
  expect(await main(['train', '--model', 'vqgan', '--data', data, '--out', run, '--epochs', '1', '--image-size', '32', '--batch-size', '4', '--progress', 'none'])).toBe(0);
  vi.restoreAllMocks();
}, 120_000);

describe('radkit tokenize-images / decode', () => {
  it('training a vqgan evaluates reconstructions (PSNR, SSIM, codebook use, mean-image baseline)', () => {
    const m = JSON.parse(fs.readFileSync(path.join(run, 'checkpoints', 'best', 'checkpoint.json'), 'utf8')) as { kind: string; metrics?: Record<string, number> };
    expect(m.kind).toBe('vqgan');
    const text = fs.readFileSync(path.join(run, 'train-log.jsonl'), 'utf8');
    for (const k of ['psnr', 'ssim', 'meanImagePsnr', 'perplexity', 'codesUsed']) expect(text).toContain(`"${k}"`);
  });

  it('caches every study once, reruns keep them, and the codes decode to PNGs', async () => {
    capture();
    const file = path.join(dir, 'codes.json');
    expect(await main(['tokenize-images', '--checkpoint', run, '--data', data, '--out', file])).toBe(0);
    expect(out.join('\n')).toMatch(/12 studies encoded, 0 kept from before/);
    const codes = readImageCodes(file);
    expect(codes.grid).toEqual([2, 2]); // 32 px, f16
    expect(Object.keys(codes.codes)).toHaveLength(12);
    capture();
    expect(await main(['tokenize-images', '--checkpoint', run, '--data', data, '--out', file])).toBe(0);
    expect(out.join('\n')).toMatch(/0 studies encoded, 12 kept from before/);

    const ids = Object.keys(codes.codes).slice(0, 2);
    const pngs = path.join(dir, 'decoded');
    capture();
    expect(await main(['decode', '--checkpoint', run, '--codes', file, '--ids', ids.join(','), '--out', pngs])).toBe(0);
    for (const id of ids) {
      const meta = await loadSharp()(path.join(pngs, `${id}.png`)).metadata();
      expect([meta.width, meta.height, meta.channels]).toEqual([32, 32, 1]);
    }
    const one = path.join(dir, 'one.png');
    expect(await main(['decode', '--checkpoint', run, '--tokens', '0,1,2,3', '--out', one])).toBe(0);
    expect(fs.existsSync(one)).toBe(true);

    // Codes of another tokenizer are refused, not mixed in.
    const other = { ...codes, tokenizer: { ...codes.tokenizer, weightsSha256: 'f'.repeat(64) } };
    fs.writeFileSync(file, JSON.stringify(other));
    capture();
    expect(await main(['tokenize-images', '--checkpoint', run, '--data', data, '--out', file])).toBe(1);
    expect(err.join('\n')).toMatch(/holds codes of another tokenizer/);
    // Bad command lines: exit 2.
    expect(await main(['decode', '--checkpoint', run, '--out', one])).toBe(2);
    expect(await main(['decode', '--checkpoint', run, '--tokens', '1,2,3', '--out', one])).toBe(2);
    expect(await main(['decode', '--checkpoint', run, '--codes', file, '--ids', 'nope', '--out', pngs])).toBe(2);
  }, 60_000);
  it("import-vq: taming weights become a run whose codes are the source model's; misfits are refused", async () => {
    // A taming-layout file: the trained run's weights without radkit's own EMA statistics.
    const ck = await radkit.loadCheckpoint(run);
    const taming = path.join(dir, 'taming.safetensors');
    const all = ck.model.namedTensors();
    try {
      radkit.writeSafetensors(taming, Object.fromEntries(Object.entries(all).filter(([n]) => !['quantize.cluster_size', 'quantize.embed_avg'].includes(n))));
    } finally {
      Object.values(all).forEach((t) => t.dispose());
      ck.model.dispose();
    }
    const imported = path.join(dir, 'vq-imported');
    capture();
    expect(await main(['import-vq', '--vq', taming, '--out', imported, '--preset', 'small', '--image-size', '32']), err.join('\n')).toBe(0);
    expect(out.join('\n')).toMatch(/256 codes, 32 px/);
    const a = path.join(dir, 'codes-a.json'), b = path.join(dir, 'codes-b.json');
    expect(await main(['tokenize-images', '--checkpoint', run, '--data', data, '--out', a])).toBe(0);
    expect(await main(['tokenize-images', '--checkpoint', imported, '--data', data, '--out', b]), err.join('\n')).toBe(0);
    expect(readImageCodes(b).codes).toEqual(readImageCodes(a).codes);
    // An occupied --out, a file of another configuration, a file that is not a VQ model: nothing written.
    capture();
    expect(await main(['import-vq', '--vq', taming, '--out', imported, '--preset', 'small'])).toBe(2);
    expect(err.join('\n')).toMatch(/already holds a run/);
    const wrong = path.join(dir, 'vq-wrong');
    capture();
    expect(await main(['import-vq', '--vq', taming, '--out', wrong])).toBe(1);
    expect(err.join('\n')).toMatch(/taming\.safetensors is not a VQ model of this configuration/);
    const notVq = path.join(dir, 'not-vq.safetensors');
    const w = radkit.Tensor.zeros([2, 2]);
    radkit.writeSafetensors(notVq, { w });
    w.dispose();
    capture();
    expect(await main(['import-vq', '--vq', notVq, '--out', wrong])).toBe(1);
    expect(err.join('\n')).toMatch(/has no quantize\.embedding\.weight/);
    expect(fs.existsSync(wrong)).toBe(false);
  }, 60_000);
});
