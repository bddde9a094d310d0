// radkit.distributed: data-parallel training on c10d (see lib/train/distributed.ts and the README).
export {
  initProcessGroup,
  distributedFromEnv,
  distributedCapabilities,
  shardBatches,
  evaluationBlock,
  launchWorkers,
  ProcessGroup,
  DISTRIBUTED_DEFAULTS,
  type DistributedOptions,
  type LaunchOptions,
} from './distributed.js';
