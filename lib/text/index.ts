export { CHEXPERT_OBSERVATIONS, LABEL_STATES, labelStateMatrix, type Observation, type LabelValue, type ReportLabels } from './chexpert.js';
export { label, labelSentence, splitSentences, emptyLabels, finalizeLabels } from './labeler.js';
export {
  Tokenizer,
  cleanReportIuXray,
  cleanReportMimicCxr,
  cleanReportFixed,
  type TokenizerMode,
  type TokenizerOptions,
  type TokenizerJSON,
  type EncodedBatch,
  type R2GenDataset,
} from './tokenizer.js';
export { extractEntities, buildTextualCodebook, ENTITY_GROUPS, type EntityGroup, type Entity, type TextualCodebook } from './entities.js';
export { WordPieceTokenizer, bertBasicTokenize, type WordPieceOptions, type WordPieceJSON } from './wordpiece.js';
export { tokenizerFromJSON, loadTokenizer, type ReportTokenizer, type ReportTokenizerJSON } from './report-tokenizer.js';
export { HFTokenizer, isHFTokenizerJSON } from './hf-tokenizer.js';
