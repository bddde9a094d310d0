/** Training progress events, as the trainer emits them. */
export type ProgressEvent =
  | { type: 'start'; epochs: number; stepsPerEpoch: number; startEpoch: number; parameters: number; frozen: number }
  | { type: 'init'; from: string; prefix: string; copied: number; skipped: number; new: number }
  /** The model trains on labels radkit's labeler derived from the reports (the dataset has none). */
  | { type: 'labels'; source: 'labeler'; studies: number }
  | { type: 'distributed'; worldSize: number; terms: string }
  /** A resumed run continues with other settings than it recorded (forceNewSettings). */
  | { type: 'settings'; afterEpoch: number; differences: string[] }
  | { type: 'step'; epoch: number; step: number; stepInEpoch: number; stepsPerEpoch: number; loss: number; parts: Record<string, number>; lr: number; imagesPerSecond: number }
  | { type: 'epoch'; epoch: number; trainLoss: number; seconds: number; metrics?: Record<string, number>; best: boolean }
  | { type: 'checkpoint'; epoch: number; path: string }
  | { type: 'done'; epochs: number; best: { metric: string; score: number; epoch: number } | null };

/** Renders events: a one-line bar on a terminal, JSON lines otherwise, or nothing. */
export function progressPrinter(mode: 'auto' | 'bar' | 'json' | 'none' = 'auto', stream: NodeJS.WriteStream = process.stderr) {
  const m = mode === 'auto' ? (stream.isTTY ? 'bar' : 'json') : mode;
  return (e: ProgressEvent): void => {
    if (m === 'none') return;
    if (m === 'json') {
      stream.write(`${JSON.stringify(e)}\n`);
      return;
    }
    if (e.type === 'step') {
      const width = 24;
      const done = Math.round((e.stepInEpoch / e.stepsPerEpoch) * width);
      stream.write(`\r epoch ${e.epoch + 1} [${'#'.repeat(done)}${'.'.repeat(width - done)}] ${e.stepInEpoch}/${e.stepsPerEpoch} loss ${e.loss.toFixed(3)} ${e.imagesPerSecond.toFixed(1)} img/s   `);
    } else if (e.type === 'epoch') {
      const ms = e.metrics ? ' ' + Object.entries(e.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(' ') : '';
      stream.write(`\n epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(3)} (${e.seconds.toFixed(0)} s)${ms}${e.best ? ' (best)' : ''}\n`);
    } else if (e.type === 'labels') {
      stream.write(` labels: CheXpert labels of ${e.studies} studies derived from their reports by radkit's rule labeler (text.label); the dataset has none\n`);
    } else if (e.type === 'settings') {
      stream.write(` resuming after epoch ${e.afterEpoch} with other settings than recorded (forced):\n   ${e.differences.join('\n   ')}\n`);
    } else if (e.type === 'init') {
      stream.write(` initialised from ${e.from}${e.prefix ? ` (${e.prefix}*)` : ''}: ${e.copied} tensors copied, ${e.skipped} skipped, ${e.new} left new\n`);
    } else if (e.type === 'start') {
      stream.write(` training ${e.parameters.toLocaleString()} parameters${e.frozen ? ` (${e.frozen} tensors frozen)` : ''}, ${e.epochs} epochs x ${e.stepsPerEpoch} steps${e.startEpoch ? `, resuming after epoch ${e.startEpoch}` : ''}\n`);
    }
  };
}
