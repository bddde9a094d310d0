// Child of data-cache.test.ts: prepares a cache from the compiled package and kills itself with
// SIGKILL while the shard after `killAfter` is being decoded (an interrupted `radkit prepare`).
'use strict';
const path = require('node:path');
const [, , dist, annotation, out, killAfter] = process.argv;
const radkit = require(path.join(dist, 'lib/data/index.js'));
const ds = radkit.readR2Gen(annotation);
radkit
  .prepare(ds, {
    size: 32,
    out,
    imagesPerShard: 5,
    workers: 1,
    progress: (p) => {
      if (p.shard === Number(killAfter)) setImmediate(() => process.kill(process.pid, 'SIGKILL'));
    },
  })
  .then(() => process.exit(3)); // not reached
