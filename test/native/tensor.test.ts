import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { Tensor } from '../../lib/index.js';

describe('Tensor API', () => {
  it('round-trips every typed array through from/toArray with the matching dtype', () => {
    const cases = [
      [new Float32Array([1.5, -2, 3, 4, 5, 6]), 'float32'],
      [new Float64Array([1e-300, 2, 3, 4, 5, 6]), 'float64'],
      [new Int32Array([1, -2, 3, 2147483647, 5, 6]), 'int32'],
      [new BigInt64Array([1n, -2n, 9007199254740993n, 4n, 5n, 6n]), 'int64'],
      [new Uint8Array([0, 1, 2, 255, 4, 5]), 'uint8'],
    ] as const;
    for (const [data, dtype] of cases) {
      const t = Tensor.from(data, [2, 3]);
      expect(t.dtype).toBe(dtype);
      expect(t.shape).toEqual([2, 3]);
      expect(t.device).toBe('cpu');
      const back = t.toArray();
      expect(back.constructor).toBe(data.constructor);
      expect(Array.from(back as ArrayLike<number | bigint>)).toEqual(Array.from(data as ArrayLike<number | bigint>));
      t.dispose();
    }
  });

  it('converts dtypes: bool, float16, bfloat16 and int64 come back as documented', () => {
    const t = Tensor.from(new Float32Array([0, 1.5, -2, 3]), [4]);
    const b = t.to('bool');
    expect(b.dtype).toBe('bool');
    expect(Array.from(b.toArray() as Uint8Array)).toEqual([0, 1, 1, 1]);
    const h = t.to('float16');
    expect(h.dtype).toBe('float16');
    expect(h.toArray()).toBeInstanceOf(Float32Array);
    expect(Array.from(h.toArray() as Float32Array)).toEqual([0, 1.5, -2, 3]);
    const bf = t.to('bfloat16');
    expect(Array.from(bf.toArray() as Float32Array)).toEqual([0, 1.5, -2, 3]);
    const l = t.to('int64');
    expect(l.toArray()).toBeInstanceOf(BigInt64Array);
    expect(Array.from(l.toArray() as BigInt64Array)).toEqual([0n, 1n, -2n, 3n]);
    const fromBytes = Tensor.from(new Uint8Array([0, 3]), [2], { dtype: 'bool' });
    expect(Array.from(fromBytes.toArray() as Uint8Array)).toEqual([0, 1]);
    for (const x of [t, b, h, bf, l, fromBytes]) x.dispose();
  });

  it('refuses integer conversions that would wrap around or make values up, naming the element', () => {
    const cases: [() => Tensor, RegExp][] = [
      [() => Tensor.from(new Float64Array([1, 2.5]), [2], { dtype: 'int32' }), /Tensor.from data: element 1 is 2.5, which int32 cannot hold exactly \(range \[-2147483648, 2147483647\], whole numbers only\)/],
      [() => Tensor.from(new Float64Array([0, 0, NaN]), [3], { dtype: 'int64' }), /element 2 is nan, which int64/],
      [() => Tensor.from(new BigInt64Array([1n, 1n << 40n]), [2], { dtype: 'int32' }), /element 1 is 1099511627776, which int32/],
      [() => Tensor.from(new Int32Array([255, 256, -1]), [3], { dtype: 'uint8' }), /element 1 is 256, which uint8 cannot hold exactly \(range \[0, 255\], whole numbers only\); 2 elements are affected/],
      [() => Tensor.from(new Float32Array([3e9]), [1]).to('int32'), /Tensor.to: element 0 is 3000000000, which int32/],
      [() => Tensor.from(new Float64Array([2 ** 63]), [1]).to('int64'), /which int64 cannot hold exactly \(range \[-2\^63, 2\^63\)\)/],
      [() => Tensor.from(new Float32Array([Infinity]), [1]).to('uint8'), /element 0 is inf, which uint8/],
    ];
    for (const [make, message] of cases) expect(make).toThrow(message);
    // What stays allowed: exact values, truncation when the caller asks with to(), bool as non-zero.
    const ok = Tensor.from(new Float64Array([-2, 7]), [2], { dtype: 'int32' });
    expect(Array.from(ok.toArray() as Int32Array)).toEqual([-2, 7]);
    const f = Tensor.from(new Float32Array([1.75, -1.75]), [2]);
    const truncated = f.to('int64');
    expect(Array.from(truncated.toArray() as BigInt64Array)).toEqual([1n, -1n]);
    for (const x of [ok, f, truncated]) x.dispose();
  });

  it('makes zeros, ones and seeded randn', () => {
    const z = Tensor.zeros([2, 2]);
    const o = Tensor.ones([3], { dtype: 'float64' });
    expect(Array.from(z.toArray() as Float32Array)).toEqual([0, 0, 0, 0]);
    expect(o.dtype).toBe('float64');
    expect(Array.from(o.toArray() as Float64Array)).toEqual([1, 1, 1]);
    radkit.manualSeed(7);
    const a = Tensor.randn([1000]);
    radkit.manualSeed(7);
    const b = Tensor.randn([1000]);
    const av = a.toArray() as Float32Array;
    expect(Array.from(av)).toEqual(Array.from(b.toArray() as Float32Array));
    const mean = av.reduce((s, x) => s + x, 0) / av.length;
    const sd = Math.sqrt(av.reduce((s, x) => s + (x - mean) ** 2, 0) / av.length);
    expect(Math.abs(mean)).toBeLessThan(0.15);
    expect(Math.abs(sd - 1)).toBeLessThan(0.1);
    const empty = Tensor.zeros([0, 5]);
    expect(empty.numel).toBe(0);
    expect((empty.toArray() as Float32Array).length).toBe(0);
    for (const x of [z, o, a, b, empty]) x.dispose();
  });

  it('computes gradients through backward()', () => {
    const x = Tensor.from(new Float64Array([1, -2, 3]), [3], { requiresGrad: true });
    expect(x.requiresGrad).toBe(true);
    expect(x.grad).toBeNull();
    const sq = radkit.mul(x, x);
    const s = radkit.sum(sq);
    s.backward();
    const g = x.grad!;
    expect(Array.from(g.toArray() as Float64Array)).toEqual([2, -4, 6]);
    // gradOutput for a non-scalar output: d(x*x)/dx * w = 2 x w
    const y = Tensor.from(new Float64Array([1, 2, 3]), [3], { requiresGrad: true });
    const yy = radkit.mul(y, y);
    const w = Tensor.from(new Float64Array([1, 0, -1]), [3]);
    yy.backward(w);
    const gy = y.grad!;
    expect(Array.from(gy.toArray() as Float64Array)).toEqual([2, 0, -6]);
    for (const t of [x, sq, s, g, y, yy, w, gy]) t.dispose();
  });

  it('noGrad records nothing and restores the previous mode', () => {
    const x = Tensor.ones([2], { requiresGrad: true });
    const y = radkit.noGrad(() => radkit.mul(x, x));
    expect(y.requiresGrad).toBe(false);
    const z = radkit.mul(x, x);
    expect(z.requiresGrad).toBe(true);
    expect(() => radkit.noGrad(() => { throw new Error('inner'); })).toThrow('inner');
    const w = radkit.mul(x, x);
    expect(w.requiresGrad).toBe(true);
    for (const t of [x, y, z, w]) t.dispose();
  });

  it('tracks live tensors and bytes in memory(); dispose is idempotent; Symbol.dispose works', () => {
    const before = radkit.memory();
    const t = Tensor.zeros([10, 10], { dtype: 'float64' });
    const mid = radkit.memory();
    expect(mid.liveTensors - before.liveTensors).toBe(1);
    expect(mid.liveBytes - before.liveBytes).toBe(800);
    t[Symbol.dispose]();
    t.dispose();
    expect(t.disposed).toBe(true);
    const after = radkit.memory();
    expect(after.liveTensors).toBe(before.liveTensors);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(String(t)).toBe('Tensor(disposed)');
  });

  it('matmul agrees with a hand computation', () => {
    const a = Tensor.from(new Float64Array([1, 2, 3, 4]), [2, 2]);
    const b = Tensor.from(new Float64Array([5, 6, 7, 8]), [2, 2]);
    const c = radkit.matmul(a, b);
    expect(Array.from(c.toArray() as Float64Array)).toEqual([19, 22, 43, 50]);
    for (const t of [a, b, c]) t.dispose();
  });

  it('sets threads and reports build facts', () => {
    const n = radkit.getNumThreads();
    radkit.setNumThreads(1);
    expect(radkit.getNumThreads()).toBe(1);
    radkit.setNumThreads(n);
    const info = radkit.info();
    expect(info.torchVersion).toMatch(/^\d+\.\d+\.\d+$/);
    expect(info.torchLibrary).toMatch(/libtorch/);
    expect(info.binary.loaded).toBe(true);
    expect(['build', 'prebuild', 'RADKIT_NATIVE']).toContain(info.binary.source);
    expect(typeof info.cudaAvailable).toBe('boolean');
  });
});
