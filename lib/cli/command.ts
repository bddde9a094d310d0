import { parseArgs } from 'node:util';
import { RadkitError } from '../errors.js';
import type { FlagSpec, FlagSpecs, FlagValues } from '../models/registry.js';

/** A command-line flag: a registry FlagSpec that may be required. */
export type CliFlag = FlagSpec & { required?: boolean };
export type CliFlags = Record<string, CliFlag>;

/** Parsed command line: typed flag values (defaults applied) and positional arguments. */
export interface CommandArgs {
  values: FlagValues;
  positionals: string[];
}

/** One `radkit <name>` sub-command. `run` returns the process exit code. */
export interface Command {
  name: string;
  summary: string;
  /** Full usage text (`radkit <name> --help`; printed after a usage error). */
  readonly usage: string;
  /** The flags it takes; a function when they depend on another flag (train: on --model). */
  flags: CliFlags | ((argv: string[]) => CliFlags);
  /** Positional arguments: none (default), or how many at least. */
  positionals?: { min: number; name: string };
  run(args: CommandArgs): Promise<number>;
}

/** A command line radkit cannot act on: exit code 2 and the command's usage. */
export class UsageError extends RadkitError {
  constructor(message: string, fn = 'cli') {
    super(message, 'ERR_USAGE', fn);
  }
}

/** Levenshtein distance, for "did you mean" hints on misspelt flags. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

function suggestion(given: string, known: string[]): string {
  const best = known.map((k) => ({ k, d: distance(given, k) })).sort((x, y) => x.d - y.d)[0];
  return best && best.d <= Math.max(2, Math.floor(given.length / 3)) ? ` (did you mean --${best.k}?)` : '';
}

function typed(name: string, spec: CliFlag, raw: string | boolean): string | number | boolean {
  if (spec.type === 'boolean') return raw;
  const v = String(raw);
  if (spec.type === 'number' || spec.type === 'integer') {
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isFinite(n)) throw new UsageError(`--${name} needs a number, got '${v}'`);
    if (spec.type === 'integer' && !Number.isInteger(n)) throw new UsageError(`--${name} needs a whole number, got '${v}'`);
    if (spec.min !== undefined && n < spec.min) throw new UsageError(`--${name} must be at least ${spec.min}, got ${v}`);
    if (spec.max !== undefined && n > spec.max) throw new UsageError(`--${name} must be at most ${spec.max}, got ${v}`);
    return n;
  }
  if (spec.choices && !spec.choices.includes(v)) throw new UsageError(`--${name} must be one of ${spec.choices.join(', ')}, got '${v}'`);
  return v;
}

/**
 * Strict parsing of `argv` against `flags` (node:util parseArgs): an unknown or misspelt flag, a
 * missing value, a value where none belongs, a non-number for a number, a value out of range or
 * outside the choices, a missing required flag or a stray positional is a UsageError.
 */
export function parseCommandLine(argv: string[], flags: CliFlags, positionals?: { min: number; name: string }): CommandArgs {
  const options = Object.fromEntries(Object.entries(flags).map(([k, s]) => [k, { type: s.type === 'boolean' ? ('boolean' as const) : ('string' as const) }]));
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: !!positionals });
  } catch (err) {
    const e = err as Error & { code?: string };
    const unknown = /Unknown option '(-{1,2})([^']+)'/.exec(e.message);
    if (unknown) throw new UsageError(`unknown flag ${unknown[1]}${unknown[2]}${suggestion(unknown[2], Object.keys(flags))}`);
    const missing = /Option '(?:-\w, )?--([^ ']+)[^']*' argument missing/.exec(e.message) ?? /Option '(?:-\w, )?--([^ ']+)[^']*' argument is ambiguous/.exec(e.message);
    if (missing) throw new UsageError(`--${missing[1]} needs a value`);
    const positional = /Unexpected argument '([^']+)'/.exec(e.message);
    if (positional) throw new UsageError(`unexpected argument '${positional[1]}'`);
    const noValue = /Option '--([^ ']+)' does not take an argument/.exec(e.message);
    if (noValue) throw new UsageError(`--${noValue[1]} takes no value`);
    throw new UsageError(e.message);
  }
  const values: FlagValues = {};
  for (const [name, spec] of Object.entries(flags)) {
    const raw = parsed.values[name];
    if (raw === undefined) {
      if (spec.required) throw new UsageError(`--${name} is required`);
      values[name] = spec.default;
    } else values[name] = typed(name, spec, raw);
  }
  if (positionals && parsed.positionals.length < positionals.min) throw new UsageError(`give at least ${positionals.min} ${positionals.name}`);
  return { values, positionals: parsed.positionals };
}

/** The flag lines of a usage text, from the specs. */
export function formatFlags(flags: FlagSpecs | CliFlags, indent = '  '): string {
  const rows = Object.entries(flags).map(([name, s]) => {
    const arg = s.type === 'boolean' ? '' : s.choices ? ` ${s.choices.join('|')}` : ` ${s.arg ?? (s.type === 'string' ? 'VALUE' : s.type === 'integer' ? 'N' : 'X')}`;
    const extra = [(s as CliFlag).required ? 'required' : '', s.default !== undefined && s.type !== 'boolean' ? `default ${s.default}` : ''].filter(Boolean).join(', ');
    return [`--${name}${arg}`, `${s.help}${extra ? ` (${extra})` : ''}`];
  });
  const width = Math.min(34, Math.max(0, ...rows.map((r) => r[0].length)) + 2);
  return rows.map(([a, b]) => (a.length + 2 > width ? `${indent}${a}\n${indent}${' '.repeat(width)}${b}` : `${indent}${a.padEnd(width)}${b}`)).join('\n');
}

/** Parses `argv` strictly for `cmd` and runs it (a UsageError before anything runs when the line is wrong). */
export async function runCommand(cmd: Command, argv: string[]): Promise<number> {
  const flags = typeof cmd.flags === 'function' ? cmd.flags(argv) : cmd.flags;
  return cmd.run(parseCommandLine(argv, flags, cmd.positionals));
}
