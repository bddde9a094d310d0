// Every test run gets one private temporary folder: TMPDIR points there for the test processes
// (and the CLI processes they spawn), and the folder is removed when the run ends, so repeated
// `npm test` runs leave nothing behind in the system's temporary folder.
// RADKIT_KEEP_TEST_TMP=1 keeps it (its path is printed) for looking at a failed test's files.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'radkit-tests-'));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    if (process.env.RADKIT_KEEP_TEST_TMP) console.log(`radkit: test files kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  };
}
