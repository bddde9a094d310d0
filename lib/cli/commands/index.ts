import type { Command } from '../command.js';
import { metricsCommand } from './metrics.js';
import { doctor } from './doctor.js';
import { buildCommand } from './build.js';
import { demo } from './demo.js';
import { trainCommand, generateCommand, evaluateCommand, reportCommand } from './models.js';
import { synthCommand } from './synth.js';
import { prepareCommand } from './prepare.js';
import { importVqCommand, tokenizeImagesCommand, decodeCommand } from './vq.js';
import { cyclicHintsCommand } from './cyclic.js';
import { retrieveCommand, codebooksCommand, explainCommand } from './align.js';

// Each sub-command lives in its own module; add it here to make `radkit <name>` reach it.
export const commands: Command[] = [demo, doctor, buildCommand, trainCommand, generateCommand, evaluateCommand, reportCommand, retrieveCommand, codebooksCommand, explainCommand, metricsCommand, synthCommand, prepareCommand, importVqCommand, tokenizeImagesCommand, decodeCommand, cyclicHintsCommand];
