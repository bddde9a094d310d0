/**
 * AdaMatch-Cyclic's joint vocabulary and instruction prompts (seed 000 section 3.2, Figs. 3-4,
 * supplementary section 8).
 *
 * Joint vocabulary: the text ids of the loaded LM's tokenizer first, then one id per VQ code:
 * image token = code + textVocabSize (the paper adds 50,821 to a dolly-v2-3b vocabulary; the offset
 * here is the vocabulary size of the LM actually loaded, since dolly's embedding has 50,280 rows,
 * not 50,821).
 *
 * Prompts (Figs. 3-4), one line per section, a single space after each key; image tokens stand in
 * the prompt as vocabulary ids, and `renderPrompt` writes them as the figures print them
 * ("66, 260, 379"):
 *
 *   Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.
 *   ### Instruction: Utilize the entered chest X-ray images to generate comprehensive free-text radiology reports.
 *   ### Input: <image tokens>
 *   ### Keywords: Pleural effusions, tube
 *   ### Response: <report>
 *
 *   ... ### Instruction: Create an AP chest X-ray image that matches the free-text radiology reports.
 *   ### Input: <report>
 *   ### Keypatches: <one image token per keypatch>
 *   ### Response: <image tokens>
 *
 * The figures' line breaks inside a sentence are the printed column's; the sentences are joined
 * here. Without hints (the paper's Table 7 "no hints" row) the Keywords / Keypatches line is left
 * out. For a from-scratch LM over radkit's word vocabulary (the `small` preset), whose vocabulary
 * holds no instruction words, `specialsPrompt` gives the same sections as task tokens:
 * [0 = PAD/BOS/EOS][text ids][<i2r> <r2i> <img> <kw> <kp> <resp>][codes].
 */
import { ArgumentError } from '../errors.js';

export const CYCLIC_PREAMBLE = 'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.';
export const REPORT_INSTRUCTION = 'Utilize the entered chest X-ray images to generate comprehensive free-text radiology reports.';
export const IMAGE_INSTRUCTION = 'Create an AP chest X-ray image that matches the free-text radiology reports.';

/** A prompt as text pieces and runs of VQ codes (not yet offset into the joint vocabulary). */
export type PromptPart = { text: string } | { codes: number[] };

/** Image -> report prompt (Fig. 3); `keywords` null leaves the Keywords line out. The response follows. */
export function reportPrompt(imageCodes: readonly number[], keywords: readonly string[] | null): PromptPart[] {
  const parts: PromptPart[] = [{ text: `${CYCLIC_PREAMBLE}\n### Instruction: ${REPORT_INSTRUCTION}\n### Input: ` }, { codes: [...imageCodes] }];
  if (keywords) parts.push({ text: `\n### Keywords: ${keywords.join(', ')}` });
  parts.push({ text: '\n### Response: ' });
  return parts;
}

/** Report -> image prompt (Fig. 4); `keypatchCodes` null leaves the Keypatches line out. The image tokens follow. */
export function imagePrompt(report: string, keypatchCodes: readonly number[] | null): PromptPart[] {
  const parts: PromptPart[] = [{ text: `${CYCLIC_PREAMBLE}\n### Instruction: ${IMAGE_INSTRUCTION}\n### Input: ${report}` }];
  if (keypatchCodes) parts.push({ text: '\n### Keypatches: ' }, { codes: [...keypatchCodes] });
  parts.push({ text: '\n### Response: ' });
  return parts;
}

/** The prompt as the figures print it (codes as "66, 260, 379"). */
export function renderPrompt(parts: readonly PromptPart[]): string {
  return parts.map((p) => ('text' in p ? p.text : p.codes.join(', '))).join('');
}

/** Text ids [0, textVocabSize), then `codes` image ids. */
export class JointVocabulary {
  constructor(
    readonly textVocabSize: number,
    readonly codes: number,
  ) {
    if (!Number.isInteger(textVocabSize) || textVocabSize < 1) throw new ArgumentError(`JointVocabulary: textVocabSize must be a positive whole number, got ${textVocabSize}`, 'ERR_INVALID_ARG', 'JointVocabulary');
    if (!Number.isInteger(codes) || codes < 2) throw new ArgumentError(`JointVocabulary: codes must be a whole number >= 2, got ${codes}`, 'ERR_INVALID_ARG', 'JointVocabulary');
  }
  get size(): number {
    return this.textVocabSize + this.codes;
  }
  /** The first image id (the offset added to every code). */
  get imageStart(): number {
    return this.textVocabSize;
  }
  imageToken(code: number): number {
    if (!Number.isInteger(code) || code < 0 || code >= this.codes) throw new ArgumentError(`JointVocabulary: code ${code} is outside [0, ${this.codes})`, 'ERR_INVALID_ARG', 'JointVocabulary.imageToken');
    return code + this.textVocabSize;
  }
  isImageToken(id: number): boolean {
    return id >= this.textVocabSize && id < this.size;
  }
  /** The code of an image id (an error for a text id). */
  codeOf(id: number): number {
    if (!this.isImageToken(id)) throw new ArgumentError(`JointVocabulary: id ${id} is not an image token ([${this.textVocabSize}, ${this.size}))`, 'ERR_INVALID_ARG', 'JointVocabulary.codeOf');
    return id - this.textVocabSize;
  }
}

/** Ids of a prompt: text pieces through `encodeText` (no BOS/EOS added), codes offset into the joint vocabulary. */
export function encodePrompt(parts: readonly PromptPart[], encodeText: (text: string) => number[], vocab: JointVocabulary): number[] {
  const ids: number[] = [];
  for (const p of parts) {
    if ('codes' in p) for (const c of p.codes) ids.push(vocab.imageToken(c));
    else
      for (const id of encodeText(p.text)) {
        if (!(Number.isInteger(id) && id >= 0 && id < vocab.textVocabSize)) throw new ArgumentError(`encodePrompt: the text tokenizer gave id ${id}, outside the text vocabulary [0, ${vocab.textVocabSize})`, 'ERR_INVALID_ARG', 'encodePrompt');
        ids.push(id);
      }
  }
  return ids;
}

/** The task tokens of the specials layout, in vocabulary order after the text ids. */
export const TASK_TOKENS = ['<i2r>', '<r2i>', '<img>', '<kw>', '<kp>', '<resp>'] as const;
export type TaskToken = (typeof TASK_TOKENS)[number];

/**
 * The specials layout for an LM over radkit's word vocabulary (ids 1..V-1 words, 0 PAD/BOS/EOS):
 * [0 PAD/BOS/EOS][text][6 task tokens][codes]. `size` counts all of them.
 */
export class SpecialsVocabulary extends JointVocabulary {
  /** textIds: radkit's Tokenizer ids 0..textIds-1 (vocabSize + 1). */
  constructor(textIds: number, codes: number) {
    super(textIds + TASK_TOKENS.length, codes);
    this.textIds = textIds;
  }
  readonly textIds: number;
  task(t: TaskToken): number {
    return this.textIds + TASK_TOKENS.indexOf(t);
  }
}

/**
 * The same sections as task tokens (no instruction words):
 *   image -> report: <i2r> <img> codes [<kw> keyword words] <resp>, then the report and 0 (EOS)
 *   report -> image: <r2i> report words [<kp> <img> keypatch codes] <resp> <img>, then the codes
 * `words` encodes text to radkit word ids (no BOS/EOS).
 */
export function specialsPrompt(direction: 'report' | 'image', v: SpecialsVocabulary, input: { codes?: readonly number[]; report?: string }, hints: readonly string[] | readonly number[] | null, words: (text: string) => number[]): number[] {
  const img = (codes: readonly number[]) => [v.task('<img>'), ...codes.map((c) => v.imageToken(c))];
  if (direction === 'report') {
    if (!input.codes) throw new ArgumentError('specialsPrompt: the image -> report prompt needs input.codes', 'ERR_INVALID_ARG', 'specialsPrompt');
    const ids = [v.task('<i2r>'), ...img(input.codes)];
    if (hints) ids.push(v.task('<kw>'), ...(hints as string[]).flatMap((k) => words(k)));
    ids.push(v.task('<resp>'));
    return ids;
  }
  if (input.report === undefined) throw new ArgumentError('specialsPrompt: the report -> image prompt needs input.report', 'ERR_INVALID_ARG', 'specialsPrompt');
  const ids = [v.task('<r2i>'), ...words(input.report)];
  if (hints) ids.push(v.task('<kp>'), ...img(hints as number[]));
  ids.push(v.task('<resp>'), v.task('<img>'));
  return ids;
}

/** Prompts left-padded to one length [B, T] (int64 ids and 0/1 validity), so the last position of every row is a real token, as generation wants. */
export function leftPadPrompts(prompts: readonly number[][]): { ids: BigInt64Array; valid: BigInt64Array; shape: [number, number] } {
  const T = Math.max(...prompts.map((p) => p.length));
  const B = prompts.length;
  const ids = new BigInt64Array(B * T), valid = new BigInt64Array(B * T);
  prompts.forEach((p, b) => {
    const off = T - p.length;
    p.forEach((id, t) => {
      ids[b * T + off + t] = BigInt(id);
      valid[b * T + off + t] = 1n;
    });
  });
  return { ids, valid, shape: [B, T] };
}
