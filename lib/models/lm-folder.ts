/**
 * A user-supplied Hugging Face language model folder (`--lm DIR`: config.json, model.safetensors or
 * shards with their index, tokenizer.json) for a model kind that computes the LM inside its own
 * system (OTDRG's LLaMA, AdaMatch-Cyclic's GPT-NeoX). Everything is checked before a weight is
 * copied: the architecture, the tokenizer against the checkpoint's vocabulary, and every base tensor
 * of the model present in the folder with its shape, and nothing else there.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgumentError, DataError, RadkitError } from '../errors.js';
import { readSafetensors, readSafetensorsHeader } from '../io/safetensors.js';
import { causalLMConfigFromHF, checkpointFiles, readJson, type CausalLMArch, type CausalLMConfig } from '../nn/causal-lm.js';
import { Tensor } from '../tensor.js';
import type { HFReportTokenizer } from '../text/hf-report-tokenizer.js';
import type { Model } from './model.js';

/** config.json of an LM folder as a CausalLMConfig, checked to be `arch` and to fit `tokenizer` (`fn` names the caller in errors). */
export function readLmFolder(dir: string, tokenizer: HFReportTokenizer, o: { fn: string; arch: CausalLMArch; layout: string }): CausalLMConfig {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new ArgumentError(`${o.fn}: ${dir} has no config.json (a Hugging Face ${o.layout} folder is expected)`, 'ERR_INVALID_ARG', o.fn);
  const json = readJson(file, o.fn);
  const c = causalLMConfigFromHF(json, file);
  if (c.arch !== o.arch) throw new DataError({ file, message: `model_type must be ${o.arch} here (${o.layout}), got ${String(json.model_type)}` }, o.fn);
  if (tokenizer.vocabSize > c.vocabSize)
    throw new DataError(
      { file, message: `the tokenizer in ${dir} has ${tokenizer.vocabSize} ids but the checkpoint's vocabulary has ${c.vocabSize} rows (vocab_size): the tokenizer does not belong to this checkpoint` },
      o.fn,
    );
  for (const [name, id] of [['bos', tokenizer.bosId], ['eos', tokenizer.eosId], ['pad', tokenizer.padId]] as const)
    if (id < 0 || id >= c.vocabSize) throw new DataError({ file, message: `the tokenizer's ${name} id ${id} lies outside the checkpoint's vocabulary [0, ${c.vocabSize})` }, o.fn);
  return c;
}

export interface LoadLmOptions {
  /** Names the caller in errors. */
  fn: string;
  /** The model's parameters of the LM (default 'lm.'). */
  prefix?: string;
  /** The LM's layout in errors ("no such parameter in a <layout> of this config.json"). */
  layout: string;
  /**
   * Vocabulary extension: names (under the prefix) of the row tables the model holds with more
   * rows than the folder (the embedding and output layer of a joint text + image vocabulary). The
   * folder's rows are copied and every new row starts at the mean of the folder's rows, as
   * `nn.extendVocabulary` does.
   */
  grownRows?: readonly string[];
  /**
   * The model computes the LM in another dtype than the folder stores (a bfloat16 LM from a float32
   * or float16 checkpoint): round every weight to it. Without it only exact widenings are done.
   */
  convertDtype?: boolean;
}

/**
 * Copies the folder's weights into the model's base LM parameters (safetensors, by name; LoRA
 * adapters excluded). Names and shapes of every shard are checked against the model from the
 * headers first: a base parameter the folder lacks, a tensor without a place, or a shape that does
 * not fit is an ERR_CHECKPOINT listing them, with nothing copied.
 */
export function loadLmWeights(model: Model, dir: string, o: LoadLmOptions): void {
  const prefix = o.prefix ?? 'lm.';
  const files = checkpointFiles(dir);
  const headers = files.map((f) => readSafetensorsHeader(f).entries);
  const shapes = model.tensorShapes();
  const base = new Set(Object.keys(shapes).filter((n) => n.startsWith(prefix) && !n.includes('lora_')));
  const grown = new Set(o.grownRows ?? []);
  const problems: string[] = [];
  const seen = new Set<string>();
  files.forEach((f, i) => {
    for (const e of headers[i]) {
      const name = prefix + e.name;
      const want = shapes[name];
      if (!base.has(name)) {
        problems.push(`${e.name} (${path.basename(f)}): no such parameter in a ${o.layout} of this config.json`);
        continue;
      }
      seen.add(name);
      const fits = grown.has(e.name) ? e.shape.length === 2 && e.shape[1] === want[1] && e.shape[0] <= want[0] : e.shape.join() === want.join();
      if (!fits) problems.push(`${e.name}: [${e.shape.join(', ')}] in ${path.basename(f)}, [${want.join(', ')}] in the model${grown.has(e.name) ? ' (rows may grow)' : ''}`);
    }
  });
  for (const n of base) if (!seen.has(n)) problems.push(`${n.slice(prefix.length)}: not in the checkpoint`);
  if (problems.length)
    throw new RadkitError(`${o.fn}: the weights in ${dir} do not fit its config.json:\n  ${problems.slice(0, 20).join('\n  ')}${problems.length > 20 ? `\n  (and ${problems.length - 20} more)` : ''}`, 'ERR_CHECKPOINT', o.fn);
  // Shard by shard, a group of tensors at a time (about 512 MiB): a 3-7B checkpoint never sits in memory whole.
  files.forEach((f, i) => {
    for (const names of byteGroups(headers[i], 512 * 2 ** 20)) {
      const { tensors } = readSafetensors(f, { names });
      const extended: Record<string, Tensor> = {};
      try {
        for (const name of Object.keys(tensors))
          if (grown.has(name) && tensors[name].shape[0] < shapes[prefix + name][0]) {
            extended[name] = withMeanRows(tensors[name], shapes[prefix + name][0]);
            tensors[name].dispose();
            delete tensors[name];
          }
        model.loadTensors(prefix, tensors, { convertDtype: o.convertDtype });
        // the grown tables are float32 here; narrowing them to a bfloat16 model is asked for by its dtype
        if (Object.keys(extended).length) model.loadTensors(prefix, extended, { convertDtype: true });
      } finally {
        Object.values(tensors).forEach((t) => t.dispose());
        Object.values(extended).forEach((t) => t.dispose());
      }
    }
  });
}

/** Tensor names in file order, grouped so that each group holds at most `bytes` (a larger tensor alone). */
export function byteGroups(entries: { name: string; begin: number; end: number }[], bytes: number): string[][] {
  const groups: string[][] = [];
  let size = Infinity;
  for (const e of entries) {
    if (size + (e.end - e.begin) > bytes) groups.push([]), (size = 0);
    groups[groups.length - 1].push(e.name);
    size += e.end - e.begin;
  }
  return groups;
}

/** A [rows, d] float32 copy of `t` ([n, d], n <= rows) whose rows past n hold the mean of its rows (accumulated in float64). */
function withMeanRows(t: Tensor, rows: number): Tensor {
  const [n, d] = t.shape;
  const f = t.dtype === 'float32' ? t : t.to('float32');
  const src = f.toArray() as Float32Array;
  if (f !== t) f.dispose();
  const mean = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) mean[j] += src[r * d + j];
  const out = new Float32Array(rows * d);
  out.set(src);
  for (let r = n; r < rows; r++) for (let j = 0; j < d; j++) out[r * d + j] = mean[j] / n;
  return Tensor.from(out, [rows, d]);
}
