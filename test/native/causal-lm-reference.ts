// Test helpers for the causal LMs, independent of radkit's native code: tiny random checkpoints
// written in the Hugging Face layout (config.json, safetensors files written here byte by byte,
// sharded with model.safetensors.index.json), and a float64 reference forward pass in plain
// TypeScript following the Hugging Face modeling code (LlamaForCausalLM, GPTNeoXForCausalLM).
import * as fs from 'node:fs';
import * as path from 'node:path';

export type HFConfig = Record<string, unknown> & { model_type: 'llama' | 'gpt_neox' };

export interface Weight {
  shape: number[];
  data: Float64Array; // values exactly as stored (rounded to float32 or bfloat16)
}
export type Weights = Map<string, Weight>;

/** mulberry32 + Box-Muller: a seeded normal generator. */
export function normalRng(seed: number): () => number {
  let a = seed >>> 0;
  const uni = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uni() + 1e-12)) * Math.cos(2 * Math.PI * uni());
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function roundF32(x: number): number {
  f32[0] = x;
  return f32[0];
}
/** Round to nearest even bfloat16, returned as a float64 value. */
export function roundBF16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  u32[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return f32[0];
}

function hfInt(cfg: HFConfig, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number') throw new Error(`config ${key} missing`);
  return v;
}

/** The tensor names and shapes a Hugging Face model of this config holds. */
export function weightShapes(cfg: HFConfig): [string, number[]][] {
  const d = hfInt(cfg, 'hidden_size'), v = hfInt(cfg, 'vocab_size'), nl = hfInt(cfg, 'num_hidden_layers'), h = hfInt(cfg, 'num_attention_heads');
  const f = hfInt(cfg, 'intermediate_size');
  const out: [string, number[]][] = [];
  if (cfg.model_type === 'llama') {
    const kv = hfInt(cfg, 'num_key_value_heads', h), hd = hfInt(cfg, 'head_dim', d / h);
    out.push(['model.embed_tokens.weight', [v, d]]);
    for (let i = 0; i < nl; i++) {
      const p = `model.layers.${i}.`;
      out.push([`${p}input_layernorm.weight`, [d]]);
      out.push([`${p}self_attn.q_proj.weight`, [h * hd, d]], [`${p}self_attn.k_proj.weight`, [kv * hd, d]], [`${p}self_attn.v_proj.weight`, [kv * hd, d]]);
      out.push([`${p}self_attn.o_proj.weight`, [d, h * hd]]);
      out.push([`${p}post_attention_layernorm.weight`, [d]]);
      out.push([`${p}mlp.gate_proj.weight`, [f, d]], [`${p}mlp.up_proj.weight`, [f, d]], [`${p}mlp.down_proj.weight`, [d, f]]);
    }
    out.push(['model.norm.weight', [d]]);
    if (!cfg.tie_word_embeddings) out.push(['lm_head.weight', [v, d]]);
  } else {
    out.push(['gpt_neox.embed_in.weight', [v, d]]);
    for (let i = 0; i < nl; i++) {
      const p = `gpt_neox.layers.${i}.`;
      out.push([`${p}input_layernorm.weight`, [d]], [`${p}input_layernorm.bias`, [d]]);
      out.push([`${p}post_attention_layernorm.weight`, [d]], [`${p}post_attention_layernorm.bias`, [d]]);
      out.push([`${p}attention.query_key_value.weight`, [3 * d, d]], [`${p}attention.query_key_value.bias`, [3 * d]]);
      out.push([`${p}attention.dense.weight`, [d, d]], [`${p}attention.dense.bias`, [d]]);
      out.push([`${p}mlp.dense_h_to_4h.weight`, [f, d]], [`${p}mlp.dense_h_to_4h.bias`, [f]]);
      out.push([`${p}mlp.dense_4h_to_h.weight`, [d, f]], [`${p}mlp.dense_4h_to_h.bias`, [d]]);
    }
    out.push(['gpt_neox.final_layer_norm.weight', [d]], ['gpt_neox.final_layer_norm.bias', [d]]);
    if (!cfg.tie_word_embeddings) out.push(['embed_out.weight', [v, d]]);
  }
  return out;
}

/** Random weights (std `scale` matrices, norms around 1, small biases), rounded to the stored dtype. */
export function randomWeights(cfg: HFConfig, seed: number, dtype: 'F32' | 'BF16', scale = 0.3): Weights {
  const rnd = normalRng(seed);
  const round = dtype === 'BF16' ? roundBF16 : roundF32;
  const w: Weights = new Map();
  for (const [name, shape] of weightShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    const isNorm = name.includes('norm');
    for (let i = 0; i < n; i++) {
      const r = rnd();
      data[i] = round(isNorm && name.endsWith('weight') ? 1 + 0.1 * r : name.endsWith('bias') ? 0.05 * r : scale * r);
    }
    w.set(name, { shape, data });
  }
  return w;
}

/** A safetensors file written here (not by radkit): 8-byte header length, JSON, little-endian data. */
export function writeSafetensorsFile(file: string, tensors: [string, Weight][], dtype: 'F32' | 'BF16'): void {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.data.length;
    let buf: Buffer;
    if (dtype === 'F32') {
      buf = Buffer.from(Float32Array.from(t.data).buffer);
    } else {
      const f = Float32Array.from(t.data);
      const u = new Uint32Array(f.buffer);
      const b = new Uint16Array(n);
      for (let i = 0; i < n; i++) b[i] = u[i] >>> 16; // values are already bfloat16
      buf = Buffer.from(b.buffer);
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + buf.length] };
    parts.push(buf);
    offset += buf.length;
  }
  header.__metadata__ = { format: 'pt' };
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json), ...parts]));
}

/** Writes DIR/config.json and the weights (one file, or `shards` files with an index). */
export function writeCheckpoint(dir: string, cfg: HFConfig, weights: Weights, options: { dtype: 'F32' | 'BF16'; shards?: number }): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, torch_dtype: options.dtype === 'BF16' ? 'bfloat16' : 'float32' }, null, 2));
  const entries = [...weights.entries()];
  const shards = options.shards ?? 1;
  if (shards === 1) {
    writeSafetensorsFile(path.join(dir, 'model.safetensors'), entries, options.dtype);
    return;
  }
  const per = Math.ceil(entries.length / shards);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    // shards hold tensors in a shuffled order, as large exports do
    const part = entries.slice(s * per, (s + 1) * per).reverse();
    writeSafetensorsFile(path.join(dir, name), part, options.dtype);
    for (const [n] of part) weightMap[n] = name;
  }
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
}

// ---- float64 reference forward

type Mat = Float64Array; // row-major

function linear(x: Mat, n: number, w: Weight, b?: Weight): Mat {
  const [out, inp] = w.shape;
  const y = new Float64Array(n * out);
  for (let r = 0; r < n; r++)
    for (let o = 0; o < out; o++) {
      let s = b ? b.data[o] : 0;
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w.data[o * inp + i];
      y[r * out + o] = s;
    }
  return y;
}

function rmsNorm(x: Mat, n: number, d: number, w: Weight, eps: number): Mat {
  const y = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[r * d + i] ** 2;
    const inv = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = x[r * d + i] * inv * w.data[i];
  }
  return y;
}

function layerNorm(x: Mat, n: number, d: number, w: Weight, b: Weight, eps: number): Mat {
  const y = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[r * d + i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[r * d + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / d + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = (x[r * d + i] - mean) * inv * w.data[i] + b.data[i];
  }
  return y;
}

// erf to ~1e-15 (series for small |x|, continued fraction otherwise).
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = ax, term = ax;
    for (let k = 1; k < 200; k++) {
      term *= (-ax * ax) / k;
      const t = term / (2 * k + 1);
      sum += t;
      if (Math.abs(t) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz)
  let f = ax, c = ax, dd = 0;
  for (let k = 1; k < 300; k++) {
    const a = k / 2;
    dd = ax + a * dd;
    dd = 1 / dd;
    c = ax + a / c;
    const delta = c * dd;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / (f * Math.sqrt(Math.PI));
  return Math.sign(x) * (1 - erfc);
}

function act(name: string, x: number): number {
  if (name === 'silu') return x / (1 + Math.exp(-x));
  if (name === 'gelu') return 0.5 * x * (1 + erf(x / Math.SQRT2));
  throw new Error(`reference: activation ${name}`);
}

function rotate(vec: Float64Array, off: number, rd: number, pos: number, theta: number): void {
  const half = rd / 2;
  for (let j = 0; j < half; j++) {
    const a = pos / theta ** ((2 * j) / rd);
    const c = Math.cos(a), s = Math.sin(a);
    const x1 = vec[off + j], x2 = vec[off + j + half];
    vec[off + j] = x1 * c - x2 * s;
    vec[off + j + half] = x2 * c + x1 * s;
  }
}

/**
 * Logits [L][V] of one sequence: `prefix` rows (embeddings) then `ids`, `valid` per position
 * (length L; the prefix always valid). Positions are cumsum(valid) - 1; a query attends to valid
 * keys at or before it (and always to itself).
 */
export function referenceLogits(cfg: HFConfig, w: Weights, ids: number[], valid?: boolean[], prefix: number[][] = []): number[][] {
  const llama = cfg.model_type === 'llama';
  const d = hfInt(cfg, 'hidden_size'), h = hfInt(cfg, 'num_attention_heads'), nl = hfInt(cfg, 'num_hidden_layers');
  const kvh = llama ? hfInt(cfg, 'num_key_value_heads', h) : h;
  const hd = llama ? hfInt(cfg, 'head_dim', d / h) : d / h;
  const rd = llama ? hd : Math.floor(hd * ((cfg.rotary_pct as number) ?? 0.25));
  const theta = llama ? ((cfg.rope_theta as number) ?? 10000) : ((cfg.rotary_emb_base as number) ?? 10000);
  const eps = llama ? ((cfg.rms_norm_eps as number) ?? 1e-6) : ((cfg.layer_norm_eps as number) ?? 1e-5);
  const actName = (cfg.hidden_act as string) ?? (llama ? 'silu' : 'gelu');
  const L = prefix.length + ids.length;
  const ok = [...prefix.map(() => true), ...(valid ?? ids.map(() => true))];
  const positions: number[] = [];
  let count = 0;
  for (const v of ok) positions.push(Math.max(0, (count += v ? 1 : 0) - 1));
  const emb = w.get(llama ? 'model.embed_tokens.weight' : 'gpt_neox.embed_in.weight')!;
  let x = new Float64Array(L * d);
  prefix.forEach((row, i) => row.forEach((v, j) => (x[i * d + j] = v)));
  ids.forEach((id, t) => {
    for (let j = 0; j < d; j++) x[(prefix.length + t) * d + j] = emb.data[id * d + j];
  });
  const get = (n: string) => {
    const t = w.get(n);
    if (!t) throw new Error(`reference: no ${n}`);
    return t;
  };
  const attention = (xin: Mat, p: string): Mat => {
    let q: Mat, k: Mat, v: Mat;
    if (llama) {
      q = linear(xin, L, get(`${p}self_attn.q_proj.weight`));
      k = linear(xin, L, get(`${p}self_attn.k_proj.weight`));
      v = linear(xin, L, get(`${p}self_attn.v_proj.weight`));
    } else {
      const qkv = linear(xin, L, get(`${p}attention.query_key_value.weight`), get(`${p}attention.query_key_value.bias`));
      q = new Float64Array(L * h * hd);
      k = new Float64Array(L * h * hd);
      v = new Float64Array(L * h * hd);
      for (let t = 0; t < L; t++)
        for (let hh = 0; hh < h; hh++)
          for (let j = 0; j < hd; j++) {
            const base = t * 3 * h * hd + hh * 3 * hd; // [H, 3*hd] per position
            q[(t * h + hh) * hd + j] = qkv[base + j];
            k[(t * h + hh) * hd + j] = qkv[base + hd + j];
            v[(t * h + hh) * hd + j] = qkv[base + 2 * hd + j];
          }
    }
    for (let t = 0; t < L; t++) {
      for (let hh = 0; hh < h; hh++) if (rd > 0) rotate(q, (t * h + hh) * hd, rd, positions[t], theta);
      for (let hh = 0; hh < kvh; hh++) if (rd > 0) rotate(k, (t * kvh + hh) * hd, rd, positions[t], theta);
    }
    const out = new Float64Array(L * h * hd);
    const g = h / kvh;
    for (let t = 0; t < L; t++)
      for (let hh = 0; hh < h; hh++) {
        const kh = Math.floor(hh / g);
        const scores: number[] = [];
        const keys: number[] = [];
        for (let s = 0; s <= t; s++) {
          if (!ok[s] && s !== t) continue;
          let dot = 0;
          for (let j = 0; j < hd; j++) dot += q[(t * h + hh) * hd + j] * k[(s * kvh + kh) * hd + j];
          scores.push(dot / Math.sqrt(hd));
          keys.push(s);
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        keys.forEach((s, i) => {
          for (let j = 0; j < hd; j++) out[(t * h + hh) * hd + j] += (e[i] / z) * v[(s * kvh + kh) * hd + j];
        });
      }
    return llama ? linear(out, L, get(`${p}self_attn.o_proj.weight`)) : linear(out, L, get(`${p}attention.dense.weight`), get(`${p}attention.dense.bias`));
  };
  const mlp = (xin: Mat, p: string): Mat => {
    if (llama) {
      const gt = linear(xin, L, get(`${p}mlp.gate_proj.weight`)), up = linear(xin, L, get(`${p}mlp.up_proj.weight`));
      for (let i = 0; i < gt.length; i++) gt[i] = act(actName, gt[i]) * up[i];
      return linear(gt, L, get(`${p}mlp.down_proj.weight`));
    }
    const up = linear(xin, L, get(`${p}mlp.dense_h_to_4h.weight`), get(`${p}mlp.dense_h_to_4h.bias`));
    for (let i = 0; i < up.length; i++) up[i] = act(actName, up[i]);
    return linear(up, L, get(`${p}mlp.dense_4h_to_h.weight`), get(`${p}mlp.dense_4h_to_h.bias`));
  };
  const norm = (xin: Mat, n: string) => (llama ? rmsNorm(xin, L, d, get(`${n}.weight`), eps) : layerNorm(xin, L, d, get(`${n}.weight`), get(`${n}.bias`), eps));
  for (let i = 0; i < nl; i++) {
    const p = llama ? `model.layers.${i}.` : `gpt_neox.layers.${i}.`;
    const a = attention(norm(x, `${p}input_layernorm`), p);
    if (!llama && (cfg.use_parallel_residual ?? true)) {
      const m = mlp(norm(x, `${p}post_attention_layernorm`), p);
      const y = new Float64Array(x.length);
      for (let j = 0; j < y.length; j++) y[j] = x[j] + a[j] + m[j];
      x = y;
    } else {
      const hres = new Float64Array(x.length);
      for (let j = 0; j < x.length; j++) hres[j] = x[j] + a[j];
      const m = mlp(norm(hres, `${p}post_attention_layernorm`), p);
      for (let j = 0; j < x.length; j++) hres[j] += m[j];
      x = hres;
    }
  }
  const fin = norm(x, llama ? 'model.norm' : 'gpt_neox.final_layer_norm');
  const head = cfg.tie_word_embeddings ? emb : get(llama ? 'lm_head.weight' : 'embed_out.weight');
  const logits = linear(fin, L, head);
  const V = head.shape[0];
  return Array.from({ length: L }, (_, t) => Array.from(logits.subarray(t * V, (t + 1) * V)));
}

/** Greedy continuation of one prompt by repeated full reference passes; also the smallest top-1/top-2 gap seen. */
export function referenceGreedy(cfg: HFConfig, w: Weights, prompt: number[], steps: number, prefix: number[][] = []): { tokens: number[]; minGap: number } {
  const seq = [...prompt];
  const tokens: number[] = [];
  let minGap = Infinity;
  for (let s = 0; s < steps; s++) {
    const l = referenceLogits(cfg, w, seq, undefined, prefix);
    const last = l[l.length - 1];
    const order = last.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
    minGap = Math.min(minGap, order[0][0] - order[1][0]);
    tokens.push(order[0][1]);
    seq.push(order[0][1]);
  }
  return { tokens, minGap };
}
