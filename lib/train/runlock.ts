// One trainer per run folder: RUN/train.lock names the process that trains there. A lock whose
// process is gone (kill -9, a crash, a reboot) is stale and taken over; a live one is an ERR_LOCKED.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RadkitError } from '../errors.js';
import { processAlive } from './checkpoint.js';

export const LOCK_FILE = 'train.lock';

interface LockInfo {
  pid: number;
  host: string;
  /** The process's start time in clock ticks since boot (/proc/PID/stat field 22), so a reused pid is not taken for the holder. */
  procStart: string | null;
  since: string;
}

function procStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function readLock(file: string): { raw: string; info: LockInfo | null } | null {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const info = JSON.parse(raw) as LockInfo;
    return { raw, info: Number.isInteger(info?.pid) ? info : null };
  } catch {
    return { raw, info: null };
  }
}

/** Whether the lock's holder still runs (a lock of another machine counts as held: it cannot be checked). */
function held(file: string, info: LockInfo | null): boolean {
  if (!info) {
    // Unreadable: a writer killed between creating and filling it, or one filling it right now.
    try {
      return Date.now() - fs.statSync(file).mtimeMs < 5000;
    } catch {
      return false;
    }
  }
  if (info.host !== os.hostname()) return true;
  if (!processAlive(info.pid)) return false;
  const start = procStart(info.pid);
  return info.procStart === null || start === null || start === info.procStart;
}

/**
 * Takes RUN/train.lock for this process, or throws ERR_LOCKED naming the process that holds it.
 * Returns the release function (it removes the lock only while it is still this process's).
 */
export function acquireRunLock(outDir: string, fn: string): () => void {
  const file = path.join(outDir, LOCK_FILE);
  const mine = JSON.stringify({ pid: process.pid, host: os.hostname(), procStart: procStart(process.pid), since: new Date().toISOString() } satisfies LockInfo);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      try {
        fs.writeSync(fd, mine);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      return () => {
        const now = readLock(file);
        if (now?.raw === mine) fs.rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const current = readLock(file);
    if (!current) continue;
    if (held(file, current.info)) {
      const who = current.info ? `process ${current.info.pid} on ${current.info.host} (since ${current.info.since})` : 'a process that is starting';
      throw new RadkitError(
        `${fn}: ${outDir} is being trained by ${who}; a run folder takes one trainer at a time: wait for it or stop it, or train into another folder (remove ${file} only if no such process runs)`,
        'ERR_LOCKED',
        fn,
      );
    }
    // Stale: move it aside (one process wins the rename), and make sure what moved is what was judged.
    const aside = `${file}.stale-${process.pid}-${Date.now()}`;
    try {
      fs.renameSync(file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const moved = readLock(aside);
    if (moved?.raw !== current.raw) {
      // Another process took over between our read and our rename: give its lock back.
      try {
        fs.linkSync(aside, file);
      } catch {
        // The slot was taken again meanwhile; the next attempt reads who holds it.
      }
    }
    fs.rmSync(aside, { force: true });
  }
  throw new RadkitError(`${fn}: could not take ${file} (other processes keep taking it)`, 'ERR_LOCKED', fn);
}
