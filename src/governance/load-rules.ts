import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { meterError, parseYamlAgainst, type MeterError } from '../meters/load-meters.ts';
import type { MeterDefinition } from '../meters/meter-schema.ts';
import { ruleSchema, type RuleDefinition } from './rule-schema.ts';

/**
 * Reads the governance rules of a directory like the meters loader reads meters (and with its
 * parser, so errors read alike, as file:line:col: reason): every `*.yaml` / `*.yml` file, one rule per
 * file, in file-name order, which is also their priority (the first that applies to a call decides).
 * Also refused: a rule name used twice, and an `over_quota` rule naming a meter that does not exist
 * or has no quota. A missing directory is no rules.
 */

export interface LoadedRule {
  definition: RuleDefinition;
  file: string;
}

export type RuleError = MeterError;

export interface LoadRulesResult {
  rules: LoadedRule[];
  errors: RuleError[];
}

export async function loadRules(dir: string, meters: readonly MeterDefinition[]): Promise<LoadRulesResult> {
  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries
      .filter((e) => e.isFile() && /\.ya?ml$/i.test(e.name))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return { rules: [], errors: [] };
    throw err;
  }
  const rules: LoadedRule[] = [];
  const errors: RuleError[] = [];
  const byName = new Map<string, string>();
  for (const name of names) {
    const file = join(dir, name);
    const result = parseRuleText(await readFile(file, 'utf8'), file, meters);
    if ('errors' in result) {
      errors.push(...result.errors);
      continue;
    }
    const first = byName.get(result.rule.definition.name);
    if (first !== undefined) {
      const at = result.nameAt;
      errors.push(
        meterError(
          file,
          at.line,
          at.col,
          `duplicate rule name '${result.rule.definition.name}': also in ${first}`,
        ),
      );
      continue;
    }
    byName.set(result.rule.definition.name, `${file}:${result.nameAt.line}:${result.nameAt.col}`);
    rules.push(result.rule);
  }
  return { rules, errors };
}

export function parseRuleText(
  text: string,
  file: string,
  meters: readonly MeterDefinition[],
): { rule: LoadedRule; nameAt: { line: number; col: number } } | { errors: RuleError[] } {
  const parsed = parseYamlAgainst(
    text,
    file,
    ruleSchema,
    'the file is empty: a rule is a map with name, applies_to and response',
  );
  if ('errors' in parsed) return parsed;
  const rule = parsed.data;
  const applies = rule.applies_to;
  if ('status' in applies && applies.status === 'over_quota' && applies.meter !== undefined) {
    const meter = meters.find((m) => m.name === applies.meter);
    if (meter?.quota === undefined) {
      const at = parsed.positionOf(['applies_to', 'meter']);
      const known = meters.filter((m) => m.quota !== undefined).map((m) => m.name);
      return {
        errors: [
          meterError(
            file,
            at.line,
            at.col,
            `applies_to.meter: ${meter ? `meter '${applies.meter}' has no quota` : `no meter '${applies.meter}'`}; meters with a quota: ${known.join(', ') || 'none'}`,
          ),
        ],
      };
    }
  }
  return { rule: { definition: rule, file }, nameAt: parsed.positionOf(['name']) };
}
