/** Worker thread for `synthesize`: renders a range of studies, writes their PNGs, returns the metadata. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { renderStudy, type Split, type StudyRecord } from './study.js';

export interface SynthJob {
  seed: number;
  split: Split;
  start: number;
  end: number;
  size: number;
  views: 1 | 2;
  imageDir: string;
}

/** Renders studies [start, end) of a split and writes their images. Used in-process and by the worker. */
export function runJob(job: SynthJob): StudyRecord[] {
  const out: StudyRecord[] = [];
  for (let i = job.start; i < job.end; i++) {
    const st = renderStudy(job.seed, job.split, i, job.size, job.views);
    st.image_path.forEach((p, k) => {
      const file = join(job.imageDir, p);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, st.pngs[k]);
    });
    out.push({ id: st.id, split: st.split, report: st.report, labels: st.labels, boxes: st.boxes, image_path: st.image_path });
  }
  return out;
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (job: SynthJob) => {
    try {
      port.postMessage({ ok: true, records: runJob(job) });
    } catch (e) {
      port.postMessage({ ok: false, error: (e as Error).message });
    }
  });
}
