// maxSimilarity's vectorised float32 scan (AVX-512, used when no token is masked) against the scalar
// scan it replaces (RADKIT_MAXSIM_SCAN=scalar), in two fresh processes: identical scores, arg-maxima
// (ties included: repeated words and patches) and gradients, bit for bit. Also sizes with a partial
// last 16-column block (K = 50) and several texts per GEMM tile.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const index = path.resolve(__dirname, '../../dist/lib/index.js');
const script = `
const r = require(${JSON.stringify(index)});
const { Tensor, ops } = r;
const native = require(${JSON.stringify(path.resolve(__dirname, '../../dist/lib/native.js'))}).loadNative();
let s = 7;
const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
const out = {};
for (const [Bi, N, Bt, K, D] of [[3, 40, 4, 50, 64], [2, 256, 3, 100, 33]]) {
  const img = Float32Array.from({ length: Bi * N * D }, rand), txt = Float32Array.from({ length: Bt * K * D }, rand);
  txt.copyWithin(3 * D, 1 * D, 2 * D);  // text 0: word 3 repeats word 1 (row ties)
  img.copyWithin(5 * D, 2 * D, 3 * D);  // image 0: patch 5 repeats patch 2 (column ties)
  const a = Tensor.from(img, [Bi, N, D], { requiresGrad: true }), b = Tensor.from(txt, [Bt, K, D], { requiresGrad: true });
  const o = ops.maxSimilarity(a, b, { returnArgmax: true });
  const ones = Tensor.ones([Bi, Bt]);
  native.testing.backwardMany([Tensor.handle(o.imageToText), Tensor.handle(o.textToImage)], [Tensor.handle(ones), Tensor.handle(ones)]);
  const arr = (t) => Array.from(t.toArray(), Number);
  out[[Bi, N, Bt, K, D].join('x')] = { i2t: arr(o.imageToText), t2i: arr(o.textToImage), a1: arr(o.imageToTextArgmax), a2: arr(o.textToImageArgmax), gi: arr(a.grad), gt: arr(b.grad) };
}
console.log(JSON.stringify(out));`;

function run(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, Record<string, number[]>>;
}

describe('maxSimilarity float32 scan', () => {
  it('the vectorised scan gives bit-identical scores, arg-maxima and gradients to the scalar scan', () => {
    const fast = run({}), scalar = run({ RADKIT_MAXSIM_SCAN: 'scalar' });
    expect(Object.keys(fast)).toHaveLength(2);
    for (const k of Object.keys(scalar)) {
      for (const f of ['i2t', 't2i', 'a1', 'a2', 'gi', 'gt']) expect(fast[k][f], `${k} ${f}`).toEqual(scalar[k][f]);
      const [Bi, N, Bt, K] = k.split('x').map(Number);
      for (let i = 0; i < Bi; i++) {
        const text0 = fast[k].a1.slice(i * Bt * N, i * Bt * N + N);  // the word each patch of image i picks in text 0
        expect(text0.includes(3)).toBe(false);  // word 3 ties with word 1: the lower index wins
      }
      const image0 = fast[k].a2.slice(0, K);  // the patch each word of text 0 picks in image 0
      expect(image0.includes(5)).toBe(false);  // patch 5 ties with patch 2
    }
  }, 60_000);
});
