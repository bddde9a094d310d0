// Writes checkpoint version VERSION into DIR with writeCheckpoint and kills itself with SIGKILL at
// the KILL_AT-th call that creates, writes, renames or removes files (0: never), so a test can crash a
// checkpoint replacement at every point of its sequence. The model is a stand-in that writes
// small files saying which version they belong to.
'use strict';
const fs = require('node:fs');

const [dir, version, killAt] = process.argv.slice(2);
let calls = 0;
let armed = false;
for (const name of ['mkdirSync', 'writeFileSync', 'renameSync', 'rmSync']) {
  const original = fs[name];
  fs[name] = function (...args) {
    if (armed && ++calls === Number(killAt)) process.kill(process.pid, 'SIGKILL');
    return original.apply(this, args);
  };
}
const { writeCheckpoint } = require('../../dist/lib/train/checkpoint.js');

const model = {
  saveWeights: async (weights, optimizer) => {
    fs.writeFileSync(weights, `weights ${version}`);
    if (optimizer) fs.writeFileSync(optimizer, `optimizer ${version}`);
  },
};
const meta = { format: 'radkit-checkpoint', version: 1, kind: 'x', config: {}, tokenizer: {}, preprocessing: { imageSize: 8, views: 1 }, epoch: Number(version), step: 0, best: null, metrics: {}, trainOptions: {}, savedAt: '' };
armed = true;
writeCheckpoint(dir, model, meta, true).then(() => console.log(`done after ${calls} calls`));
