/**
 * The five kernels radkit exists for (contracts: docs in each module). Each op module lives in
 * lib/ops/<name>.ts and is re-exported here as `radkit.ops.<name>`.
 */
export { sinkhorn, euclideanCost, type SinkhornOptions, type SinkhornResult } from './sinkhorn.js';
export { memoryQuery, multiHeadMemoryQuery, type MemoryQueryOptions, type MemoryQueryResult, type MemorySimilarity, type MemoryWeighting } from './memoryQuery.js';
export { adaptivePatchSample, type AdaptivePatchSampleOptions } from './adaptivePatchSample.js';
export { maxSimilarity, type MaxSimilarityOptions, type MaxSimilarityResult } from './maxSimilarity.js';
