// radkit train's data-parallel side: --nproc-per-node starts the workers (torchrun's environment);
// a worker (started by it, torchrun, Slurm or Kubernetes) joins its group from that environment.
import { distributedFromEnv, initProcessGroup, launchWorkers, type ProcessGroup } from '../train/distributed.js';
import type { FlagValues } from '../models/registry.js';
import { UsageError, type CliFlags } from './command.js';

export const LAUNCH_FLAGS: CliFlags = {
  'nproc-per-node': { type: 'integer', min: 1, max: 1024, help: 'data-parallel: start N worker processes on this machine (c10d; batch size is the global batch)' },
  nnodes: { type: 'integer', min: 1, max: 65536, help: 'data-parallel: machines taking part (default 1)' },
  'node-rank': { type: 'integer', min: 0, max: 65535, help: "data-parallel: this machine's index (default 0; node 0 runs rank 0)" },
  'master-addr': { type: 'string', arg: 'HOST', help: 'data-parallel: address of node 0 (default 127.0.0.1)' },
  'master-port': { type: 'integer', min: 1, max: 65535, help: 'data-parallel: rendezvous port on node 0 (default 29500)' },
  backend: { type: 'string', choices: ['gloo', 'nccl'], help: "data-parallel collectives: gloo (CPU, default) or nccl (CUDA; not in this build)" },
};

const NAMES = Object.keys(LAUNCH_FLAGS);

/** The command line without the launcher's flags (what each worker runs). */
export function workerArgv(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.startsWith('--') ? a.slice(2).split('=')[0] : '';
    if (NAMES.includes(name)) {
      if (!a.includes('=')) i++;  // its value
      continue;
    }
    out.push(a);
  }
  return out;
}

/**
 * With --nproc-per-node (or --nnodes): starts the workers and returns the exit code (a failed worker
 * stops the others, and the code names it). Without: null (this process trains).
 */
export async function launchIfAsked(values: FlagValues, argv = process.argv.slice(2)): Promise<number | null> {
  const nproc = values['nproc-per-node'] as number | undefined;
  const others = ['nnodes', 'node-rank', 'master-addr', 'master-port'].filter((k) => values[k] !== undefined);
  if (nproc === undefined) {
    if (others.length) throw new UsageError(`--${others[0]} goes with --nproc-per-node N (the launcher); a worker started by another launcher reads MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK`);
    return null;
  }
  if (process.env.WORLD_SIZE) throw new UsageError('--nproc-per-node starts workers itself; this process already is a worker (WORLD_SIZE is set)');
  const nnodes = (values.nnodes as number | undefined) ?? 1;
  const nodeRank = (values['node-rank'] as number | undefined) ?? 0;
  if (nodeRank >= nnodes) throw new UsageError(`--node-rank must be below --nnodes (${nnodes}), got ${nodeRank}`);
  if (nnodes > 1 && values['master-addr'] === undefined) throw new UsageError('--nnodes > 1 needs --master-addr (the address of node 0, reachable from every node)');
  const command = [process.execPath, ...process.execArgv, process.argv[1], ...workerArgv(argv)];
  const r = await launchWorkers({
    nprocPerNode: nproc,
    nnodes,
    nodeRank,
    masterAddr: values['master-addr'] as string | undefined,
    masterPort: values['master-port'] as number | undefined,
    backend: values.backend as 'gloo' | 'nccl' | undefined,
    command,
  });
  if (r.failed)
    console.error(
      `radkit train: rank ${r.failed.rank} ${r.failed.signal ? `was killed (${r.failed.signal})` : `exited with code ${r.failed.code}`}; the other workers were stopped. Run the same command again to resume from the last checkpoint.`,
    );
  return r.code;
}

/** The group of a worker started with torchrun's environment (WORLD_SIZE > 1), else null. */
export async function workerGroup(values: FlagValues): Promise<ProcessGroup | null> {
  const env = distributedFromEnv();
  if (!env || env.worldSize === 1) return null;
  if (values.backend !== undefined) env.backend = values.backend as 'gloo' | 'nccl';
  return initProcessGroup(env);
}
