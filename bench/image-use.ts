/**
 * How much a report generator reads its images: the teacher-forced test-report cross-entropy with
 * each study's own images and with the next study's (the batch's images rolled by one). Equal values
 * mean the images change nothing the model predicts; a gap is what the images tell it.
 */
import type { R2GenDataset } from '../lib/data/r2gen.js';
import { TensorBatch, type Model } from '../lib/models/model.js';
import type { ReportTokenizer } from '../lib/text/report-tokenizer.js';
import { splitLoader, type SplitOptions } from '../lib/train/evaluate.js';

/** `part` picks the loss part that is the report cross-entropy (models may add other terms to the loss); the whole loss when the part is absent. */
export async function imageUse(model: Model, dataset: R2GenDataset, tokenizer: ReportTokenizer, preprocessing: SplitOptions['preprocessing'], part: string): Promise<{ own: number; rolled: number }> {
  let own = 0, rolled = 0, n = 0;
  for await (const batch of splitLoader(dataset, { split: 'test', preprocessing, batchSize: 16, workers: 0 }, tokenizer, 16)) {
    const B = batch.ids.length;
    if (!batch.images || B < 2) continue;
    const data = batch.images.data as Float32Array, per = data.length / B;
    const rolledImages = new Float32Array(data.length);
    for (let b = 0; b < B; b++) rolledImages.set(data.subarray(((b + 1) % B) * per, ((b + 1) % B + 1) * per), b * per);
    for (const [images, add] of [[data, (x: number) => (own += x * B)], [rolledImages, (x: number) => (rolled += x * B)]] as const) {
      const tb = new TensorBatch({ ...batch, images: { ...batch.images, data: images } });
      try {
        const r = await model.evalLoss(tb);
        add(r.parts[part] ?? r.loss);
      } finally {
        tb.dispose();
      }
    }
    n += B;
  }
  return { own: own / n, rolled: rolled / n };
}
