// The ResNet visual extractor (native/nn/resnet.cc), basic and bottleneck blocks, against a float64
// reference written here in plain loops from torchvision's definitions (conv 7x7/2, max-pool 3x3/2,
// BasicBlock; Bottleneck v1.5 with the stride on its 3x3 conv, expansion 4; a 1x1 downsample where
// the stride or the width changes), with batch statistics as in training. Also: the parameter and
// buffer names and shapes are torchvision's, so ImageNet weights load by name; MedRAT's paper preset
// is ResNet-101 (torchvision's resnet101 has 44,549,160 parameters, 2,049,000 of them in its fc).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Tensor } from '../../lib/index.js';
import { medrat } from '../../lib/models/medrat.js';
import { loadNative } from '../../lib/native.js';
import { expectAllClose, f64, randArray, rng } from './helpers.js';

type H = unknown;
interface ResNetTesting {
  forward(x: H, o: { widths: number[]; blocks: number[]; block: 'basic' | 'bottleneck'; seed: number; train?: boolean; weights?: Record<string, H> }): { output: H; outChannels: number; tensors: Record<string, H> };
}
const T = (): ResNetTesting => (loadNative() as unknown as { testing: { resnet: ResNetTesting } }).testing.resnet;

/** A [N, C, H, W] float64 array with its shape. */
interface Map4 {
  d: Float64Array;
  n: number;
  c: number;
  h: number;
  w: number;
}

function conv(x: Map4, wt: Float64Array, out: number, k: number, stride: number, pad: number): Map4 {
  const h = Math.floor((x.h + 2 * pad - k) / stride) + 1, w = Math.floor((x.w + 2 * pad - k) / stride) + 1;
  const d = new Float64Array(x.n * out * h * w);
  for (let n = 0; n < x.n; n++)
    for (let o = 0; o < out; o++)
      for (let i = 0; i < h; i++)
        for (let j = 0; j < w; j++) {
          let s = 0;
          for (let c = 0; c < x.c; c++)
            for (let a = 0; a < k; a++)
              for (let b = 0; b < k; b++) {
                const yi = i * stride - pad + a, xj = j * stride - pad + b;
                if (yi >= 0 && yi < x.h && xj >= 0 && xj < x.w) s += x.d[((n * x.c + c) * x.h + yi) * x.w + xj] * wt[((o * x.c + c) * k + a) * k + b];
              }
          d[((n * out + o) * h + i) * w + j] = s;
        }
  return { d, n: x.n, c: out, h, w };
}

/** Batch norm with the batch's statistics (biased variance, eps 1e-5), then gamma and beta. */
function bn(x: Map4, gamma: Float64Array, beta: Float64Array): Map4 {
  const d = new Float64Array(x.d.length), per = x.n * x.h * x.w;
  for (let c = 0; c < x.c; c++) {
    let m = 0, v = 0;
    for (let n = 0; n < x.n; n++) for (let p = 0; p < x.h * x.w; p++) m += x.d[(n * x.c + c) * x.h * x.w + p];
    m /= per;
    for (let n = 0; n < x.n; n++) for (let p = 0; p < x.h * x.w; p++) v += (x.d[(n * x.c + c) * x.h * x.w + p] - m) ** 2;
    v /= per;
    for (let n = 0; n < x.n; n++)
      for (let p = 0; p < x.h * x.w; p++) {
        const i = (n * x.c + c) * x.h * x.w + p;
        d[i] = ((x.d[i] - m) / Math.sqrt(v + 1e-5)) * gamma[c] + beta[c];
      }
  }
  return { ...x, d };
}

const relu = (x: Map4): Map4 => ({ ...x, d: x.d.map((v) => Math.max(v, 0)) });
const add = (x: Map4, y: Map4): Map4 => ({ ...x, d: x.d.map((v, i) => v + y.d[i]) });

function maxPool(x: Map4): Map4 {
  const h = Math.floor((x.h + 2 - 3) / 2) + 1, w = Math.floor((x.w + 2 - 3) / 2) + 1;
  const d = new Float64Array(x.n * x.c * h * w).fill(-Infinity);
  for (let nc = 0; nc < x.n * x.c; nc++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let a = 0; a < 3; a++)
          for (let b = 0; b < 3; b++) {
            const yi = i * 2 - 1 + a, xj = j * 2 - 1 + b;
            if (yi >= 0 && yi < x.h && xj >= 0 && xj < x.w) d[(nc * h + i) * w + j] = Math.max(d[(nc * h + i) * w + j], x.d[(nc * x.h + yi) * x.w + xj]);
          }
  return { d, n: x.n, c: x.c, h, w };
}

/** torchvision's names and shapes for a ResNet of these widths and blocks (buffers included). */
function torchvisionNames(widths: number[], blocks: number[], inChannels: number, block: 'basic' | 'bottleneck'): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const norm = (p: string, c: number) => Object.assign(out, { [`${p}.weight`]: [c], [`${p}.bias`]: [c], [`${p}.running_mean`]: [c], [`${p}.running_var`]: [c], [`${p}.num_batches_tracked`]: [] });
  out['conv1.weight'] = [widths[0], inChannels, 7, 7];
  norm('bn1', widths[0]);
  let inplanes = widths[0];
  const expansion = block === 'bottleneck' ? 4 : 1;
  for (let s = 0; s < 4; s++) {
    const planes = widths[s + 1];
    for (let b = 0; b < blocks[s]; b++) {
      const p = `layer${s + 1}.${b}`, stride = b === 0 && s > 0 ? 2 : 1;
      if (block === 'bottleneck') {
        out[`${p}.conv1.weight`] = [planes, inplanes, 1, 1];
        out[`${p}.conv2.weight`] = [planes, planes, 3, 3];
        out[`${p}.conv3.weight`] = [planes * 4, planes, 1, 1];
        norm(`${p}.bn1`, planes);
        norm(`${p}.bn2`, planes);
        norm(`${p}.bn3`, planes * 4);
      } else {
        out[`${p}.conv1.weight`] = [planes, inplanes, 3, 3];
        out[`${p}.conv2.weight`] = [planes, planes, 3, 3];
        norm(`${p}.bn1`, planes);
        norm(`${p}.bn2`, planes);
      }
      if (stride !== 1 || inplanes !== planes * expansion) {
        out[`${p}.downsample.0.weight`] = [planes * expansion, inplanes, 1, 1];
        norm(`${p}.downsample.1`, planes * expansion);
      }
      inplanes = planes * expansion;
    }
  }
  return out;
}

/** The reference forward from the named weights, following torchvision's block definitions. */
function reference(x: Map4, W: Record<string, Float64Array>, widths: number[], blocks: number[], block: 'basic' | 'bottleneck'): Map4 {
  const cbn = (y: Map4, p: string, out: number, k: number, stride: number, pad: number, n: string) => bn(conv(y, W[`${p}.conv${n}.weight`], out, k, stride, pad), W[`${p}.bn${n}.weight`], W[`${p}.bn${n}.bias`]);
  let y = maxPool(relu(bn(conv(x, W['conv1.weight'], widths[0], 7, 2, 3), W['bn1.weight'], W['bn1.bias'])));
  for (let s = 0; s < 4; s++) {
    const planes = widths[s + 1];
    for (let b = 0; b < blocks[s]; b++) {
      const p = `layer${s + 1}.${b}`, stride = b === 0 && s > 0 ? 2 : 1;
      let z: Map4;
      if (block === 'bottleneck') {
        z = relu(cbn(y, p, planes, 1, 1, 0, '1'));
        z = relu(cbn(z, p, planes, 3, stride, 1, '2'));
        z = cbn(z, p, planes * 4, 1, 1, 0, '3');
      } else {
        z = relu(cbn(y, p, planes, 3, stride, 1, '1'));
        z = cbn(z, p, planes, 3, 1, 1, '2');
      }
      const skip = W[`${p}.downsample.0.weight`] ? bn(conv(y, W[`${p}.downsample.0.weight`], z.c, 1, stride, 0), W[`${p}.downsample.1.weight`], W[`${p}.downsample.1.bias`]) : y;
      y = relu(add(z, skip));
    }
  }
  return y;
}

const asF64 = (t: Tensor): Float64Array => Float64Array.from(t.toArray() as ArrayLike<number>);

describe('ResNet visual extractor against a float64 reference from torchvision\'s definitions', () => {
  const widths = [4, 4, 6, 6, 8];
  const blocks = [1, 2, 1, 1];
  for (const block of ['basic', 'bottleneck'] as const)
    it(`${block} blocks: names and shapes are torchvision's; the training-mode forward matches in float64`, () => {
      const N = 2, C = 1, S = 32;
      const xd = randArray(N * C * S * S, rng(block === 'basic' ? 3 : 4), -1, 1);
      const x = f64(xd, [N, C, S, S]);
      // Batch norms' affine terms start at 1 and 0; other values, so the reference's use of them is checked.
      const r0 = rng(block === 'basic' ? 7 : 8);
      const affine = Object.fromEntries(
        Object.entries(torchvisionNames(widths, blocks, C, block))
          .filter(([k]) => /(bn\d|downsample\.1)\.(weight|bias)$/.test(k))
          .map(([k, [c]]) => [k, f64(randArray(c, r0, -0.5, 0.5).map((u) => (k.endsWith('.weight') ? 1 + u : u)), [c])]),
      );
      const r = T().forward(Tensor.handle(x) as H, { widths, blocks, block, seed: 5, train: true, weights: Object.fromEntries(Object.entries(affine).map(([k, t]) => [k, Tensor.handle(t) as H])) });
      const tensors = Object.fromEntries(Object.entries(r.tensors).map(([k, h]) => [k, Tensor.wrap(h as never)]));
      const out = Tensor.wrap(r.output as never);
      try {
        const expected = torchvisionNames(widths, blocks, C, block);
        expect(Object.keys(tensors).sort()).toEqual(Object.keys(expected).sort());
        for (const [k, shape] of Object.entries(expected)) expect(tensors[k].shape, k).toEqual(shape);
        expect(r.outChannels).toBe(block === 'bottleneck' ? 32 : 8);
        const W = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, asF64(t)]));
        expect(Array.from(W['layer2.0.bn1.weight'])).toEqual(Array.from(asF64(affine['layer2.0.bn1.weight'])));
        const ref = reference({ d: xd, n: N, c: C, h: S, w: S }, W, widths, blocks, block);
        expect(out.shape).toEqual([N, ref.c, ref.h, ref.w]);
        expectAllClose(asF64(out), ref.d, 1e-9, 1e-10);
      } finally {
        [x, out, ...Object.values(tensors), ...Object.values(affine)].forEach((t) => t.dispose());
      }
    });

  it('ImageNet-style bottleneck weights (torchvision names, 3-channel conv1) load by name into MedRAT\'s visual extractor', () => {
    // torchvision-named weights (3-channel conv1, as ImageNet checkpoints have) for MedRAT's visual extractor.
    const names = torchvisionNames(widths, blocks, 3, 'bottleneck');
    const r = rng(9);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'radkit-resnet-')), 'resnet-bottleneck.safetensors');
    const written: Record<string, Tensor> = {};
    for (const [k, shape] of Object.entries(names)) {
      if (k.endsWith('num_batches_tracked')) continue;
      const n = shape.reduce((a, b) => a * b, 1);
      const v = k.endsWith('running_var') ? randArray(n, r, 0.5, 1.5) : k.includes('bn') || k.includes('downsample.1') ? randArray(n, r, -0.5, 0.5).map((u) => (k.endsWith('.weight') ? 1 + u : u)) : randArray(n, r, -0.3, 0.3);
      written[k] = Tensor.from(Float32Array.from(v), shape);
    }
    written['fc.weight'] = Tensor.from(new Float32Array(10 * 32), [10, 32]);
    radkit.writeSafetensors(file, written);
    const tokenizer = radkit.text.Tokenizer.build(['the heart is normal .', 'no effusion .'], { threshold: 1 });
    const m = medrat({ tokenizer, resnetWidths: widths, resnetBlocks: blocks, resnetBlock: 'bottleneck', visualWeights: file });
    const got = m.namedTensors();
    try {
      for (const [k, t] of Object.entries(written)) {
        if (k === 'fc.weight') continue;
        const mine = got[`visual.${k}`];
        expect(mine, k).toBeDefined();
        const want = asF64(t);
        const have = asF64(mine);
        if (k === 'conv1.weight') {
          // Summed over the three colour channels into the grey input.
          const sum = Array.from({ length: have.length }, (_, i) => [0, 1, 2].reduce((s, c) => s + want[Math.floor(i / 49) * 147 + c * 49 + (i % 49)], 0));
          expectAllClose(have, sum, 1e-6, 1e-7);
        } else expect(Array.from(have)).toEqual(Array.from(want));
      }
      expect(got['visualProj.weight'].shape).toEqual([128, 32]); // 4 x 8 bottleneck output channels into d 128
    } finally {
      Object.values(got).forEach((t) => t.dispose());
      Object.values(written).forEach((t) => t.dispose());
      m.dispose();
    }
  });

  it("MedRAT's paper preset is ResNet-101: torchvision's resnet101 parameters less its fc, conv1 on one grey channel", () => {
    const tokenizer = radkit.text.Tokenizer.build(['the heart is normal .'], { threshold: 1 });
    const m = medrat({ tokenizer, preset: 'paper' });
    // Shapes alone: no copy of the 74 M parameters.
    const shapes = m.tensorShapes();
    try {
      const visual = Object.keys(shapes).filter((k) => k.startsWith('visual.') && !/running_|num_batches/.test(k));
      const count = visual.reduce((s, k) => s + shapes[k].reduce((a, b) => a * b, 1), 0);
      expect(count).toBe(44_549_160 - 2_049_000 - 64 * 2 * 49);
      expect(shapes['visual.layer3.22.conv3.weight']).toEqual([1024, 256, 1, 1]);
      expect(shapes['visual.layer4.2.bn3.weight']).toEqual([2048]);
      expect(m.config.resnetBlock).toBe('bottleneck');
    } finally {
      m.dispose();
    }
    // The small preset's configuration has no such key (its runs resume as recorded), and a wrong kind is refused.
    const small = medrat({ tokenizer });
    expect('resnetBlock' in small.config).toBe(false);
    small.dispose();
    expect(() => medrat({ tokenizer, resnetBlock: 'wide' as never })).toThrow(/config.resnetBlock must be 'basic' or 'bottleneck', got 'wide'/);
  });
});
