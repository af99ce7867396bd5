// Current usage reads closed hours of additive meters once: each refresh reads the lateness window,
// not the month, and still answers what a read of the whole period would.
import { describe, expect, it } from 'vitest';
import { CurrentUsage, type PeriodUsageSource } from '../../../src/governance/current-usage.ts';
import { meterSchema, type MeterDefinition } from '../../../src/meters/meter-schema.ts';

const HOUR = 3_600_000;
const count = meterSchema.parse({
  name: 'calls',
  description: 'd',
  aggregation: { type: 'count' },
  unit: 'calls',
});
const unique = meterSchema.parse({
  name: 'mau',
  description: 'd',
  aggregation: { type: 'unique_count', value: 'user_id' },
  unit: 'users',
});

/** Calls per customer per hour (ms of the hour's start), as the logs hold them; reads sum whole hours. */
function logs() {
  const hours = new Map<number, Map<string, bigint>>();
  const reads: string[] = [];
  const add = (at: string, customer: string, n: bigint) => {
    const hour = Math.floor(Date.parse(at) / HOUR) * HOUR;
    const m = hours.get(hour) ?? new Map<string, bigint>();
    m.set(customer, (m.get(customer) ?? 0n) + n);
    hours.set(hour, m);
  };
  const source: PeriodUsageSource = {
    period: async (meter: MeterDefinition, from: Date, to: Date) => {
      reads.push(`${meter.name} ${from.toISOString().slice(5, 13)}..${to.toISOString().slice(5, 13)}`);
      const out = new Map<string, bigint>();
      for (const [hour, m] of hours)
        if (hour >= from.getTime() && hour < to.getTime())
          for (const [c, n] of m) out.set(c, (out.get(c) ?? 0n) + n);
      return out;
    },
  };
  return { add, source, reads };
}

describe('current usage keeps the settled hours of additive meters', () => {
  it('reads the month once, then only the lateness window, with the same totals as a whole read', async () => {
    const { add, source, reads } = logs();
    let now = new Date('2026-11-15T12:34:00Z');
    const kept = new CurrentUsage({ source, meters: () => [count], now: () => now, settledAfterHours: 2 });
    const whole = new CurrentUsage({ source, meters: () => [count], now: () => now });
    add('2026-11-01T00:10:00Z', 'acme', 5n);
    add('2026-11-15T09:59:00Z', 'acme', 1n);
    add('2026-11-15T10:00:00Z', 'acme', 2n);
    add('2026-11-15T12:30:00Z', 'beta', 3n);
    add('2026-10-31T23:59:00Z', 'acme', 100n); // last period

    await kept.refresh();
    expect(reads).toEqual(['calls 11-01T00..11-15T10', 'calls 11-15T10..11-15T13']);
    expect(kept.quantity('calls', 'acme')).toBe(8n);
    expect(kept.quantity('calls', 'beta')).toBe(3n);

    // The same hour, a new call in the window: only the window is read again.
    reads.length = 0;
    add('2026-11-15T11:00:00Z', 'acme', 4n);
    now = new Date('2026-11-15T12:35:00Z');
    await kept.refresh();
    expect(reads).toEqual(['calls 11-15T10..11-15T13']);
    expect(kept.quantity('calls', 'acme')).toBe(12n);

    // An hour later the window moves: the hour that left it is read once, and added.
    reads.length = 0;
    now = new Date('2026-11-15T13:01:00Z');
    add('2026-11-15T13:00:00Z', 'beta', 1n);
    await kept.refresh();
    expect(reads).toEqual(['calls 11-15T10..11-15T11', 'calls 11-15T11..11-15T14']);
    await whole.refresh();
    expect(kept.snapshot()!.usage).toEqual(whole.snapshot()!.usage);
    expect(kept.quantity('calls', 'acme')).toBe(12n);
    expect(kept.quantity('calls', 'beta')).toBe(4n);
  });

  it('starts again for a new period, a changed definition, a day gone by, or a clock that went back', async () => {
    const { add, source, reads } = logs();
    let now = new Date('2026-11-30T23:30:00Z');
    let meters = [count];
    const current = new CurrentUsage({ source, meters: () => meters, now: () => now, settledAfterHours: 1 });
    add('2026-11-02T00:00:00Z', 'acme', 1n);
    add('2026-12-01T00:05:00Z', 'acme', 7n);
    await current.refresh();
    expect(current.quantity('calls', 'acme')).toBe(1n);

    reads.length = 0;
    now = new Date('2026-12-01T00:10:00Z');
    await current.refresh();
    // December: nothing settled yet, so one read of the window from the period's start.
    expect(reads).toEqual(['calls 12-01T00..12-01T01']);
    expect(current.quantity('calls', 'acme')).toBe(7n);

    reads.length = 0;
    now = new Date('2026-12-01T03:10:00Z');
    meters = [{ ...count, filter: { ...count.filter, routes: ['/v1/score'] } }];
    await current.refresh();
    expect(reads[0]).toBe('calls 12-01T00..12-01T02'); // from the period's start again

    reads.length = 0;
    now = new Date('2026-12-02T03:10:00Z');
    await current.refresh();
    expect(reads[0]).toBe('calls 12-01T00..12-02T02'); // a day later: the whole settled part again

    reads.length = 0;
    now = new Date('2026-12-02T01:10:00Z');
    await current.refresh();
    expect(reads[0]).toBe('calls 12-01T00..12-02T00'); // the clock went back
  });

  it('a failed read keeps the totals it had; unique counts are read over the whole period every time', async () => {
    const { add, source, reads } = logs();
    let fail = false;
    const errors: unknown[] = [];
    let now = new Date('2026-11-15T12:00:00Z');
    const current = new CurrentUsage({
      source: {
        period: async (m, f, t) => (fail ? Promise.reject(new Error('down')) : source.period(m, f, t)),
      },
      meters: () => [count, unique],
      now: () => now,
      settledAfterHours: 2,
      onError: (err) => errors.push(err),
    });
    add('2026-11-03T00:00:00Z', 'acme', 3n);
    await current.refresh();
    expect(reads).toEqual(['calls 11-01T00..11-15T10', 'calls 11-15T10..11-15T13', 'mau 11-01T00..11-15T13']);
    fail = true;
    now = new Date('2026-11-15T15:00:00Z');
    expect(await current.refresh()).toBeUndefined();
    expect(errors).toHaveLength(1);
    fail = false;
    reads.length = 0;
    await current.refresh();
    expect(reads).toEqual(['calls 11-15T10..11-15T13', 'calls 11-15T13..11-15T16', 'mau 11-01T00..11-15T16']);
    expect(current.quantity('calls', 'acme')).toBe(3n);
  });
});
