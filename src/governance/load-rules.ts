import { loadYamlFolder, meterError, parseYamlAgainst, type MeterError } from '../meters/load-meters.ts';
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
  const { items, errors } = await loadYamlFolder(
    dir,
    'rule',
    (text, file) => {
      const result = parseRuleText(text, file, meters);
      return 'errors' in result
        ? result
        : { item: result.rule, name: result.rule.definition.name, nameAt: result.nameAt };
    },
    { missingIsEmpty: true },
  );
  return { rules: items, errors };
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
