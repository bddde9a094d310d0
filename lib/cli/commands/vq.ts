// radkit import-vq / tokenize-images / decode: the VQ image tokenizer's commands (kind vqgan).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatFlags, UsageError, type CliFlags, type Command } from '../command.js';
import { RadkitError } from '../../errors.js';
import type { SplitName } from '../../data/r2gen.js';
import { fileSha256, readImageCodes, tokenizeImages } from '../../models/image-codes.js';
import { decodeCodes, greyPng, loadTamingWeights, vqgan, type VqPreset } from '../../models/vqgan.js';
import { readSafetensorsHeader } from '../../io/safetensors.js';
import { Tokenizer } from '../../text/tokenizer.js';
import { defaultOutputDir, findCheckpointDir, loadCheckpoint, writeCheckpoint, type LoadedCheckpoint } from '../../train/checkpoint.js';
import { DATA_FLAGS, dataset } from './models.js';

async function vqCheckpoint(dir: string, fn: string): Promise<{ ck: LoadedCheckpoint; weights: string }> {
  const found = findCheckpointDir(dir, fn);
  const ck = await loadCheckpoint(dir);
  if (ck.meta.kind !== 'vqgan') {
    ck.model.dispose();
    throw new UsageError(`${fn} needs a vqgan checkpoint; ${dir} holds ${ck.meta.kind}`);
  }
  return { ck, weights: path.join(found, 'weights.pt') };
}


const IMPORT_FLAGS: CliFlags = {
  vq: { type: 'string', required: true, arg: 'FILE', help: 'taming-transformers VQ-GAN weights (.safetensors: a state_dict saved with safetensors.torch.save_file)' },
  out: { type: 'string', required: true, arg: 'RUN', help: 'the vqgan run folder to write (must not hold a run yet)' },
  preset: { type: 'string', choices: ['paper', 'small'], default: 'paper', help: "the vqgan configuration of the weights (paper: taming's f16 at 256 px, 3 channels)" },
  'image-size': { type: 'integer', min: 16, max: 4096, arg: 'N', help: "image size the codes are taken at (default: the preset's resolution)" },
};

/**
 * `radkit import-vq`: a vqgan run holding a user's VQ-GAN weights unchanged (the paper keeps its
 * VQ-GAN frozen), so that tokenize-images, decode and `adamatch-cyclic --vq RUN` take them like a
 * trained run. The codebook size comes from the file; every other name and shape must fit the preset.
 */
export const importVqCommand: Command = {
  name: 'import-vq',
  summary: 'a vqgan run from taming-transformers VQ-GAN weights, unchanged (for tokenize-images, decode, adamatch-cyclic --vq)',
  get usage() {
    return `usage: radkit import-vq --vq FILE --out RUN [--preset paper|small] [--image-size N]
Writes RUN/checkpoints/last with the file's weights (no training); the codebook size is the rows of
quantize.embedding.weight. To fine-tune the weights instead: radkit train --model vqgan --vq FILE.
${formatFlags(IMPORT_FLAGS)}`;
  },
  flags: () => IMPORT_FLAGS,
  async run({ values: flags }) {
    const fn = 'radkit import-vq';
    const file = flags.vq as string, out = flags.out as string;
    const ck = path.join(out, 'checkpoints');
    if (fs.existsSync(ck)) throw new UsageError(`--out ${out} already holds a run (${ck}); give a new folder`);
    if (!fs.existsSync(file)) throw new RadkitError(`${fn}: ${file} does not exist`, 'ERR_INVALID_ARG', fn);
    const codebook = readSafetensorsHeader(file).entries.find((e) => e.name === 'quantize.embedding.weight');
    if (!codebook || codebook.shape.length !== 2) throw new RadkitError(`${fn}: ${file} has no quantize.embedding.weight [codes, dim]; it is not a taming VQ model`, 'ERR_INVALID_ARG', fn);
    const preset = flags.preset as VqPreset;
    const model = vqgan({ preset, nEmbed: codebook.shape[0], ...(flags['image-size'] !== undefined ? { resolution: flags['image-size'] as number } : {}) });
    try {
      loadTamingWeights(model, file);
      const imageSize = Number(model.config.resolution);
      await writeCheckpoint(path.join(ck, 'last'), model, {
        format: 'radkit-checkpoint',
        version: 1,
        kind: 'vqgan',
        config: model.config,
        tokenizer: Tokenizer.build([]).toJSON(),  // a vqgan run reads no report; the format wants one
        preprocessing: { imageSize, views: 1, fit: 'stretch', filter: 'lanczos3' },
        epoch: 0,
        step: 0,
        best: null,
        metrics: {},
        trainOptions: { importedFrom: path.resolve(file), weightsSha256: fileSha256(file) },
        savedAt: new Date().toISOString(),
      }, false);
      console.log(`${out}: vqgan run with the weights of ${file} (${codebook.shape[0]} codes, ${imageSize} px, preset ${preset})`);
    } finally {
      model.dispose();
    }
    return 0;
  },
};

const TOKENIZE_FLAGS: CliFlags = {
  checkpoint: { type: 'string', required: true, arg: 'RUN', help: 'vqgan run or checkpoint folder' },
  ...DATA_FLAGS,
  out: { type: 'string', arg: 'FILE', help: 'codes file (default RUN/image-codes/<data folder name>.json)' },
  splits: { type: 'string', default: 'train,val,test', help: 'comma-separated splits' },
  'batch-size': { type: 'integer', min: 1, default: 16, help: 'images per batch' },
};

export const tokenizeImagesCommand: Command = {
  name: 'tokenize-images',
  summary: 'cache the VQ codes of every image of a dataset (resumable)',
  get usage() {
    return `usage: radkit tokenize-images --checkpoint RUN --data DIR [options]
Encodes the first view of every study with a vqgan checkpoint and writes the codes to one JSON file
(atomically, every few batches). A rerun with the same checkpoint encodes only the studies missing;
a file of another checkpoint or image size is refused.
${formatFlags(TOKENIZE_FLAGS)}`;
  },
  flags: () => TOKENIZE_FLAGS,
  async run({ values: flags }) {
    const splits = String(flags.splits).split(',').map((s) => s.trim());
    for (const s of splits) if (!['train', 'val', 'test'].includes(s)) throw new UsageError(`--splits: '${s}' is not train, val or test`);
    const ds = dataset(flags);
    const ckDir = flags.checkpoint as string;
    const { ck, weights } = await vqCheckpoint(ckDir, 'radkit tokenize-images');
    const controller = new AbortController();
    const stop = () => controller.abort(new RadkitError('interrupted', 'ERR_ABORTED', 'radkit tokenize-images'));
    process.once('SIGINT', stop);
    try {
      const data = String(flags.data);
      const name = path.basename(fs.statSync(data).isDirectory() ? path.resolve(data) : path.dirname(path.resolve(data)));
      const file = (flags.out as string | undefined) ?? path.join(defaultOutputDir(ckDir, 'image-codes', 'radkit tokenize-images'), `${name}.json`);
      const r = await tokenizeImages(ck.model, ds, {
        file,
        weightsSha256: fileSha256(weights),
        imageSize: ck.meta.preprocessing.imageSize,
        fit: ck.meta.preprocessing.fit,
        filter: ck.meta.preprocessing.filter,
        splits: splits as SplitName[],
        batchSize: flags['batch-size'] as number,
        signal: controller.signal,
      });
      console.log(`${r.file}: ${r.encoded} studies encoded, ${r.kept} kept from before (${r.total} in ${splits.join(', ')})`);
    } finally {
      process.off('SIGINT', stop);
      ck.model.dispose();
    }
    return 0;
  },
};

const DECODE_FLAGS: CliFlags = {
  checkpoint: { type: 'string', required: true, arg: 'RUN', help: 'vqgan run or checkpoint folder' },
  codes: { type: 'string', arg: 'FILE', help: 'a codes file of radkit tokenize-images (with --ids, or every study)' },
  ids: { type: 'string', help: 'comma-separated study ids of --codes' },
  tokens: { type: 'string', arg: 'LIST', help: 'one image\'s codes, comma-separated, row-major (instead of --codes)' },
  out: { type: 'string', required: true, arg: 'PATH', help: 'PNG file (--tokens) or folder (--codes: ID.png each)' },
};

export const decodeCommand: Command = {
  name: 'decode',
  summary: 'VQ codes back to PNG images with a vqgan checkpoint',
  get usage() {
    return `usage: radkit decode --checkpoint RUN (--tokens LIST | --codes FILE [--ids A,B]) --out PATH
${formatFlags(DECODE_FLAGS)}`;
  },
  flags: () => DECODE_FLAGS,
  async run({ values: flags }) {
    if ((flags.tokens === undefined) === (flags.codes === undefined)) throw new UsageError('give exactly one of --tokens and --codes');
    if (flags.ids !== undefined && flags.codes === undefined) throw new UsageError('--ids needs --codes');
    const items: { id: string; codes: number[] }[] = [];
    let grid: [number, number] | undefined;
    if (flags.codes !== undefined) {
      const file = readImageCodes(flags.codes as string);
      grid = file.grid;
      const ids = flags.ids !== undefined ? String(flags.ids).split(',').map((s) => s.trim()) : Object.keys(file.codes);
      for (const id of ids) {
        if (!file.codes[id]) throw new UsageError(`--ids: '${id}' is not in ${String(flags.codes)}`);
        items.push({ id, codes: file.codes[id] });
      }
    } else {
      const codes = String(flags.tokens).split(',').map((s) => Number(s.trim()));
      if (!codes.every((c) => Number.isInteger(c) && c >= 0)) throw new UsageError('--tokens needs comma-separated whole numbers >= 0');
      const side = Math.round(Math.sqrt(codes.length));
      if (side * side !== codes.length) throw new UsageError(`--tokens: ${codes.length} codes do not make a square grid`);
      grid = [side, side];
      items.push({ id: 'image', codes });
    }
    const { ck } = await vqCheckpoint(flags.checkpoint as string, 'radkit decode');
    try {
      const out = flags.out as string;
      if (flags.codes !== undefined) fs.mkdirSync(out, { recursive: true });
      else fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
      for (const it of items) {
        const img = await decodeCodes(ck.model, it.codes, [1, grid[0], grid[1]]);
        const [, , , Hh, Ww] = img.shape;
        const file = flags.codes !== undefined ? path.join(out, `${it.id.replace(/[^A-Za-z0-9._-]/g, '_')}.png`) : out;
        fs.writeFileSync(file, await greyPng(img.data, Hh, Ww));
      }
      console.log(`wrote ${items.length} image${items.length === 1 ? '' : 's'} to ${out}`);
    } finally {
      ck.model.dispose();
    }
    return 0;
  },
};
