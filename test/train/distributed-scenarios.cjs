// Small data-parallel scenarios for test/train/distributed.test.ts, one process per rank.
// Usage: node distributed-scenarios.cjs SCENARIO RANK WORLD PORT [ARG]
//   join      RANK WORLD PORT           join and leave (rendezvous errors: no master, world sizes)
//   agree     RANK WORLD PORT VALUE     join, then agree on VALUE (mismatched configurations)
//   evaluate  RANK WORLD PORT RUN,DATA  evaluate a checkpoint's validation split sharded over the ranks
'use strict';
const path = require('node:path');
const radkit = require('../../dist/lib/index.js');
const { evaluateDistributed } = require('../../dist/lib/train/distributed.js');
const { generationEvaluation } = require('../../dist/lib/train/evaluate.js');

const [scenario, rankArg, worldArg, portArg, arg] = process.argv.slice(2);
const rank = Number(rankArg);
const worldSize = Number(worldArg);
const t0 = Date.now();

(async () => {
  radkit.setNumThreads(1);
  const group = await radkit.distributed.initProcessGroup({ rank, worldSize, masterAddr: '127.0.0.1', masterPort: Number(portArg), initTimeout: Number(process.env.INIT_TIMEOUT ?? 5), timeout: 20 });
  if (scenario === 'agree') await group.agree('the model configuration', arg);
  if (scenario === 'evaluate') {
    const [run, data] = arg.split(',');
    const ck = await radkit.loadCheckpoint(run);
    const ds = radkit.data.readR2Gen(path.join(data, 'annotation.json'), { labels: path.join(data, 'labels.json') });
    const o = { split: 'val', preprocessing: ck.meta.preprocessing, generate: { beams: 2, maxLength: 20 } };
    const ev = await evaluateDistributed(generationEvaluation, ck.model, ck.tokenizer, ds, o, group);
    console.log(JSON.stringify({ headline: ev.headline, ids: ev.record.reports.map((r) => r.id) }));
  }
  if (process.env.HOLD) await new Promise((r) => setTimeout(r, Number(process.env.HOLD) * 1000));  // keep the store up for late joiners
  await group.barrier();
  group.close();
  console.log(JSON.stringify({ ok: true, rank, seconds: (Date.now() - t0) / 1000 }));
})().catch((e) => {
  console.error(JSON.stringify({ rank, code: e.code, message: e.message, seconds: (Date.now() - t0) / 1000 }));
  process.exit(1);
});
