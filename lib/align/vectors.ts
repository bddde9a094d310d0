/** Dot product of rows a[ai .. ai+d) and b[bi .. bi+d). */
export function dot(a: Float32Array, ai: number, b: Float32Array, bi: number, d: number): number {
  let s = 0;
  for (let x = 0; x < d; x++) s += a[ai + x] * b[bi + x];
  return s;
}

/** Mean of the rows of `rows` [count, d] selected by `keep`, scaled to unit length (zeros when none). */
export function meanUnit(rows: Float32Array, count: number, d: number, keep: (r: number) => boolean): Float32Array {
  const out = new Float32Array(d);
  for (let r = 0; r < count; r++) if (keep(r)) for (let x = 0; x < d; x++) out[x] += rows[r * d + x];
  let n = 0;
  for (let x = 0; x < d; x++) n += out[x] * out[x];
  n = Math.sqrt(n);
  if (n > 0) for (let x = 0; x < d; x++) out[x] /= n;
  return out;
}
