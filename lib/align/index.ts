// Alignment-model tooling (AdaMatch, seed 000): split embeddings, retrieval, keywords, keypatches,
// codebooks, the pointing game and explanations.
export { embedSplit, embeddedFromEncoding, type EmbeddedSplit, type EmbedOptions } from './embed.js';
export { similarityMatrices, retrievalMetrics, topMatches, type SimilarityMatrices, type RetrievalMetrics } from './retrieval.js';
export { evaluateRetrieval, type RetrievalEvaluation } from './evaluate.js';
export { embedKeywords, keywordsForImage, type KeywordBank, type PatchKeywords } from './keywords.js';
export { buildVisualCodebook, keypatchesForReport, type Keypatch, type VisualCodebook, type ReportKeypatches } from './keypatches.js';
export { buildCodebooks, saveCodebooks, loadCodebooks, hasCodebooks, type Codebooks, type CodebookOptions } from './codebooks.js';
export { pointingGame, FINDING_WORDS, type GroundTruthBox, type PointingResult } from './pointing.js';
export { explainImages, explainReport, patchDrawings, mostShifted, type ImageExplanation, type ReportExplanation } from './explain.js';
