import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Tensor, TensorBatch } from '../../lib/index.js';
import { ircp } from '../../lib/models/ircp.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-st-'));
const tokenizer = radkit.text.Tokenizer.build(['the heart is normal.', 'no pleural effusion.'], { threshold: 1 });
const TINY = { tokenizer, dModel: 32, heads: 4, dFF: 64, encoderLayers: 1, decoderLayers: 1, resnetWidths: [8, 8, 8, 8, 8], resnetBlocks: [1, 1, 1, 1], prototypesPerClass: 2, topK: 2, seed: 3 };

function imagesBatch(): TensorBatch {
  const data = new Float32Array(2 * 2 * 64 * 64).map((_, i) => (Math.sin(i * 0.37) + 1) / 2);
  return new TensorBatch({ images: { data, shape: [2, 2, 1, 64, 64] } });
}

async function scores(model: radkit.Model): Promise<number[]> {
  const b = imagesBatch();
  const g = await model.generate(b, { method: 'greedy', maxLength: 5, systemOptions: { labelSource: 'none' } });
  b.dispose();
  return g.scores;
}

describe('safetensors and user-supplied visual weights', () => {
  it('round-trips tensors of every supported dtype', () => {
    const file = path.join(tmp, 'rt.safetensors');
    const ts = {
      a: Tensor.from(new Float32Array([1, 2.5, -3, 4]), [2, 2]),
      b: Tensor.from(new Float64Array([1e-300, 7]), [2]),
      c: Tensor.from(new BigInt64Array([5n, -6n, 7n]), [3]),
      d: Tensor.from(new Int32Array([9]), [1]),
      e: Tensor.from(new Uint8Array([0, 1]), [2], { dtype: 'bool' }),
    };
    radkit.writeSafetensors(file, ts, { source: 'test' });
    const back = radkit.readSafetensors(file);
    expect(back.metadata).toEqual({ source: 'test' });
    for (const [k, t] of Object.entries(ts)) {
      expect(back.tensors[k].dtype).toBe(t.dtype);
      expect(back.tensors[k].shape).toEqual(t.shape);
      expect(Array.from(back.tensors[k].toArray() as ArrayLike<number>)).toEqual(Array.from(t.toArray() as ArrayLike<number>));
    }
    Object.values(ts).concat(Object.values(back.tensors)).forEach((t) => t.dispose());
  });

  it('rejects a corrupt file with a clear error', () => {
    const file = path.join(tmp, 'bad.safetensors');
    fs.writeFileSync(file, Buffer.from([255, 255, 255, 255, 0, 0, 0, 0, 1, 2]));
    expect(() => radkit.readSafetensors(file)).toThrow(/header length .* exceeds the file/);
    expect(() => radkit.readSafetensors(path.join(tmp, 'none.safetensors'))).toThrow(/cannot read/);
  });

  it('loads ImageNet-style (3-channel) ResNet weights into the grey visual extractor by name', async () => {
    const file = path.join(tmp, 'resnet.safetensors');
    const conv1 = Tensor.from(new Float32Array(8 * 3 * 7 * 7).map((_, i) => ((i * 7919) % 101) / 500 - 0.1), [8, 3, 7, 7]);
    const bias = Tensor.from(new Float32Array(8).fill(0.3), [8]);
    const fc = Tensor.from(new Float32Array(10), [10, 1]);
    radkit.writeSafetensors(file, { 'conv1.weight': conv1, 'bn1.bias': bias, 'fc.weight': fc });
    const fresh = radkit.xpronet(TINY);
    const loaded = radkit.xpronet({ ...TINY, visualWeights: file });
    const report = loaded.loadPretrained(file, 'visual.');
    expect(report.loaded).toBe(2);
    expect(report.unexpected).toEqual(['fc.weight']);
    expect(report.missing).toContain('layer1.0.conv1.weight');
    expect(await scores(loaded)).not.toEqual(await scores(fresh));
    // A shape that does not fit is refused and nothing is written.
    const wrong = path.join(tmp, 'wrong.safetensors');
    const w = Tensor.from(new Float32Array(16), [16]);
    radkit.writeSafetensors(wrong, { 'bn1.bias': bias, 'bn1.weight': w });
    const before = await scores(fresh);
    expect(() => fresh.loadPretrained(wrong, 'visual.')).toThrow(/bn1.weight' has shape \[16\] but visual.bn1.weight is \[8\]/);
    expect(await scores(fresh)).toEqual(before);
    for (const t of [conv1, bias, fc, w]) t.dispose();
    fresh.dispose();
    loaded.dispose();
  });
  it("ircp (OTDRG stage 1) starts its encoder from ResNet weights, conv1 summed to grey; a file without ResNet names is refused", () => {
    const file = path.join(tmp, 'resnet-tiny.safetensors');
    const values = Float32Array.from({ length: 4 * 3 * 7 * 7 }, (_, i) => ((i * 7919) % 97) / 400 - 0.1);
    const conv1 = Tensor.from(values, [4, 3, 7, 7]);
    radkit.writeSafetensors(file, { 'conv1.weight': conv1 });
    const m = ircp({ preset: 'tiny', visualWeights: file });
    const w = m.namedTensors();
    try {
      expect(w['encoder.conv1.weight'].shape).toEqual([4, 1, 7, 7]);
      const got = w['encoder.conv1.weight'].toArray() as Float32Array;
      for (let o = 0; o < 4; o++)
        for (let k = 0; k < 49; k++) {
          const sum = [0, 1, 2].reduce((acc, c) => acc + values[(o * 3 + c) * 49 + k], 0); // float64
          expect(Math.abs(got[o * 49 + k] - sum)).toBeLessThan(1e-6);
        }
    } finally {
      Object.values(w).forEach((t) => t.dispose());
      m.dispose();
    }
    const none = path.join(tmp, 'not-resnet.safetensors');
    radkit.writeSafetensors(none, { 'head.weight': conv1 });
    expect(() => ircp({ preset: 'tiny', visualWeights: none })).toThrow(/ircp: .*not-resnet\.safetensors has no tensor named like the ResNet's/);
    conv1.dispose();
  });
});
