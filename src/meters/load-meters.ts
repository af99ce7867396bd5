import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMap, isNode, isScalar, LineCounter, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import type { z } from 'zod';
import { meterSchema } from './meter-schema.ts';
import type { MeterDefinition } from './meter-schema.ts';
import { meterVersion } from './meter-version.ts';

/**
 * Reads the meter definitions of a directory: every `*.yaml` / `*.yml` file (not recursive), one meter
 * per file, in file-name order. Every problem is reported, with where it is, rather than the first
 * one: a YAML syntax error, a schema violation (located at the YAML node the zod issue points to, or at
 * the key for an unknown key, or at the enclosing map for a missing key), or a meter name used by
 * two files (the later file is reported, naming the earlier one). A file with an error yields no meter.
 */

export interface LoadedMeter {
  definition: MeterDefinition;
  /** The file it came from: `dir` joined with the file name. */
  file: string;
  version: string;
}

export interface MeterError {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based, in characters. */
  col: number;
  reason: string;
  /** `file:line:col: reason`, as the CLI prints it. */
  message: string;
}

export interface LoadMetersResult {
  meters: LoadedMeter[];
  errors: MeterError[];
}

const MAX_ALIAS_COUNT = 100;

/** Meter files that failed validation: every error as file:line:col: reason, one a line. */
export class MeterDefinitionError extends Error {
  constructor(readonly errors: readonly MeterError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'MeterDefinitionError';
  }
}

/**
 * The meters of a directory, as the service boots with them: any invalid file stops the boot
 * (MeterDefinitionError). A missing directory is no meters (and `onMissing` hears of it).
 */
export async function loadMeterDefinitions(
  dir: string,
  hooks: { onMissing?: (dir: string) => void } = {},
): Promise<MeterDefinition[]> {
  const { meters, errors } = await loadMeters(dir).catch((err: unknown) => {
    if (typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT') {
      hooks.onMissing?.(dir);
      return { meters: [], errors: [] };
    }
    throw err;
  });
  if (errors.length > 0) throw new MeterDefinitionError(errors);
  return meters.map((m) => m.definition);
}

export async function loadMeters(dir: string): Promise<LoadMetersResult> {
  const { items, errors } = await loadYamlFolder(dir, 'meter', (text, file) => {
    const result = parseMeterText(text, file);
    return 'errors' in result
      ? result
      : { item: result.meter, name: result.meter.definition.name, nameAt: result.nameAt };
  });
  return { meters: items, errors };
}

/**
 * A folder of YAML definitions, one a file (`*.yaml` / `*.yml`, not recursive), in file-name order:
 * each file parsed by `parse`, every error kept, and a name used by two files refused at the later
 * one's `name`, naming the first. Meters and governance rules load through it. A missing folder
 * throws ENOENT, or with `missingIsEmpty` is an empty one (a file that vanishes while being read still
 * throws: half a folder is not a folder).
 */
export async function loadYamlFolder<T>(
  dir: string,
  kind: string,
  parse: (
    text: string,
    file: string,
  ) => { item: T; name: string; nameAt: { line: number; col: number } } | { errors: MeterError[] },
  options: { missingIsEmpty?: boolean } = {},
): Promise<{ items: T[]; errors: MeterError[] }> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (options.missingIsEmpty && (err as { code?: unknown }).code === 'ENOENT')
      return { items: [], errors: [] };
    throw err;
  }
  const names = entries
    .filter((e) => e.isFile() && /\.ya?ml$/i.test(e.name))
    .map((e) => e.name)
    .sort();
  const items: T[] = [];
  const errors: MeterError[] = [];
  const byName = new Map<string, string>();
  for (const name of names) {
    const file = join(dir, name);
    const result = parse(await readFile(file, 'utf8'), file);
    if ('errors' in result) {
      errors.push(...result.errors);
      continue;
    }
    const { line, col } = result.nameAt;
    const first = byName.get(result.name);
    if (first !== undefined) {
      errors.push(
        meterError(file, line, col, `duplicate ${kind} name '${result.name}': also defined in ${first}`),
      );
      continue;
    }
    byName.set(result.name, `${file}:${line}:${col}`);
    items.push(result.item);
  }
  return { items, errors };
}

type ParseResult = { meter: LoadedMeter; nameAt: { line: number; col: number } } | { errors: MeterError[] };

/** Parses and validates the text of one meter file; `file` is only used in the results. */
export function parseMeterText(text: string, file: string): ParseResult {
  const parsed = parseYamlAgainst(
    text,
    file,
    meterSchema,
    'the file is empty: a meter is a map with name, description, aggregation, unit, …',
  );
  if ('errors' in parsed) return parsed;
  return {
    meter: { definition: parsed.data, file, version: meterVersion(parsed.data) },
    nameAt: parsed.positionOf(['name']),
  };
}

/**
 * One YAML file validated by a zod schema, every problem located as file:line:col (a YAML syntax
 * error, a schema violation at the node it points to, a missing key at its map, an unknown key at
 * the key). The loader of meters and that of governance rules share it, so both report alike.
 */
export function parseYamlAgainst<Schema extends z.ZodType>(
  text: string,
  file: string,
  schema: Schema,
  emptyReason: string,
):
  | { data: z.output<Schema>; positionOf(path: readonly PropertyKey[]): { line: number; col: number } }
  | { errors: MeterError[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const at = (offset: number) => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, col: pos.col };
  };

  const yamlProblems = [...doc.errors, ...doc.warnings];
  if (yamlProblems.length > 0) {
    return {
      errors: yamlProblems.map((e) => {
        const pos = at(e.pos[0]);
        return meterError(file, pos.line, pos.col, `YAML: ${firstLine(e.message)}`);
      }),
    };
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    return { errors: [meterError(file, 1, 1, `YAML: ${firstLine((error as Error).message)}`)] };
  }
  if (data === null || data === undefined) return { errors: [meterError(file, 1, 1, emptyReason)] };

  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const errors = parsed.error.issues.map((issue) => {
      const { offset, reason } = locate(doc, data, issue);
      const pos = at(offset);
      return meterError(file, pos.line, pos.col, reason);
    });
    errors.sort((a, b) => a.line - b.line || a.col - b.col);
    return { errors };
  }
  return { data: parsed.data, positionOf: (path) => at(nodeOffset(doc, path)) };
}

export function formatMeterError(e: Pick<MeterError, 'file' | 'line' | 'col' | 'reason'>): string {
  return `${e.file}:${e.line}:${e.col}: ${e.reason}`;
}

export function meterError(file: string, line: number, col: number, reason: string): MeterError {
  return { file, line, col, reason, message: formatMeterError({ file, line, col, reason }) };
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0] ?? message;
}

type Path = readonly PropertyKey[];

/** `filter.where[0].op` */
function describePath(path: Path): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** Where in the source a zod issue points, and what to say about it. */
function locate(doc: Document, data: unknown, issue: z.core.$ZodIssue): { offset: number; reason: string } {
  const path = issue.path;
  const prefix = path.length > 0 ? `${describePath(path)}: ` : '';

  if (issue.code === 'unrecognized_keys') {
    const map = doc.getIn(path as unknown[], false);
    const firstKey = issue.keys[0];
    if (isMap(map) && firstKey !== undefined) {
      const pair = map.items.find((p) => isScalar(p.key) && p.key.value === firstKey);
      const keyNode = pair?.key;
      if (isNode(keyNode) && keyNode.range)
        return { offset: keyNode.range[0], reason: `${prefix}${issue.message}` };
    }
    return { offset: nodeOffset(doc, path), reason: `${prefix}${issue.message}` };
  }

  // A missing key: point at the map that should hold it.
  if (path.length > 0 && issue.code !== 'custom' && isMissing(data, path)) {
    const parentPath = path.slice(0, -1);
    const where = parentPath.length > 0 ? `${describePath(parentPath)}: ` : '';
    return {
      offset: nodeOffset(doc, parentPath),
      reason: `${where}missing required key '${String(path[path.length - 1])}'`,
    };
  }
  if (issue.code === 'invalid_type' && valueAt(data, path) === null) {
    return { offset: nodeOffset(doc, path), reason: `${prefix}has no value (expected ${issue.expected})` };
  }
  return { offset: nodeOffset(doc, path), reason: `${prefix}${issue.message}` };
}

/** Start of the node at `path`, or of its nearest ancestor that exists. */
function nodeOffset(doc: Document, path: Path): number {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return 0;
}

/** Whether the last key of `path` is absent from the object that should hold it. */
function isMissing(data: unknown, path: Path): boolean {
  const parent = valueAt(data, path.slice(0, -1));
  const key = path[path.length - 1];
  return parent !== null && typeof parent === 'object' && key !== undefined && !(key in parent);
}

function valueAt(data: unknown, path: Path): unknown {
  let current = data;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
