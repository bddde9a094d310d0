import type { Command } from '../command.js';
import { metricsCommand } from './metrics.js';

// Each sub-command lives in its own module; add it here to make `radkit <name>` reach it.
export const commands: Command[] = [metricsCommand];
