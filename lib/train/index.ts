export { train, type TrainOptions, type TrainResult } from './trainer.js';
export { loadCheckpoint, writeCheckpoint, readCheckpointMeta, type CheckpointMeta, type Preprocessing, type LoadedCheckpoint } from './checkpoint.js';
export { generateSplit, evaluateSplit, scoreReports, headline, type GeneratedReport, type SplitOptions } from './evaluate.js';
export { lrFactor, type Schedule } from './schedule.js';
export { progressPrinter, type ProgressEvent } from './progress.js';
