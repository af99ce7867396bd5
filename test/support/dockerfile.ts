// A small Dockerfile reader for the tests (no Docker engine runs here): instructions with continuation
// lines joined and comments dropped, grouped into stages. It knows what this repository's Dockerfile uses
// (FROM … AS, RUN, COPY [--from=…], ENV, USER, HEALTHCHECK, CMD, …), and it refuses what it cannot read
// rather than guessing: heredocs, and parser directives other than `syntax`.
import { readFileSync } from 'node:fs';

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, … */
  keyword: string;
  /** The rest of the instruction, continuation lines joined by a space. */
  args: string;
  /** 1-based line where the instruction starts. */
  line: number;
}

export interface Stage {
  /** The image of its FROM line. */
  image: string;
  /** Its `AS` name, if any. */
  name: string | undefined;
  instructions: Instruction[];
}

export interface Dockerfile {
  directives: Record<string, string>;
  stages: Stage[];
}

export function readDockerfile(path: string | URL): Dockerfile {
  return parseDockerfile(readFileSync(path, 'utf8'));
}

export function parseDockerfile(text: string): Dockerfile {
  const lines = text.split('\n');
  const directives: Record<string, string> = {};
  const instructions: Instruction[] = [];
  let inHeader = true;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const directive = /^#\s*([a-z]+)\s*=\s*(.+?)\s*$/i.exec(raw);
    if (inHeader && directive) {
      const key = directive[1]!.toLowerCase();
      if (key !== 'syntax') throw new Error(`line ${i + 1}: parser directive ${key} is not understood here`);
      directives[key] = directive[2]!;
      continue;
    }
    if (/^\s*(#|$)/.test(raw)) {
      if (raw.trim() !== '') inHeader = false;
      continue;
    }
    inHeader = false;
    const start = i;
    let joined = raw;
    while (joined.endsWith('\\')) {
      joined = joined.slice(0, -1);
      // A comment inside a continued instruction is dropped; the instruction goes on after it.
      do i++;
      while (i < lines.length && /^\s*#/.test(lines[i]!));
      if (i >= lines.length) throw new Error(`line ${start + 1}: continuation at the end of the file`);
      joined += ` ${lines[i]!.trim()}`;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(joined);
    if (!match) throw new Error(`line ${start + 1}: not an instruction: ${raw}`);
    if (/<<-?\w/.test(match[2]!)) throw new Error(`line ${start + 1}: heredocs are not understood here`);
    instructions.push({
      keyword: match[1]!.toUpperCase(),
      args: match[2]!.replace(/\s+/g, ' ').trim(),
      line: start + 1,
    });
  }

  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (!from) throw new Error(`line ${instruction.line}: FROM ${instruction.args} is not understood`);
      stages.push({ image: from[1]!, name: from[2], instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`line ${instruction.line}: ${instruction.keyword} before any FROM`);
      stage.instructions.push(instruction);
    }
  }
  return { directives, stages };
}

/** The instructions of a stage with this keyword. */
export function instructionsOf(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

/**
 * The JSON array of an exec-form instruction (CMD, ENTRYPOINT, HEALTHCHECK … CMD), or undefined when
 * it is in shell form (then a shell, not the program, is PID 1 and gets the signals).
 */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === 'string')) return undefined;
  return parsed as string[];
}

export interface Copy {
  /** The stage copied from, or undefined for the build context. */
  from: string | undefined;
  sources: string[];
  destination: string;
  chown: string | undefined;
}

/** A COPY instruction's parts (shell form only, which is what the Dockerfile uses). */
export function parseCopy(args: string): Copy {
  const words = args.split(' ');
  let from: string | undefined;
  let chown: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    const [name, value] = flag.slice(2).split('=', 2);
    if (name === 'from') from = value;
    else if (name === 'chown') chown = value;
    else throw new Error(`COPY flag ${flag} is not understood here`);
  }
  const destination = words.pop();
  if (!destination || words.length === 0) throw new Error(`COPY ${args} needs a source and a destination`);
  return { from, sources: words, destination, chown };
}

/** `KEY=value` pairs of an ENV instruction (the `ENV KEY value` form is refused, as Docker discourages it). */
export function parseEnv(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of args.split(' ')) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(pair);
    if (!match) throw new Error(`ENV ${args}: write KEY=value pairs`);
    env[match[1]!] = match[2]!;
  }
  return env;
}

/** HEALTHCHECK's options (`--interval=10s` …) and its command. */
export function parseHealthcheck(args: string): { options: Record<string, string>; command: string } {
  const options: Record<string, string> = {};
  let rest = args;
  for (let match = /^--([a-z-]+)=(\S+)\s+/.exec(rest); match; match = /^--([a-z-]+)=(\S+)\s+/.exec(rest)) {
    options[match[1]!] = match[2]!;
    rest = rest.slice(match[0].length);
  }
  if (!rest.startsWith('CMD ')) throw new Error(`HEALTHCHECK ${args}: expected CMD`);
  return { options, command: rest.slice(4) };
}
