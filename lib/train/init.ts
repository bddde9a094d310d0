// Staged runs: a model starts from another run's weights (pre-train, then fine-tune).
import { ArgumentError, RadkitError } from '../errors.js';
import type { Model } from '../models/model.js';
import { findModelKind } from '../models/registry.js';
import type { Tensor } from '../tensor.js';
import { findCheckpointDir, loadCheckpoint } from './checkpoint.js';

/** Where initial weights come from: a run (its best checkpoint, else its last) or a checkpoint folder, and which names. */
export interface InitSpec {
  run: string;
  /** Only tensors whose names start with this are copied (default: all). */
  prefix?: string;
  /**
   * Copy what fits and report the rest as skipped. Default false: a source tensor under the prefix
   * without a namesake of the same shape in the model is an error listing every such tensor.
   */
  partial?: boolean;
}

/** What an initialisation did, name by name (written to RUN/init.json). */
export interface InitReport {
  from: string;
  kind: string;
  epoch: number;
  prefix: string;
  /** Tensors copied (same name and shape). */
  copied: string[];
  /** Tensors of the source under the prefix that were not copied, and why. */
  skipped: { name: string; reason: string }[];
  /** Tensors of the new model left as initialised (no source tensor of that name under the prefix). */
  new: string[];
}

/** Parses `RUN[:prefix]` (the CLI's `--init`); a Windows drive letter is not taken for a separator. */
export function parseInitSpec(spec: string | InitSpec, fn = 'train'): InitSpec {
  if (typeof spec === 'object' && spec && typeof spec.run === 'string' && spec.run) return { run: spec.run, prefix: spec.prefix ?? '', ...(spec.partial ? { partial: true } : {}) };
  if (typeof spec !== 'string' || !spec) throw new ArgumentError(`${fn}: init must be 'RUN[:prefix]' or { run, prefix? }, got ${JSON.stringify(spec)}`, 'ERR_INVALID_ARG', fn);
  const i = spec.lastIndexOf(':');
  if (i > 1 || (i === 1 && !/^[A-Za-z]$/.test(spec[0]))) return { run: spec.slice(0, i), prefix: spec.slice(i + 1) };
  return { run: spec, prefix: '' };
}

/**
 * Copies the weights named like `spec.prefix*` from another run into `model`. Names and shapes must
 * match: a tensor that does not fit is an ERR_CHECKPOINT listing every misfit (nothing is written),
 * or with `partial` it is skipped and reported. Also ERR_CHECKPOINT when the source has no tensor
 * under the prefix or none fits.
 */
export async function initFromRun(model: Model, spec: InitSpec, fn = 'train'): Promise<InitReport> {
  const dir = findCheckpointDir(spec.run, fn);
  const prefix = spec.prefix ?? '';
  const source = await loadCheckpoint(dir);
  let tensors: Record<string, Tensor> = {};
  try {
    tensors = source.model.namedTensors();
    const chosen = Object.fromEntries(Object.entries(tensors).filter(([name]) => name.startsWith(prefix)));
    const names = Object.keys(chosen);
    if (!names.length) throw new RadkitError(`${fn}: the ${source.meta.kind} checkpoint ${dir} has no tensor whose name starts with '${prefix}'`, 'ERR_CHECKPOINT', fn);
    // Check every name and shape first (nothing is written on an error).
    const target = model.tensorShapes();
    const misfits = names.flatMap((n) => {
      const have = target[n];
      const want = chosen[n].shape;
      if (!have) return [{ name: n, reason: `no tensor of that name in this ${model.kind} model` }];
      // A 3-channel first convolution loads into a grey (1-channel) one, summed over its inputs.
      const grey = want.length === 4 && have.length === 4 && want[1] === 3 && have[1] === 1 && want[0] === have[0];
      return grey || JSON.stringify(have) === JSON.stringify(want) ? [] : [{ name: n, reason: `shape [${want.join(', ')}] does not fit [${have.join(', ')}]` }];
    });
    if (misfits.length && !spec.partial)
      throw new RadkitError(
        `${fn}: ${misfits.length} of the ${names.length} '${prefix}*' tensors of ${dir} (${source.meta.kind}) do not fit this ${model.kind} model; nothing was copied:\n` +
          misfits.map((m) => `  ${m.name}: ${m.reason}`).join('\n') +
          `\n(narrow the prefix, or allow a partial copy: init { partial: true } / --init-partial)`,
        'ERR_CHECKPOINT',
        fn,
      );
    const disagreements = (findModelKind(model.kind)?.initMustMatch ?? [])
      .filter((rule) => rule.sourceKind === source.meta.kind && names.some((n) => n.startsWith(rule.tensors)))
      .flatMap((rule) =>
        Object.entries(rule.keys).flatMap(([key, absent]) => {
          const theirs = source.meta.config[key] ?? absent, ours = model.config[key] ?? absent;
          return theirs === ours ? [] : [`  config.${key}: ${JSON.stringify(theirs)} in the ${source.meta.kind} run, ${JSON.stringify(ours)} here (the copied '${rule.tensors}*' weights were trained under its value)`];
        }),
      );
    if (disagreements.length)
      throw new RadkitError(`${fn}: this ${model.kind} model's configuration disagrees with ${dir}; nothing was copied:\n${disagreements.join('\n')}`, 'ERR_CHECKPOINT', fn);
    if (misfits.length === names.length)
      throw new RadkitError(`${fn}: none of the ${names.length} '${prefix}*' tensors of ${dir} (${source.meta.kind}) fits this ${model.kind} model (same name and shape); nothing was copied`, 'ERR_CHECKPOINT', fn);
    const r = model.loadTensors('', chosen, { skipMismatched: true });
    const skipped = [...r.skipped, ...r.unexpected.map((name) => ({ name, reason: `no tensor of that name in this ${model.kind} model` }))];
    const skippedNames = new Set(skipped.map((s) => s.name));
    return {
      from: dir,
      kind: source.meta.kind,
      epoch: source.meta.epoch,
      prefix,
      copied: names.filter((n) => !skippedNames.has(n)),
      skipped,
      new: r.missing,
    };
  } finally {
    Object.values(tensors).forEach((t) => t.dispose());
    source.model.dispose();
  }
}
