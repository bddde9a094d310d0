#!/usr/bin/env node
'use strict';
// npm install hook. Installed as a dependency: use a prebuild or build/ if one loads, otherwise build
// with node-gyp against the LibTorch that scripts/find-libtorch.js finds. It never fails the install
// half-way: when it cannot build, it says why and how to fix it (`npx radkit doctor` repeats that).
// In a development checkout it does nothing: `npm test` / `npm run build` build there.
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const say = (m) => console.log(`radkit: ${m}`);

if (!root.split(path.sep).includes('node_modules') || process.env.RADKIT_SKIP_INSTALL) {
  say('development checkout: skipping the install-time build (npm test / npm run build build the addon).');
  process.exit(0);
}

try {
  const p = require('node-gyp-build').resolve(root);
  require(p);
  say(`using ${path.relative(root, p)}`);
  process.exit(0);
} catch {
  /* nothing loadable yet: build below */
}

const { findLibTorch, FIX } = require('./find-libtorch.js');
const { found } = findLibTorch();
if (!found) {
  say(`installed without the native addon. ${FIX} Then run \`npm rebuild radkit\`.`);
  process.exit(0);
}
say(`building the native addon against LibTorch from ${found.source} (${found.root}); this takes a few minutes`);
const r = spawnSync('npx', ['node-gyp', 'rebuild'], { cwd: root, stdio: 'inherit', shell: false });
if (r.status !== 0) say('the native build failed (see above). `npx radkit doctor` explains what was found; fix it and run `npm rebuild radkit`.');
process.exit(0);
