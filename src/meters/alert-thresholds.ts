import { z } from 'zod';
import type { Pricing } from './tiers.ts';

/**
 * Alert thresholds of a meter (`alerts:` in its YAML). Each entry is one of:
 * - `{at: 80%, of: quota}`: a share of the meter's `quota` (integer percent, 1 to 1000);
 * - `{at: next_tier}`: each tier boundary of `pricing` (usage enters the next tier: quantity > up_to);
 * - `{at: 90%, of: next_tier}`: a share of each tier boundary (warned before the next tier);
 * - `{at: 1000}` or `{at: 1000 calls}`: an absolute quantity, in the meter's unit (the word, when
 *   given, must be the meter's `unit`, so `1000 bytes` on a meter of calls is refused).
 * A threshold is crossed when the period-to-date quantity reaches its value. Its id (kept with each
 * crossing) names the rule and not the value, so editing a quota mid-period does not alert again for a
 * threshold already crossed in that period.
 */
export const alertSchema = z.strictObject(
  {
    at: z.union([z.number(), z.string()], {
      error: "at must be a quantity (1000 or '1000 calls'), a percentage ('80%', with of) or next_tier",
    }),
    of: z.enum(['quota', 'next_tier'], { error: "of must be 'quota' or 'next_tier'" }).optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}; allowed: at, of`
        : undefined,
  },
);

export type AlertInput = z.output<typeof alertSchema>;

/** One threshold a meter's usage can cross, resolved against the meter's quota and tiers. */
export interface AlertThreshold {
  /** Stable within a meter: `quota:80%`, `next_tier:100`, `next_tier:100:90%`, `usage:1000`. */
  id: string;
  /** Crossed when the period-to-date quantity is at least this. */
  value: bigint;
  /** For people: `80% of the quota of 1000`, `tier 2 (above 100)`, `1000 calls`. */
  label: string;
}

const PERCENT = /^(\d{1,4})\s*%$/;
const QUANTITY_WITH_UNIT = /^(\d{1,16})\s+(\S+)$/;

type Rule =
  | { kind: 'percent'; percent: number; of: 'quota' | 'next_tier' }
  | { kind: 'next_tier' }
  | { kind: 'absolute'; value: bigint };

/** What one `alerts` entry means, or why it means nothing, given the meter it belongs to. */
function ruleOf(
  alert: AlertInput,
  meter: { unit: string; quota?: number; pricing?: Pricing },
): Rule | { error: string; path: 'at' | 'of' } {
  const { at, of } = alert;
  let rule: Rule;
  if (typeof at === 'number') {
    if (!Number.isSafeInteger(at) || at <= 0)
      return { error: 'at must be a positive integer quantity', path: 'at' };
    rule = { kind: 'absolute', value: BigInt(at) };
  } else if (at === 'next_tier') {
    rule = { kind: 'next_tier' };
  } else if (PERCENT.test(at)) {
    const percent = Number(PERCENT.exec(at)![1]);
    if (percent < 1 || percent > 1000) return { error: 'a percentage must be from 1% to 1000%', path: 'at' };
    if (of === undefined) return { error: `'${at}' of what? add of: quota or of: next_tier`, path: 'at' };
    rule = { kind: 'percent', percent, of };
  } else if (QUANTITY_WITH_UNIT.test(at)) {
    const [, digits, unit] = QUANTITY_WITH_UNIT.exec(at)!;
    if (unit !== meter.unit)
      return { error: `'${at}' is in ${unit}, but this meter counts ${meter.unit}`, path: 'at' };
    if (BigInt(digits!) <= 0n) return { error: 'at must be a positive quantity', path: 'at' };
    rule = { kind: 'absolute', value: BigInt(digits!) };
  } else {
    return {
      error: `at '${at}' must be a quantity (1000 or '1000 ${meter.unit}'), a percentage ('80%', with of) or next_tier`,
      path: 'at',
    };
  }
  if (rule.kind !== 'percent' && of !== undefined)
    return { error: 'of goes with a percentage only, as in {at: 80%, of: quota}', path: 'of' };
  const needs = rule.kind === 'percent' ? rule.of : rule.kind === 'next_tier' ? 'next_tier' : undefined;
  if (needs === 'quota' && meter.quota === undefined)
    return {
      error: 'this meter has no quota: add quota: <n> to the meter',
      path: rule.kind === 'percent' ? 'of' : 'at',
    };
  if (needs === 'next_tier' && boundaries(meter.pricing).length === 0)
    return {
      error: 'this meter has no tier boundary: next_tier needs pricing with tiers below up_to: inf',
      path: rule.kind === 'percent' ? 'of' : 'at',
    };
  return rule;
}

function boundaries(pricing: Pricing | undefined): { tier: number; upTo: bigint }[] {
  return (pricing?.tiers ?? []).flatMap((t, i) =>
    t.up_to === 'inf' ? [] : [{ tier: i + 1, upTo: BigInt(t.up_to) }],
  );
}

/** ⌈base × percent / 100⌉, in integers. */
const shareOf = (base: bigint, percent: number): bigint => (base * BigInt(percent) + 99n) / 100n;

function thresholdsOfRule(
  rule: Rule,
  meter: { unit: string; quota?: number; pricing?: Pricing },
): AlertThreshold[] {
  switch (rule.kind) {
    case 'absolute':
      return [{ id: `usage:${rule.value}`, value: rule.value, label: `${rule.value} ${meter.unit}` }];
    case 'next_tier':
      return boundaries(meter.pricing).map((b) => ({
        id: `next_tier:${b.upTo}`,
        value: b.upTo + 1n,
        label: `tier ${b.tier + 1} (above ${b.upTo} ${meter.unit})`,
      }));
    case 'percent':
      if (rule.of === 'quota') {
        const quota = BigInt(meter.quota!);
        return [
          {
            id: `quota:${rule.percent}%`,
            value: shareOf(quota, rule.percent),
            label: `${rule.percent}% of the quota of ${quota} ${meter.unit}`,
          },
        ];
      }
      return boundaries(meter.pricing).map((b) => ({
        id: `next_tier:${b.upTo}:${rule.percent}%`,
        value: shareOf(b.upTo, rule.percent),
        label: `${rule.percent}% of tier ${b.tier}'s ${b.upTo} ${meter.unit}`,
      }));
  }
}

/**
 * Checks a meter's `alerts` against the rest of the meter (run by the meter schema, so the problems
 * come back as file:line:col at the entry's `at` or `of`). Also refuses two entries that mean the same.
 */
export function checkAlerts(
  meter: { unit: string; quota?: number; pricing?: Pricing; alerts?: readonly AlertInput[] },
  ctx: z.RefinementCtx,
): void {
  const seen = new Map<string, number>();
  (meter.alerts ?? []).forEach((alert, i) => {
    const rule = ruleOf(alert, meter);
    if ('error' in rule) {
      ctx.addIssue({ code: 'custom', path: ['alerts', i, rule.path], message: rule.error });
      return;
    }
    for (const t of thresholdsOfRule(rule, meter)) {
      const first = seen.get(t.id);
      if (first !== undefined && first !== i) {
        ctx.addIssue({
          code: 'custom',
          path: ['alerts', i, 'at'],
          message: `the same threshold (${t.label}) as alerts[${first}]`,
        });
        return;
      }
      seen.set(t.id, i);
    }
  });
}

/** Every threshold of a valid meter, lowest first. */
export function alertThresholds(meter: {
  unit: string;
  quota?: number;
  pricing?: Pricing;
  alerts?: readonly AlertInput[];
}): AlertThreshold[] {
  const out: AlertThreshold[] = [];
  for (const alert of meter.alerts ?? []) {
    const rule = ruleOf(alert, meter);
    if ('error' in rule) throw new Error(`invalid alert: ${rule.error}`);
    out.push(...thresholdsOfRule(rule, meter));
  }
  return out.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : a.id < b.id ? -1 : 1));
}
