import { createHash } from 'node:crypto';
import { meterSchema } from './meter-schema.ts';
import type { MeterDefinition } from './meter-schema.ts';

/**
 * A meter's version: the first 16 hex digits (64 bits) of the SHA-256 of its canonical JSON.
 *
 * What is hashed is everything that changes what is counted, for whom, where it is sent, or how it is
 * priced: `name`, `filter`, `aggregation`, `customer`, `stripe` and `pricing`. Left out, so that editing
 * them does not start a new version (and does not re-key usage already computed):
 * - `description` and `unit`: labels;
 * - `quota` and `alerts`: governance (alerts, limits), not counting or pricing;
 * - `effective_from`: when a version starts, not what it is; moving the start of the same rules keeps
 *   the same version.
 *
 * Canonical JSON: the definition is parsed by meterSchema first, so defaults are applied and spellings
 * that mean the same are the same (`customer` left out = `company_id`; `status: 200` = `status: [200]`;
 * methods upper-case; header names lower-case); object keys are sorted at every level; list order is kept
 * (it is part of what was written, and changing it is rare enough that a new version costs nothing).
 */
export const VERSIONED_KEYS = ['name', 'filter', 'aggregation', 'customer', 'stripe', 'pricing'] as const;

/** The JSON text that is hashed for the version. */
export function canonicalMeterJson(meter: MeterDefinition): string {
  const parsed = meterSchema.parse(meter);
  const versioned: Record<string, unknown> = {};
  for (const key of VERSIONED_KEYS) versioned[key] = parsed[key];
  return canonicalJson(versioned);
}

export function meterVersion(meter: MeterDefinition): string {
  return createHash('sha256').update(canonicalMeterJson(meter), 'utf8').digest('hex').slice(0, 16);
}

/** JSON with object keys sorted and undefined members dropped (as JSON.stringify drops them). */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value))
    return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
