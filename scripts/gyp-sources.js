#!/usr/bin/env node
'use strict';
// The C++ sources binding.gyp compiles: the same folders CMakeLists.txt globs (CUDA is cmake-js only).
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const only = process.env.RADKIT_OPS ? process.env.RADKIT_OPS.split(/[;,]/).filter(Boolean) : null;

function cc(dir) {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  return fs.readdirSync(abs).filter((f) => f.endsWith('.cc')).sort().map((f) => `${dir}/${f}`);
}

const sources = [...cc('native/core'), ...cc('native/binding'), ...cc('native/ops'), ...cc('native/nn'), ...cc('native/models'), ...cc('native/testing')];
const opsDir = path.join(root, 'native/ops');
for (const op of fs.readdirSync(opsDir).sort()) {
  if (fs.statSync(path.join(opsDir, op)).isDirectory() && (!only || only.includes(op))) sources.push(...cc(`native/ops/${op}`));
}
console.log(sources.join('\n'));
