/**
 * OTDRG (seed 002): what its three kinds share. The ResNet encoder presets (the same configuration
 * keys in `ircp`, `diseasenet` and `otdrg`, so `encoder.*` moves between the stages with --init),
 * the disease labels as text ("observation: state", eq. 9's states), the paper's prompt, and the
 * checked configuration built from a preset and user options.
 */
import { ArgumentError } from '../errors.js';
import { CHEXPERT_OBSERVATIONS } from '../text/chexpert.js';
import type { NativeConfig } from '../../typings/model.js';

export type OtdrgPreset = 'small' | 'paper' | 'tiny';

/** The presets of the three kinds: the design's CPU size, the paper's, and a tiny one for tests and smoke runs. */
export const OTDRG_PRESETS = ['small', 'paper', 'tiny'] as const;

/**
 * Visual encoders. small: the ResNet 16-96 of the design (one BasicBlock per stage); paper: a
 * ResNet-18 (the paper's Swin-B is not built in radkit; recorded in RESULTS); tiny: for tests.
 */
export const OTDRG_ENCODERS = {
  small: { resnetWidths: [16, 24, 32, 64, 96], resnetBlocks: [1, 1, 1, 1] },
  paper: { resnetWidths: [64, 64, 128, 256, 512], resnetBlocks: [2, 2, 2, 2] },
  tiny: { resnetWidths: [4, 8, 8, 8, 16], resnetBlocks: [1, 1, 1, 1] },
} as const;

/** The prompt of section 3.3.3, verbatim. */
export const OTDRG_PROMPT = 'Generate a comprehensive diagnosis report for this radiology image. ###Focus on diagnostic accuracy###';

/** Eq. 9's states in radkit's order (LABEL_STATES: 0 absent, 1 positive, 2 negative, 3 uncertain) as words. */
export const OTDRG_STATE_WORDS = ['unmentioned', 'positive', 'negative', 'unclear'] as const;

/** "observation: state" (lower case), e.g. "pleural effusion: positive". */
export function labelString(observation: number, state: number): string {
  return `${CHEXPERT_OBSERVATIONS[observation].toLowerCase()}: ${OTDRG_STATE_WORDS[state]}`;
}

/** The 14 x 4 label strings in the order of the native table (observation-major, then state). */
export function allLabelStrings(): string[] {
  return CHEXPERT_OBSERVATIONS.flatMap((_, k) => OTDRG_STATE_WORDS.map((_, s) => labelString(k, s)));
}

export function encoderDefaults(preset: string, kind: string): NativeConfig {
  const e = OTDRG_ENCODERS[preset as OtdrgPreset];
  if (!e) throw new ArgumentError(`${kind}: preset must be one of ${OTDRG_PRESETS.join(', ')}, got '${String(preset)}'`, 'ERR_INVALID_ARG', kind);
  return { resnetWidths: [...e.resnetWidths], resnetBlocks: [...e.resnetBlocks] };
}

/** The defaults with the user's options over them; an unknown key is an ERR_INVALID_ARG listing the known ones. */
export function mergeConfig(kind: string, defaults: NativeConfig, options: Record<string, unknown>): NativeConfig {
  const cfg = { ...defaults };
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    if (!(k in cfg)) throw new ArgumentError(`${kind}: unknown option '${k}' (configuration keys: ${Object.keys(cfg).join(', ')})`, 'ERR_INVALID_ARG', kind);
    cfg[k] = typeof v === 'boolean' ? Number(v) : (v as number | string | number[]);
  }
  return cfg;
}
