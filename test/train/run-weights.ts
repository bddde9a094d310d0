// The weights of a run's last checkpoint as plain numbers by name, for exact comparisons of runs.
import * as path from 'node:path';
import * as radkit from '../../lib/index.js';

export async function weightsOf(run: string): Promise<Record<string, number[]>> {
  const ck = await radkit.loadCheckpoint(path.join(run, 'checkpoints', 'last'));
  try {
    return modelWeights(ck.model);
  } finally {
    ck.model.dispose();
  }
}

/** A model's parameters and buffers whose names start with `prefix`, as plain numbers by name. */
export function modelWeights(model: radkit.Model, prefix = ''): Record<string, number[]> {
  const named = model.namedTensors();
  const out = Object.fromEntries(Object.entries(named).filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k, Array.from(t.toArray() as ArrayLike<number | bigint>, Number)]));
  Object.values(named).forEach((t) => t.dispose());
  return out;
}

/** One model tensor's dtype and its values widened to float32, as plain numbers (bfloat16 checks). */
export function tensorAsFloat32(model: radkit.Model, name: string): { dtype: string; values: number[] } {
  const named = model.namedTensors();
  try {
    const t = named[name];
    if (!t) throw new Error(`no tensor ${name}`);
    const f = t.to('float32');
    const values = Array.from(f.toArray() as Float32Array);
    f.dispose();
    return { dtype: t.dtype, values };
  } finally {
    Object.values(named).forEach((t) => t.dispose());
  }
}
