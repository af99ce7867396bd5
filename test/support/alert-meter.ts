// The meter the alert tests watch: a quota of 100 calls and three graduated tiers, alerting at 80% of
// the quota and at the next tier. The unit tests below HTTP, the service e2e and the replica drills
// all count against it.
import { parseMeterText } from '../../src/meters/load-meters.ts';
import type { MeterDefinition } from '../../src/meters/meter-schema.ts';

export interface AlertMeterOptions {
  /** Only calls to these routes count (default: every call). */
  routes?: readonly string[];
  /** From when the meter counts (default: always). */
  effectiveFrom?: Date;
}

export function alertMeterYaml(options: AlertMeterOptions = {}): string {
  const filter = options.routes ? `filter:\n  routes: [${options.routes.join(', ')}]\n` : '';
  const from = options.effectiveFrom ? `effective_from: '${options.effectiveFrom.toISOString()}'\n` : '';
  return `name: calls
description: Calls${options.routes ? ` to ${options.routes.join(', ')}` : ''}.
${filter}aggregation:
  type: count
unit: calls
quota: 100
${from}pricing:
  currency: usd
  tiers_mode: graduated
  tiers:
    - {up_to: 100, unit_amount_decimal: '500'}
    - {up_to: 1000, unit_amount_decimal: '300'}
    - {up_to: inf, unit_amount_decimal: '200'}
alerts:
  - {at: 80%, of: quota}
  - {at: next_tier}
`;
}

export function alertMeter(options: AlertMeterOptions = {}): MeterDefinition {
  const parsed = parseMeterText(alertMeterYaml(options), 'calls.yaml');
  if (!('meter' in parsed)) throw new Error(parsed.errors.map((e) => e.message).join('\n'));
  return parsed.meter.definition;
}
