#!/usr/bin/env node
'use strict';
// The C++ sources binding.gyp compiles: the same folders CMakeLists.txt globs (CUDA is cmake-js only).
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function cc(dir) {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  return fs.readdirSync(abs).filter((f) => f.endsWith('.cc')).sort().map((f) => `${dir}/${f}`);
}

const opsDir = path.join(root, 'native/ops');
const ops = fs.readdirSync(opsDir).filter((op) => fs.statSync(path.join(opsDir, op)).isDirectory()).sort();
const sources = [
  ...cc('native/core'),
  ...cc('native/binding'),
  ...ops.flatMap((op) => cc(`native/ops/${op}`)),
  ...cc('native/nn'),
  ...cc('native/models'),
  ...cc('native/testing'),
];
console.log(sources.join('\n'));
