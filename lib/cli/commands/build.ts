import * as path from 'node:path';
import type { Command } from '../command.js';
import { packageRoot } from '../../native.js';

interface BuildScript {
  build(options: { clean?: boolean; dryRun?: boolean }): { ok: boolean; message: string };
}

/**
 * `radkit build`: the source build (scripts/build.js) against the LibTorch found, for machines
 * whose LibTorch no prebuilt flavour fits. cmake-js is a dependency of radkit, so nothing is fetched.
 */
export const buildCommand: Command = {
  name: 'build',
  summary: 'build the native addon from source against the LibTorch found (when no prebuilt flavour fits)',
  usage: [
    'usage: radkit build [--clean] [--dry-run]',
    '',
    'Compiles build/Release/radkit.node inside the installed package with cmake-js against the LibTorch',
    'found (LIBTORCH, Torch_DIR, Python torch, then the system); it loads before any prebuilt binary.',
    'Needs CMake 3.18+, make or ninja, a C++17 compiler, and nvcc when LibTorch has CUDA.',
    '',
    '  --clean     start from an empty build folder',
    '  --dry-run   check LibTorch and the tools and configure CMake in a temporary folder; compile nothing',
  ].join('\n'),
  flags: {
    clean: { type: 'boolean', help: 'start from an empty build folder' },
    'dry-run': { type: 'boolean', help: 'check and configure only; compile nothing' },
  },
  async run({ values }) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const script = require(path.join(packageRoot, 'scripts', 'build.js')) as BuildScript;
    const r = script.build({ clean: values.clean === true, dryRun: values['dry-run'] === true });
    return r.ok ? 0 : 1;
  },
};
