// Worker thread of bench/data.ts: decodes files with radkit's first (pure JavaScript) decoder, to
// time it with 1 and 2 workers as the loader ran it before sharp.
import { readFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { decodeResize, imageLibs } from '../lib/data/image-reference.js';

parentPort!.on('message', (m: { id: number; file: string; size: number }) => {
  const r = decodeResize(readFileSync(m.file), { height: m.size, width: m.size }, imageLibs());
  parentPort!.postMessage({ id: m.id, n: r.data.length });
});
