/** The 14 CheXpert observations, named exactly as CheXpert names them, in CheXpert's order. */
export const CHEXPERT_OBSERVATIONS = [
  'No Finding',
  'Enlarged Cardiomediastinum',
  'Cardiomegaly',
  'Lung Opacity',
  'Lung Lesion',
  'Edema',
  'Consolidation',
  'Pneumonia',
  'Atelectasis',
  'Pneumothorax',
  'Pleural Effusion',
  'Pleural Other',
  'Fracture',
  'Support Devices',
] as const;

export type Observation = (typeof CHEXPERT_OBSERVATIONS)[number];

/** A CheXpert-style label for one observation in one report. */
export type LabelValue = 'positive' | 'negative' | 'uncertain' | 'absent';

/** Labels of one report: one value per observation. */
export type ReportLabels = Record<Observation, LabelValue>;

/**
 * The label state every model receives per observation: 0 absent (not mentioned), 1 positive,
 * 2 negative, 3 uncertain (native/models/system.h reads the same numbers).
 */
export const LABEL_STATES: Readonly<Record<LabelValue, number>> = { absent: 0, positive: 1, negative: 2, uncertain: 3 };

/** Row-major [reports.length, 14] label states in CheXpert order. */
export function labelStateMatrix(labels: readonly ReportLabels[]): Int32Array {
  const n = CHEXPERT_OBSERVATIONS.length;
  const m = new Int32Array(labels.length * n);
  labels.forEach((l, b) => CHEXPERT_OBSERVATIONS.forEach((o, j) => (m[b * n + j] = LABEL_STATES[l[o]])));
  return m;
}
