import { describe, expect, it } from 'vitest';
import * as radkit from '../../lib/index.js';
import { ArgumentError, DisposedError, OutOfMemoryError, RadkitError, Tensor } from '../../lib/index.js';

type Ctor = new (...args: never[]) => RadkitError;

// Each bad call must throw the named class with the code, name its function, carry no C++ backtrace,
// and leave the process alive for the next row.
function disposed(): Tensor {
  const t = Tensor.ones([2, 2]);
  t.dispose();
  return t;
}

const f32 = () => Tensor.ones([2, 3]);
const anyOf = (v: unknown) => v as never;

const table: [string, () => unknown, Ctor, string, RegExp][] = [
  ['from: plain array instead of typed array', () => Tensor.from(anyOf([1, 2]), [2]), ArgumentError, 'ERR_INVALID_ARG', /Float32Array.*got array/],
  ['from: Int16Array unsupported', () => Tensor.from(anyOf(new Int16Array(2)), [2]), ArgumentError, 'ERR_DTYPE', /not supported/],
  ['from: shape/data mismatch', () => Tensor.from(new Float32Array(5), [2, 3]), ArgumentError, 'ERR_SHAPE', /holds 6 elements but data has 5/],
  ['from: negative size', () => Tensor.from(new Float32Array(0), [-1]), ArgumentError, 'ERR_SHAPE', /non-negative integer, got number -1/],
  ['from: fractional size', () => Tensor.from(new Float32Array(2), [1.5]), ArgumentError, 'ERR_SHAPE', /non-negative integer/],
  ['from: NaN size', () => Tensor.from(new Float32Array(2), [NaN]), ArgumentError, 'ERR_SHAPE', /non-negative integer/],
  ['from: shape not an array', () => Tensor.from(new Float32Array(2), anyOf('2')), ArgumentError, 'ERR_INVALID_ARG', /shape must be an array.*string '2'/],
  ['from: unknown dtype', () => Tensor.from(new Float32Array(2), [2], { dtype: anyOf('float8') }), ArgumentError, 'ERR_DTYPE', /float8/],
  ['from: unknown device', () => Tensor.from(new Float32Array(2), [2], { device: anyOf('tpu') }), ArgumentError, 'ERR_DEVICE', /'cpu', 'cuda' or 'cuda:N', got string 'tpu'/],
  ['from: requiresGrad not boolean', () => Tensor.from(new Float32Array(2), [2], { requiresGrad: anyOf(1) }), ArgumentError, 'ERR_INVALID_ARG', /boolean/],
  ['from: requiresGrad on int32', () => Tensor.from(new Int32Array(2), [2], { requiresGrad: true }), ArgumentError, 'ERR_DTYPE', /floating-point/],
  ['from: options not an object', () => Tensor.from(new Float32Array(2), [2], anyOf(5)), ArgumentError, 'ERR_INVALID_ARG', /options must be an object/],
  ['zeros: oversize allocation', () => Tensor.zeros([1e6, 1e6, 1e6]), OutOfMemoryError, 'ERR_OUT_OF_MEMORY', /GiB/],
  ['zeros: larger than physical memory', () => Tensor.zeros([1 << 30, 1 << 30]), OutOfMemoryError, 'ERR_OUT_OF_MEMORY', /more than this machine/],
  ['zeros: too many dimensions', () => Tensor.zeros(new Array(17).fill(1)), ArgumentError, 'ERR_SHAPE', /at most 16/],
  ['zeros: string dimension', () => Tensor.zeros(anyOf(['2'])), ArgumentError, 'ERR_SHAPE', /shape\[0\]/],
  ['randn: integer dtype', () => Tensor.randn([2], { dtype: 'int32' }), ArgumentError, 'ERR_DTYPE', /randn needs a floating-point dtype/],
  ['cuda device without CUDA', () => Tensor.zeros([2], { device: 'cuda:7' }), ArgumentError, 'ERR_DEVICE', /cuda:7/],
  ['shape of disposed tensor', () => disposed().shape, DisposedError, 'ERR_DISPOSED', /disposed/],
  ['toArray of disposed tensor', () => disposed().toArray(), DisposedError, 'ERR_DISPOSED', /disposed/],
  ['matmul with disposed operand', () => radkit.matmul(disposed(), f32()), DisposedError, 'ERR_DISPOSED', /a was disposed/],
  ['matmul: wrong JS type', () => radkit.matmul(anyOf({}), f32()), ArgumentError, 'ERR_INVALID_ARG', /a must be a Tensor, got object/],
  ['matmul: null operand', () => radkit.matmul(f32(), anyOf(null)), ArgumentError, 'ERR_INVALID_ARG', /b must be a Tensor, got null/],
  ['matmul: inner dims differ', () => radkit.matmul(f32(), f32()), ArgumentError, 'ERR_SHAPE', /inner dimensions differ: a is \[2, 3\], b is \[2, 3\]/],
  ['matmul: dtype mix', () => radkit.matmul(f32(), Tensor.ones([3, 2], { dtype: 'float64' })), ArgumentError, 'ERR_DTYPE', /float32 and float64/],
  ['matmul: integer operands', () => radkit.matmul(Tensor.ones([2, 2], { dtype: 'int32' }), Tensor.ones([2, 2], { dtype: 'int32' })), ArgumentError, 'ERR_DTYPE', /floating-point/],
  ['matmul: scalar rank 0', () => radkit.matmul(radkit.sum(f32()), f32()), ArgumentError, 'ERR_SHAPE', /at least one dimension/],
  ['backward: no grad required', () => radkit.sum(f32()).backward(), ArgumentError, 'ERR_NO_GRAD', /does not require gradients/],
  ['backward: non-scalar without gradOutput', () => radkit.mul(Tensor.ones([2], { requiresGrad: true }), Tensor.ones([2])).backward(), ArgumentError, 'ERR_INVALID_ARG', /single-element/],
  ['backward: gradOutput wrong shape', () => radkit.mul(Tensor.ones([2], { requiresGrad: true }), Tensor.ones([2])).backward(Tensor.ones([3])), ArgumentError, 'ERR_SHAPE', /gradOutput must have the tensor's shape \[2\], got \[3\]/],
  ['backward: gradOutput not a tensor', () => radkit.mul(Tensor.ones([2], { requiresGrad: true }), Tensor.ones([2])).backward(anyOf([1, 1])), ArgumentError, 'ERR_INVALID_ARG', /gradOutput must be a Tensor/],
  ['requiresGrad on a non-leaf', () => { radkit.mul(Tensor.ones([2], { requiresGrad: true }), Tensor.ones([2])).requiresGrad = false; }, ArgumentError, 'ERR_INVALID_ARG', /leaf/],
  ['requiresGrad on uint8', () => { Tensor.ones([2], { dtype: 'uint8' }).requiresGrad = true; }, ArgumentError, 'ERR_DTYPE', /uint8/],
  ['to: unknown target', () => f32().to(anyOf('float128')), ArgumentError, 'ERR_DEVICE', /float128/],
  ['to: number target', () => f32().to(anyOf(3)), ArgumentError, 'ERR_INVALID_ARG', /dtype or device name string/],
  ['manualSeed: negative', () => radkit.manualSeed(-1), ArgumentError, 'ERR_INVALID_ARG', /seed must be in/],
  ['manualSeed: non-finite', () => radkit.manualSeed(Infinity), ArgumentError, 'ERR_INVALID_ARG', /integer/],
  ['setNumThreads: zero', () => radkit.setNumThreads(0), ArgumentError, 'ERR_INVALID_ARG', /n must be in \[1, 1024\]/],
  ['setNumThreads: string', () => radkit.setNumThreads(anyOf('4')), ArgumentError, 'ERR_INVALID_ARG', /integer, got string '4'/],
  ['mul: broadcast mismatch (LibTorch error, no backtrace)', () => radkit.mul(Tensor.ones([2]), Tensor.ones([3])), RadkitError, 'ERR_TORCH', /size of tensor a \(2\) must match/],
];

describe('bad calls throw typed errors and the process lives on', () => {
  it('has at least 30 rows', () => expect(table.length).toBeGreaterThanOrEqual(30));
  for (const [name, call, cls, code, message] of table) {
    it(name, () => {
      let caught: unknown;
      try {
        call();
      } catch (e) {
        caught = e;
      }
      expect(caught, 'did not throw').toBeInstanceOf(cls);
      const e = caught as RadkitError;
      expect(e).toBeInstanceOf(Error);
      expect(e.code).toBe(code);
      expect(e.fn.length).toBeGreaterThan(0);
      expect(e.message.startsWith(`${e.fn}: `)).toBe(true);
      expect(e.message).toMatch(message);
      expect(e.message).not.toMatch(/Exception raised from|frame #|\.cpp:\d+/);
    });
  }
  it('still works after all of them', () => {
    const t = Tensor.ones([2]);
    expect(Array.from(t.toArray() as Float32Array)).toEqual([1, 1]);
    t.dispose();
  });
  it('rejects async calls with the same error classes', async () => {
    await expect(radkit.matmulAsync(f32(), f32())).rejects.toBeInstanceOf(ArgumentError);
    await expect(radkit.benchmarkMatmul({ size: -3 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', fn: 'benchmarkMatmul' });
  });
});
