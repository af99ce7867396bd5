import { alertsCommands } from './alerts.ts';
import { loadCliEnv } from '../config.ts';
import { asksForHelp, commandUsage, groupUsage, parseCommandArgs, PROGRAM, UsageError } from './args.ts';
import type { Command, CommandGroup } from './command.ts';
import { TimeOptionError } from './context.ts';
import { customersCommands } from './customers.ts';
import { demoCommand } from './demo.ts';
import { explain } from './errors.ts';
import { keysCommands } from './keys.ts';
import { metersCommands } from './meters.ts';
import { migrateCommand } from './migrate.ts';
import { createOutput } from './output.ts';
import { serveCommand } from './serve.ts';
import { shipCommand } from './ship.ts';
import { stripeCommands } from './stripe.ts';
import { syncCommands } from './sync.ts';

/** Every command, in the order `--help` lists them. A new command is one entry here and one file. */
export const COMMANDS: readonly (Command | CommandGroup)[] = [
  serveCommand,
  demoCommand,
  migrateCommand,
  metersCommands,
  keysCommands,
  shipCommand,
  syncCommands,
  stripeCommands,
  customersCommands,
  alertsCommands,
];

const isGroup = (c: Command | CommandGroup): c is CommandGroup => 'commands' in c;

/** Every runnable command, subcommands flattened: what the CLI tests walk. */
export function allCommands(): Command[] {
  return COMMANDS.flatMap((c) => (isGroup(c) ? [...c.commands] : [c]));
}

export function programUsage(): string {
  const rows = COMMANDS.flatMap((c) =>
    isGroup(c)
      ? c.commands.map((s) => ({ name: s.path.join(' '), summary: s.summary }))
      : [{ name: c.path.join(' '), summary: c.summary }],
  );
  const width = Math.max(...rows.map((r) => r.name.length));
  return [
    `usage: ${PROGRAM} <command> [options]`,
    '',
    'commands:',
    ...rows.map((r) => `  ${r.name.padEnd(width)}  ${r.summary}`),
    '',
    `${PROGRAM} <command> --help prints a command's options. Configuration comes from the environment`,
    '(PORT, CLICKHOUSE_URL, DATA_DIR, ADMIN_API_KEY, STRIPE_SECRET_KEY, …): see the README.',
  ].join('\n');
}

export interface CliStreams {
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * `billing-meter <command>`: finds the command, answers --help without touching anything, refuses bad
 * arguments with one line and the usage (exit 2), runs it, and turns a failure into one line (exit 1;
 * the stack only with DEBUG).
 */
export async function runCli(argv: readonly string[], streams: CliStreams = {}): Promise<number> {
  const stdout = streams.stdout ?? process.stdout;
  const stderr = streams.stderr ?? process.stderr;
  const env = loadCliEnv();
  const [first, ...rest] = argv;
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    (first === undefined ? stderr : stdout).write(`${programUsage()}\n`);
    return first === undefined ? 2 : 0;
  }
  const entry = COMMANDS.find((c) => (isGroup(c) ? c.name : c.path[0]) === first);
  if (!entry) {
    stderr.write(`${PROGRAM}: unknown command '${first}'\n\n${programUsage()}\n`);
    return 2;
  }
  let command: Command;
  let args: readonly string[];
  if (isGroup(entry)) {
    const [sub, ...subArgs] = rest;
    const found = entry.commands.find((c) => c.path[1] === sub);
    if (!found) {
      if (sub === undefined || asksForHelp([sub])) {
        (sub === undefined ? stderr : stdout).write(`${groupUsage(entry)}\n`);
        return sub === undefined ? 2 : 0;
      }
      stderr.write(`${PROGRAM} ${entry.name}: unknown command '${sub}'\n\n${groupUsage(entry)}\n`);
      return 2;
    }
    command = found;
    args = subArgs;
  } else {
    command = entry;
    args = rest;
  }
  try {
    const parsed = parseCommandArgs(command, args);
    if (parsed.help) {
      stdout.write(`${commandUsage(command)}\n`);
      return 0;
    }
    const out = createOutput({ json: parsed.values.json === true, stdout, stderr });
    return await command.run({ values: parsed.values, positionals: parsed.positionals, env, out });
  } catch (err) {
    const failure = err instanceof TimeOptionError ? new UsageError(err.message, commandUsage(command)) : err;
    const explained = explain(failure);
    stderr.write(`${explained.message}\n`);
    if (explained.unexpected) {
      if (env.debug && failure instanceof Error && failure.stack) stderr.write(`${failure.stack}\n`);
      else stderr.write('(set DEBUG=1 to see where it failed)\n');
    }
    return explained.exitCode;
  }
}
