#!/usr/bin/env node
import { commands } from './commands/index.js';
import { runCommand, UsageError } from './command.js';

function usage(): string {
  const lines = ['usage: radkit <command> [options]', '', 'commands:'];
  for (const c of commands) lines.push(`  ${c.name.padEnd(10)} ${c.summary}`);
  lines.push('', 'radkit <command> --help shows the options of one command.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`radkit: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    return await runCommand(cmd, rest);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (err instanceof UsageError) {
      // A command line radkit cannot act on: one line, then what the command takes (exit 2).
      console.error(`radkit ${name}: ${e.message}\n\n${cmd.usage}`);
      return 2;
    }
    console.error(`radkit ${name}: ${e.code ? `[${e.code}] ` : ''}${e.message}`);
    if (process.env.RADKIT_DEBUG) console.error(e.stack);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
