import { parseArgs } from 'node:util';
import type { Command, CommandGroup } from './command.ts';

export const PROGRAM = 'billing-meter';

/** A mistake in how the command was called: one line, the usage, exit status 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export type ParsedCommandArgs =
  | { help: true }
  | { help: false; values: Record<string, string | boolean | undefined>; positionals: string[] };

const HELP_FLAGS = new Set(['--help', '-h']);

/** `--help` or `-h` anywhere before a `--`. */
export function asksForHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (HELP_FLAGS.has(arg)) return true;
  }
  return false;
}

/** Parses a command's own arguments against what it declares; never runs anything. */
export function parseCommandArgs(command: Command, argv: readonly string[]): ParsedCommandArgs {
  if (asksForHelp(argv)) return { help: true };
  const options = Object.fromEntries(
    Object.entries(command.options ?? {}).map(([name, spec]) => [
      name,
      { type: spec.type, ...(spec.short ? { short: spec.short } : {}) },
    ]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(argumentProblem(command, err), commandUsage(command));
  }
  const { min, max } = command.positionals ?? { min: 0, max: 0 };
  const positionals = parsed.positionals;
  if (positionals.length < min)
    throw new UsageError(
      `${PROGRAM} ${command.path.join(' ')}: missing ${command.args ?? 'argument'}`,
      commandUsage(command),
    );
  if (positionals.length > max)
    throw new UsageError(
      `${PROGRAM} ${command.path.join(' ')}: unexpected argument '${positionals[max]}'`,
      commandUsage(command),
    );
  return { help: false, values: parsed.values as Record<string, string | boolean | undefined>, positionals };
}

/** node:util's messages name the option but end in advice for programmers; say it for people. */
function argumentProblem(command: Command, err: unknown): string {
  const name = `${PROGRAM} ${command.path.join(' ')}`;
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  const option = /'(-[^']*)'/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `${name}: unknown option '${option ?? message}'`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE')
    return option ? `${name}: option '${option}' needs a value` : `${name}: ${message}`;
  return `${name}: ${message.split('\n')[0]}`;
}

export function usageLine(command: Command): string {
  const options = Object.entries(command.options ?? {}).map(([name, spec]) =>
    spec.type === 'string' ? `[--${name} ${spec.value ?? 'VALUE'}]` : `[--${name}]`,
  );
  return [PROGRAM, ...command.path, ...(command.args ? [command.args] : []), ...options].join(' ');
}

export function commandUsage(command: Command): string {
  const lines = [`usage: ${usageLine(command)}`, '', command.summary];
  if (command.details) lines.push('', command.details);
  const options = Object.entries(command.options ?? {});
  lines.push('', 'options:');
  const rows = [
    ...options.map(([name, spec]) => ({
      flag: `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`,
      help: spec.help,
    })),
    { flag: '-h, --help', help: 'print this help and exit' },
  ];
  const width = Math.max(...rows.map((r) => r.flag.length));
  for (const r of rows) lines.push(`  ${r.flag.padEnd(width)}  ${r.help}`);
  return lines.join('\n');
}

export function groupUsage(group: CommandGroup): string {
  const width = Math.max(...group.commands.map((c) => c.path.at(-1)!.length));
  return [
    `usage: ${PROGRAM} ${group.name} <command> [options]`,
    '',
    group.summary,
    '',
    'commands:',
    ...group.commands.map((c) => `  ${c.path.at(-1)!.padEnd(width)}  ${c.summary}`),
    '',
    `${PROGRAM} ${group.name} <command> --help prints a command's options.`,
  ].join('\n');
}
