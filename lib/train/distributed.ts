/**
 * Data-parallel training on LibTorch's c10d: a process group (TCPStore rendezvous, Gloo on the
 * CPU), the torchrun environment, the epoch shards and the launcher of `radkit train
 * --nproc-per-node N`. The native side is native/distributed/process_group.cc (the only c10d caller) and
 * native/nn/distributed.h (what model code sees).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Batch, DataLoader } from '../data/loader.js';
import type { R2GenDataset } from '../data/r2gen.js';
import { ArgumentError, RadkitError } from '../errors.js';
import { withGenerateDefaults } from '../generation.js';
import type { Model } from '../models/model.js';
import type { Evaluation, EvaluationOptions } from '../models/registry.js';
import { loadNative } from '../native.js';
import { handleOf, Tensor } from '../tensor.js';
import type { ReportTokenizer } from '../text/report-tokenizer.js';
import { Tokenizer } from '../text/tokenizer.js';
import { generateSplit, generationEvaluation, headline, scoreReports, type GeneratedReport } from './evaluate.js';
import type { NativeTensor } from '../../typings/native.js';

/** Where and how a rank joins its group (torchrun's variables: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK). */
export interface DistributedOptions {
  rank: number;
  worldSize: number;
  /** This rank's index on its machine (LOCAL_RANK; default: rank). */
  localRank?: number;
  masterAddr: string;
  masterPort: number;
  /** 'gloo' (CPU; default) or 'nccl' (CUDA; refused by this build with the reason). */
  backend?: 'gloo' | 'nccl';
  /** Seconds the rendezvous may take: master reachable, every rank arrived, world sizes agreed (default 30). */
  initTimeout?: number;
  /** Seconds any collective may wait for the other ranks (default 120). */
  timeout?: number;
  /** Gradient all-reduce bucket size in MB (default 25, as DDP's). */
  bucketMegabytes?: number;
}

interface NativeProcessGroup {
  rank(): number;
  worldSize(): number;
  exchange(key: string, value: string): Promise<string[]>;
  barrier(): Promise<void>;
  allReduce(t: NativeTensor): Promise<NativeTensor>;
  allGather(t: NativeTensor): Promise<NativeTensor>;
  broadcast(t: NativeTensor, root: number): Promise<NativeTensor>;
  close(): void;
}

interface NativeDistributedModule {
  createProcessGroup(o: DistributedOptions): Promise<NativeProcessGroup>;
  distributedCapabilities(): { gloo: boolean; nccl: boolean; note: string };
}

const native = () => loadNative() as unknown as NativeDistributedModule;

export const DISTRIBUTED_DEFAULTS = { backend: 'gloo', initTimeout: 30, timeout: 120, bucketMegabytes: 25 } as const;

/** One rank's membership of a c10d process group. */
export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  readonly options: Readonly<DistributedOptions>;
  /** @internal the native handle (Model.setDistributed takes it). */
  readonly native: NativeProcessGroup;
  #exchanges = 0;

  private constructor(h: NativeProcessGroup, o: DistributedOptions) {
    this.native = h;
    this.rank = h.rank();
    this.worldSize = h.worldSize();
    this.localRank = o.localRank ?? o.rank;
    this.options = Object.freeze({ ...o });
  }

  /** @internal */
  static async create(o: DistributedOptions): Promise<ProcessGroup> {
    return new ProcessGroup(await native().createProcessGroup(o), o);
  }

  /** Every rank's `value` in rank order (through the rendezvous store; for small facts, not tensors). */
  exchange(key: string, value: string): Promise<string[]> {
    return this.native.exchange(`${key}#${this.#exchanges++}`, value);
  }

  /**
   * Every rank must hold the same `value` (a configuration, a setting): an ERR_DISTRIBUTED on every
   * rank naming the ranks that differ and `what` otherwise.
   */
  async agree(what: string, value: string): Promise<void> {
    const all = await this.exchange(`agree/${what}`, value);
    const differ = all.map((v, r) => (v === all[0] ? -1 : r)).filter((r) => r >= 0);
    if (differ.length)
      throw new RadkitError(
        `rank ${this.rank}: the ranks disagree on ${what}: rank(s) ${differ.join(', ')} differ from rank 0 (${brief(all[differ[0]])} vs ${brief(all[0])}); every rank must be started with the same command line and data`,
        'ERR_DISTRIBUTED',
        'distributed',
      );
  }

  barrier(): Promise<void> {
    return this.native.barrier();
  }

  /** The sum over ranks (a new tensor). */
  async allReduce(t: Tensor): Promise<Tensor> {
    return Tensor.wrap(await this.native.allReduce(handleOf(t, 'tensor', 'ProcessGroup.allReduce')));
  }

  /** Every rank's rows in rank order (same shape on every rank). */
  async allGather(t: Tensor): Promise<Tensor> {
    return Tensor.wrap(await this.native.allGather(handleOf(t, 'tensor', 'ProcessGroup.allGather')));
  }

  /** Rank `root`'s tensor on every rank (a new tensor). */
  async broadcast(t: Tensor, root = 0): Promise<Tensor> {
    return Tensor.wrap(await this.native.broadcast(handleOf(t, 'tensor', 'ProcessGroup.broadcast'), root));
  }

  close(): void {
    this.native.close();
  }
}

function brief(s: string): string {
  return s.length > 160 ? `${s.slice(0, 160)}...` : s;
}

/** Joins a process group (TCPStore rendezvous at masterAddr:masterPort served by rank 0, then Gloo). */
export async function initProcessGroup(options: DistributedOptions): Promise<ProcessGroup> {
  const o = { ...DISTRIBUTED_DEFAULTS, ...options };
  const fn = 'initProcessGroup';
  const int = (k: keyof DistributedOptions, lo: number, hi: number) => {
    const v = o[k];
    if (!(Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi)) throw new ArgumentError(`${fn}: options.${k} must be a whole number in [${lo}, ${hi}], got ${String(v)}`, 'ERR_INVALID_ARG', fn);
  };
  int('worldSize', 1, 65536);
  int('rank', 0, o.worldSize - 1);
  int('masterPort', 1, 65535);
  if (o.localRank !== undefined) int('localRank', 0, 65535);
  if (typeof o.masterAddr !== 'string' || !o.masterAddr) throw new ArgumentError(`${fn}: options.masterAddr must be a host name or address`, 'ERR_INVALID_ARG', fn);
  if (o.backend !== 'gloo' && o.backend !== 'nccl') throw new ArgumentError(`${fn}: options.backend must be 'gloo' or 'nccl', got '${String(o.backend)}'`, 'ERR_INVALID_ARG', fn);
  return ProcessGroup.create(o);
}

/** What this binary's c10d can do ({ gloo, nccl, note }). */
export function distributedCapabilities(): { gloo: boolean; nccl: boolean; note: string } {
  return native().distributedCapabilities();
}

/**
 * The torchrun environment of a worker (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK), or
 * null when WORLD_SIZE is not set. A malformed or missing variable is an ERR_INVALID_ARG naming it.
 */
export function distributedFromEnv(env: NodeJS.ProcessEnv = process.env): DistributedOptions | null {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return null;
  const fn = 'distributedFromEnv';
  const num = (name: string, lo: number, hi: number, fallback?: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      if (fallback !== undefined) return fallback;
      throw new ArgumentError(`${fn}: WORLD_SIZE is set but ${name} is not (a launcher sets MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and LOCAL_RANK)`, 'ERR_INVALID_ARG', fn);
    }
    const v = Number(raw);
    if (!(Number.isInteger(v) && v >= lo && v <= hi)) throw new ArgumentError(`${fn}: ${name} must be a whole number in [${lo}, ${hi}], got '${raw}'`, 'ERR_INVALID_ARG', fn);
    return v;
  };
  const worldSize = num('WORLD_SIZE', 1, 65536);
  const rank = num('RANK', 0, worldSize - 1);
  const backend = env.RADKIT_DIST_BACKEND;
  if (backend !== undefined && backend !== 'gloo' && backend !== 'nccl') throw new ArgumentError(`${fn}: RADKIT_DIST_BACKEND must be 'gloo' or 'nccl', got '${backend}'`, 'ERR_INVALID_ARG', fn);
  return {
    worldSize,
    rank,
    localRank: num('LOCAL_RANK', 0, 65535, rank),
    masterAddr: env.MASTER_ADDR || (worldSize === 1 ? '127.0.0.1' : missing('MASTER_ADDR')),
    masterPort: num('MASTER_PORT', 1, 65535, worldSize === 1 ? 29500 : undefined),
    backend: (backend as 'gloo' | 'nccl' | undefined) ?? 'gloo',
  };
}

function missing(name: string): never {
  throw new ArgumentError(`distributedFromEnv: WORLD_SIZE is set but ${name} is not`, 'ERR_INVALID_ARG', 'distributedFromEnv');
}

/**
 * This rank's share of an epoch: the epoch order (already shuffled) cut into global batches of
 * `globalBatch`; each global batch split into `worldSize` consecutive equal slices, rank r taking
 * slice r. Every item is in exactly one rank's shard. A last global batch that does not split
 * evenly is padded with the epoch's first items (as PyTorch's DistributedSampler pads), so at most
 * worldSize - 1 items are seen twice in an epoch and every rank steps the same number of times.
 */
export function shardBatches(order: readonly number[], globalBatch: number, rank: number, worldSize: number): number[][] {
  if (!(Number.isInteger(worldSize) && worldSize >= 1 && Number.isInteger(rank) && rank >= 0 && rank < worldSize))
    throw new ArgumentError(`shardBatches: rank ${rank} / worldSize ${worldSize} are not a rank of a group`, 'ERR_INVALID_ARG', 'shardBatches');
  if (!(Number.isInteger(globalBatch) && globalBatch >= worldSize && globalBatch % worldSize === 0))
    throw new ArgumentError(
      `shardBatches: the global batch size ${globalBatch} must be a multiple of the ${worldSize} ranks (each rank takes batchSize / worldSize rows)`,
      'ERR_INVALID_ARG',
      'shardBatches',
    );
  const out: number[][] = [];
  for (let s = 0; s < order.length; s += globalBatch) {
    const g = order.slice(s, s + globalBatch);
    for (let i = 0; g.length % worldSize !== 0; i++) g.push(order[i % order.length]);
    const per = g.length / worldSize;
    out.push(g.slice(rank * per, (rank + 1) * per));
  }
  return out;
}

/** Rank r's contiguous block of n items (evaluation shards: dataset order kept by concatenation). */
export function evaluationBlock(n: number, rank: number, worldSize: number): { start: number; end: number } {
  const per = Math.ceil(n / worldSize);
  return { start: Math.min(n, rank * per), end: Math.min(n, (rank + 1) * per) };
}

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
  backend?: 'gloo' | 'nccl';
  /** The worker command: [executable, ...args] (default: this node's radkit CLI with `argv`). */
  command: string[];
  /** Seconds to wait for the other workers after one failed before killing them (default 10). */
  graceSeconds?: number;
  env?: NodeJS.ProcessEnv;
  /** Called with each worker's exit. */
  onExit?: (localRank: number, code: number | null, signal: string | null) => void;
}

/**
 * Starts `nprocPerNode` workers on this node, each with the torchrun environment; resolves with 0
 * when all exit 0. When a worker fails, the others are stopped (SIGTERM, then SIGKILL after
 * `graceSeconds`) and the launcher resolves with that worker's exit code, naming the rank.
 */
export function launchWorkers(o: LaunchOptions): Promise<{ code: number; failed?: { rank: number; code: number | null; signal: string | null } }> {
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  const world = o.nprocPerNode * nnodes;
  const children: ChildProcess[] = [];
  let failed: { rank: number; code: number | null; signal: string | null } | undefined;
  let running = o.nprocPerNode;
  return new Promise((resolve) => {
    const stopOthers = () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      const t = setTimeout(() => {
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }, (o.graceSeconds ?? 10) * 1000);
      t.unref();
    };
    for (let local = 0; local < o.nprocPerNode; local++) {
      const rank = nodeRank * o.nprocPerNode + local;
      const env = {
        ...(o.env ?? process.env),
        MASTER_ADDR: o.masterAddr ?? '127.0.0.1',
        MASTER_PORT: String(o.masterPort ?? 29500),
        WORLD_SIZE: String(world),
        RANK: String(rank),
        LOCAL_RANK: String(local),
        LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        RADKIT_DIST_BACKEND: o.backend ?? 'gloo',
      };
      const child = spawn(o.command[0], o.command.slice(1), { env, stdio: 'inherit' });
      children.push(child);
      child.on('exit', (code, signal) => {
        running--;
        o.onExit?.(local, code, signal);
        if ((code !== 0 || signal) && !failed) {
          failed = { rank, code, signal };
          stopOthers();
        }
        if (running === 0) resolve(failed ? { code: failed.code && failed.code > 0 ? failed.code : 1, failed } : { code: 0 });
      });
    }
  });
}

// ---- What the trainer does with a group (lib/train/trainer.ts calls these).

/** JSON with sorted keys (values compare across ranks whatever the key order). */
function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]));
  return v;
}

/**
 * Before the first step: every rank must train the same model configuration, tokenizer, settings
 * and data (an ERR_DISTRIBUTED on every rank naming the ranks that differ), and the global batch
 * must split evenly over the ranks. Also the point where ranks wait for rank 0's checkpoint cleanup.
 */
export async function agreeOnRun(group: ProcessGroup, facts: { kind: string; config: unknown; tokenizer: unknown; settings: Record<string, unknown>; trainStudies: number; batchSize: number; unpaired: boolean }): Promise<void> {
  const fn = 'train';
  if (facts.unpaired) throw new ArgumentError(`${fn}: ${facts.kind} trains on unpaired image and report sets, which distributed training does not shard yet; train it in one process`, 'ERR_INVALID_ARG', fn);
  if (facts.batchSize % group.worldSize !== 0)
    throw new ArgumentError(`${fn}: the global batch size ${facts.batchSize} must be a multiple of the ${group.worldSize} ranks (each rank takes batchSize / worldSize rows)`, 'ERR_INVALID_ARG', fn);
  const { device: _device, ...settings } = facts.settings;  // ranks may train on different devices (cuda:0, cuda:1)
  await group.agree('the model configuration', JSON.stringify(sorted({ kind: facts.kind, config: facts.config })));
  await group.agree('the tokenizer', JSON.stringify(sorted(facts.tokenizer)));
  await group.agree('the training settings and data', JSON.stringify(sorted({ settings, trainStudies: facts.trainStudies })));
}

/** This rank's batches of an epoch (shardBatches over the loader's seeded epoch order), one batch read ahead. */
export async function* shardedEpoch(loader: DataLoader, epoch: number, globalBatch: number, group: ProcessGroup): AsyncGenerator<Batch> {
  const groups = shardBatches(loader.order(epoch), globalBatch, group.rank, group.worldSize);
  const read = (i: number) => {
    const p = loader.batch(groups[i], epoch);
    p.catch(() => undefined);  // awaited below; a read ahead left behind by a break is not an unhandled rejection
    return p;
  };
  let next = groups.length ? read(0) : null;
  for (let i = 0; i < groups.length; i++) {
    const current = await next!;
    next = i + 1 < groups.length ? read(i + 1) : null;
    yield current;
  }
}

/**
 * Evaluation on every rank. Report generators: each rank generates its contiguous block of the split
 * (evaluationBlock), the reports are gathered in dataset order and every rank scores the whole list,
 * so each gets the scores one process would. Other evaluations (retrieval, kinds' own): every rank
 * evaluates the whole split (the same numbers on each; not sharded yet).
 */
export async function evaluateDistributed(
  evaluateWith: (model: Model, tokenizer: ReportTokenizer, dataset: R2GenDataset, o: EvaluationOptions) => Promise<Evaluation>,
  model: Model,
  tokenizer: ReportTokenizer,
  dataset: R2GenDataset,
  o: EvaluationOptions,
  group: ProcessGroup,
): Promise<Evaluation> {
  if (evaluateWith !== generationEvaluation || !(tokenizer instanceof Tokenizer)) return evaluateWith(model, tokenizer, dataset, o);
  const items = dataset.splits[o.split].slice(0, o.maxItems ?? Infinity);
  const { start, end } = evaluationBlock(items.length, group.rank, group.worldSize);
  const shard: R2GenDataset = { ...dataset, splits: { ...dataset.splits, [o.split]: items.slice(start, end) } };
  const mine = end > start ? await generateSplit(model, tokenizer, shard, { ...o, maxItems: undefined }) : [];
  const reports: GeneratedReport[] = (await group.exchange(`evaluation/${o.split}`, JSON.stringify(mine))).flatMap((s) => JSON.parse(s) as GeneratedReport[]);
  const result = scoreReports(reports);
  return { headline: headline(result), record: { generate: withGenerateDefaults(model.generateDefaults, o.generate), result, reports, ranks: group.worldSize } };
}
