import type { CliEnv } from '../config.ts';
import type { Output } from './output.ts';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The value's placeholder in the usage line (`--from ISO`). */
  value?: string;
  help: string;
}

export interface CommandInput {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  env: CliEnv;
  out: Output;
}

/**
 * One command (`keys create`): what `--help` prints and what it runs. Everything a command declares
 * is enough to print its help and to refuse bad arguments, so neither ever touches a database, a file
 * or the network.
 */
export interface Command {
  /** The words that name it: ['keys', 'create']. */
  path: readonly string[];
  summary: string;
  /** Positional arguments as the usage line shows them (`KEY_ID`, `[DIR]`, `FILE|-`). */
  args?: string;
  /** How many positionals it takes. Default: none. */
  positionals?: { min: number; max: number };
  options?: Record<string, OptionSpec>;
  /** More lines for `--help`. */
  details?: string;
  run(input: CommandInput): Promise<number>;
}

/** A command with subcommands (`keys`): its help lists them. */
export interface CommandGroup {
  name: string;
  summary: string;
  commands: readonly Command[];
}

/** `--json` as every command that prints data takes it. */
export const JSON_OPTION: OptionSpec = { type: 'boolean', help: 'print JSON (what scripts should read)' };
