/** `radkit.metrics`: report-generation, clinical-efficacy and retrieval metrics (pure TypeScript). */
export { bleu, bleuWithStats, type BleuOptions, type BleuResult } from './bleu.js';
export { rougeL, rougeLWithStats, rougeLSentence, lcsLength, ROUGE_BETA, type RougeResult } from './rouge.js';
export { ciderD, ciderDWithStats, type CiderOptions, type CiderResult } from './cider.js';
export {
  meteor,
  meteorWithStats,
  meteorSegment,
  type MeteorModule,
  type MeteorOptions,
  type MeteorResult,
  type MeteorScored,
  type MeteorSettings,
  type MeteorStats,
} from './meteor.js';
export { snowballEnglishStem } from './stemmer.js';
export { loadWordNet, defaultWordNetPath, type WordNetIndex } from './wordnet.js';
export { ENGLISH_FUNCTION_WORDS, IRREGULAR_BASES } from './meteor-data.js';
export {
  clinical,
  type ClinicalOptions,
  type ClinicalResult,
  type ObservationScore,
  type PRF,
  type UncertainPolicy,
} from './clinical.js';
export {
  retrieval,
  type DirectionScores,
  type RetrievalOptions,
  type RetrievalResult,
  type SimilarityMatrix,
} from './retrieval.js';
export {
  evaluate,
  r2genTruncate,
  type EvaluateOptions,
  type EvaluateResult,
  type MetricName,
  type ReferenceMode,
} from './evaluate.js';
export { psnr, ssim, mse } from './image.js';
export { frechetDistance, frechetDistanceOfGaussians, meanAndCovariance, symmetricEigen, labelAgreement } from './frechet.js';
