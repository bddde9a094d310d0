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
