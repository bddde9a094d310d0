#!/usr/bin/env node
'use strict';
// npm install hook (npm runs it on install when install scripts are allowed, and on `npm rebuild
// radkit`). radkit does not need it: the prebuilt flavour matching the LibTorch found loads at run
// time. It never prompts and never fails the install (always exit 0):
//   - a binary loads: say which;
//   - nothing loads, on `npm rebuild radkit` or with `--build-from-source` (npm_config_build_from_source)
//     or RADKIT_BUILD_FROM_SOURCE=1: build from source (scripts/build.js) against the LibTorch found;
//   - nothing loads otherwise: print why and the fix (`npx radkit build`; npx radkit doctor repeats it).
// In a development checkout it does nothing: `npm test` / `npm run build` build there.
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const say = (m) => console.log(`radkit: ${m}`);

function main() {
  if (!root.split(path.sep).includes('node_modules') || process.env.RADKIT_SKIP_INSTALL) {
    say('development checkout (or RADKIT_SKIP_INSTALL): nothing to do at install (npm test / npm run build build the addon).');
    return;
  }
  const report = require(path.join(root, 'dist', 'lib', 'native.js')).loadReport();
  if (report.loaded) {
    say(`native addon ready: ${path.relative(root, report.path)} (${report.why})`);
    return;
  }
  const truthy = (v) => !!v && v !== 'false' && v !== '0';
  const wanted = process.env.npm_command === 'rebuild' || truthy(process.env.npm_config_build_from_source) || truthy(process.env.RADKIT_BUILD_FROM_SOURCE);
  if (!wanted) {
    say(`${report.message}\n(radkit installed without a loadable native addon; \`npx radkit doctor\` repeats this.)`);
    return;
  }
  say('no prebuilt binary fits: building from source');
  const r = require('./build.js').build({ log: say });
  if (!r.ok) say(`installed without the native addon: ${r.message}`);
}

try {
  main();
} catch (err) {
  say(`the install check failed (${err && err.message}); radkit is installed, \`npx radkit doctor\` says what is missing.`);
}
process.exit(0);
