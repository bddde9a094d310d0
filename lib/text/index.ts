export { CHEXPERT_OBSERVATIONS, type Observation, type LabelValue, type ReportLabels } from './chexpert.js';
export { label, labelSentence, splitSentences, emptyLabels, finalizeLabels } from './labeler.js';
