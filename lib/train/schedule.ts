/** Learning-rate schedules, as a multiplier of the base learning rates. */
export type Schedule =
  | { kind: 'step'; /** multiply by gamma every `everyEpochs` epochs (XProNet: 0.8 per epoch) */ gamma?: number; everyEpochs?: number }
  | {
      kind: 'cosine';
      /** linear warm-up over this many steps, then cosine to 0 at the last step */
      warmupSteps?: number;
      /** or over this fraction of all steps (AdaMatch: 0.25); warmupSteps wins when both are given */
      warmupFraction?: number;
    }
  | { kind: 'constant' };

export function lrFactor(s: Schedule, epoch: number, step: number, totalSteps: number): number {
  switch (s.kind) {
    case 'step':
      return Math.pow(s.gamma ?? 0.8, Math.floor(epoch / (s.everyEpochs ?? 1)));
    case 'cosine': {
      const warm = s.warmupSteps ?? Math.round((s.warmupFraction ?? 0) * totalSteps);
      if (step < warm) return (step + 1) / warm;
      const t = Math.min(1, (step - warm) / Math.max(1, totalSteps - warm));
      return 0.5 * (1 + Math.cos(Math.PI * t));
    }
    default:
      return 1;
  }
}
