import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { basename, dirname } from 'node:path';
import { describe, expect, test } from 'vitest';

// test/global-setup.ts gives each run a private temporary folder that it removes afterwards; the
// tests' own folders and those of the CLI processes they spawn must land inside it.
describe('the test run temporary folder', () => {
  test('tests and the processes they spawn use the run-private folder', () => {
    expect(basename(tmpdir())).toMatch(/^radkit-tests-/);
    const child = execFileSync(process.execPath, ['-e', 'process.stdout.write(require("os").tmpdir())']).toString();
    expect(child).toBe(tmpdir());
    expect(dirname(tmpdir())).not.toBe(tmpdir());
  });
});
