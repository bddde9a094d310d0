import type { Command } from '../command.js';
import { info, benchmarkMatmul } from '../../runtime.js';

/**
 * `radkit demo` (`npm run demo`): the main job. The full demo (train XProNet on SynthCXR, generate
 * and score reports) lands with the XProNet system; until then it says so plainly and shows the
 * parts that exist: build facts and native work off the event loop.
 */
export const demo: Command = {
  name: 'demo',
  summary: 'the main job (today: build facts + a native benchmark; XProNet training lands later)',
  usage: 'usage: radkit demo [--seconds S]',
  async run(argv) {
    console.log('radkit demo');
    console.log('  Planned: train XProNet on SynthCXR, generate reports with beam search and score them');
    console.log('  (BLEU/METEOR/ROUGE-L/CIDEr-D/clinical efficacy). That system is not built yet; this demo');
    console.log('  runs what exists today.\n');
    const facts = info();
    console.log(`  LibTorch ${facts.torchVersion} (${facts.torchLibrary}), CUDA ${facts.cudaAvailable ? 'available' : 'not available'}, ${facts.threads} thread(s)`);
    console.log(`  native binary: ${facts.binary.path} (${facts.binary.source})`);
    const i = argv.indexOf('--seconds');
    const seconds = i >= 0 ? Number(argv[i + 1]) : 1;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const r = await benchmarkMatmul({ size: 512, minSeconds: seconds });
    clearInterval(timer);
    console.log(`  512x512 float32 matmul on a worker thread: ${r.iterations} products in ${r.seconds.toFixed(2)} s = ${r.gflops.toFixed(1)} GFLOP/s;`);
    console.log(`  the event loop ticked ${ticks} times (10 ms timer) meanwhile.`);
    return 0;
  },
};
