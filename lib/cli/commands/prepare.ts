import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatFlags, UsageError, type CliFlags, type Command } from '../command.js';
import { prepare } from '../../data/cache.js';
import { RESIZE_FILTERS } from '../../data/image.js';
import { readR2Gen, SPLITS, type SplitName } from '../../data/r2gen.js';
import { RadkitError } from '../../errors.js';

const FLAGS: CliFlags = {
  data: { type: 'string', required: true, arg: 'DIR|annotation.json', help: 'dataset folder (with annotation.json) or the annotation file' },
  size: { type: 'integer', min: 1, max: 8192, default: 224, help: 'output side in pixels (square)' },
  views: { type: 'integer', min: 1, max: 64, help: 'prepare the first N images of each study (default: all)' },
  fit: { type: 'string', choices: ['stretch', 'center-crop'], default: 'stretch', help: 'resize to the square, or keep the aspect ratio and cut the centre' },
  filter: { type: 'string', choices: RESIZE_FILTERS, default: 'lanczos3', help: 'resize kernel (libvips)' },
  splits: { type: 'string', arg: 'train,val,test', help: 'splits to prepare (default: all)' },
  out: { type: 'string', arg: 'DIR', help: 'cache folder (default: <dataset>/prepared/<size>x<size>-<fit>-<filter>, where the loader looks)' },
  'on-error': { type: 'string', choices: ['throw', 'skip'], default: 'throw', help: 'a corrupt or missing image: stop (default), or record it and go on' },
  'shard-mb': { type: 'number', min: 1, max: 4096, default: 256, help: 'shard size in MB' },
  workers: { type: 'integer', min: 1, max: 64, help: 'images decoded at once (default: cores, at most 4)' },
};

const USAGE = `usage: radkit prepare --data DIR --size N [options]

Decodes every image of a dataset once (libvips) into a prepared cache of uint8 shards, which
DataLoader and radkit train then read instead of decoding (when the size, fit and filter match).
Interrupted (Ctrl-C, kill -9), run it again: complete shards are kept and it goes on. A cache whose
source images changed afterwards is refused by the loader until it is prepared again.

${formatFlags(FLAGS)}`;

export const prepareCommand: Command = {
  name: 'prepare',
  summary: 'decode a dataset\'s images once into a prepared cache (uint8 shards)',
  usage: USAGE,
  flags: FLAGS,
  async run({ values }) {
    const data = values.data as string;
    if (!fs.existsSync(data)) throw new RadkitError(`--data ${data}: no such file or folder`, 'ERR_DATA', 'cli');
    const ann = fs.statSync(data).isDirectory() ? path.join(data, 'annotation.json') : data;
    let splits: SplitName[] | undefined;
    if (typeof values.splits === 'string') {
      splits = values.splits.split(',').map((s) => s.trim()).filter(Boolean) as SplitName[];
      const bad = splits.find((s) => !SPLITS.includes(s));
      if (bad || splits.length === 0) throw new UsageError(`--splits takes a comma-separated list of ${SPLITS.join(', ')}, got '${values.splits}'`);
    }
    const ds = readR2Gen(ann, { splits });
    const controller = new AbortController();
    const stop = () => controller.abort(new RadkitError('radkit prepare: interrupted', 'ERR_ABORTED', 'cli'));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const r = await prepare(ds, {
        size: values.size as number,
        fit: values.fit as 'stretch',
        filter: values.filter as 'lanczos3',
        views: values.views as number | undefined,
        splits,
        out: values.out as string | undefined,
        onError: values['on-error'] as 'throw',
        shardMB: values['shard-mb'] as number,
        workers: values.workers as number | undefined,
        signal: controller.signal,
        progress: (p) => console.log(`radkit prepare: shard ${p.shard}/${p.shards} ${p.kept ? 'kept (unchanged)' : 'written'}, ${p.images}/${p.total} images`),
      });
      const m = r.manifest;
      console.log(
        `radkit prepare: ${m.images} images at ${m.preprocessing.height}x${m.preprocessing.width} (${m.preprocessing.fit}, ${m.preprocessing.filter}) in ${m.shards} shards -> ${r.dir} ` +
          `(${r.writtenShards} written, ${r.keptShards} kept, ${r.seconds.toFixed(1)} s${m.skipped.length ? `, ${m.skipped.length} skipped` : ''})`,
      );
      for (const s of m.skipped) console.log(`radkit prepare: skipped ${s.file} (${s.entry}): ${s.message}`);
      return 0;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
};
