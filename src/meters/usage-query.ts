import { HOUR_MS, periodStart, type HourlyValue, type UsageSource } from './evaluation.ts';
import type { MeterDefinition } from './meter-schema.ts';
import { priceTiers } from './tiers.ts';

/**
 * Reading usage back: per hour, day or month, and a customer's current billing period priced by the
 * meter's tiers. Additive meters (count, sum) add their hours up; non-additive ones (unique_count, min,
 * max, latest) never do: a month is its stored period-to-date value, and a day is computed from the
 * logs with the meter's current definition.
 */
export type UsageWindow = 'hour' | 'day' | 'month';

export interface StoredUsage extends HourlyValue {
  periodValue: bigint;
}

/** Port: stored hourly usage of a meter (all versions), latest revision of each hour. */
export interface UsageReader {
  usage(meter: string, from: Date, to: Date, customer?: string): Promise<StoredUsage[]>;
}

export interface UsagePoint {
  meter: string;
  customer: string;
  window_start: string;
  value: string;
}

const ADDITIVE = new Set(['count', 'sum']);

function windowStart(d: Date, window: UsageWindow): Date {
  if (window === 'hour') return d;
  if (window === 'month') return periodStart(d);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
}

export class UsageQueryService {
  constructor(
    private readonly reader: UsageReader,
    private readonly source: UsageSource,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async usage(
    meter: MeterDefinition,
    q: { from: Date; to: Date; window: UsageWindow; customer?: string },
  ): Promise<UsagePoint[]> {
    const rows = await this.reader.usage(meter.name, q.from, q.to, q.customer);
    const additive = ADDITIVE.has(meter.aggregation.type);
    const points = new Map<string, { customer: string; start: Date; value: bigint; lastHour: number }>();
    for (const r of rows) {
      const start = windowStart(r.hour, q.window);
      const key = `${start.getTime()}\u0000${r.customer}`;
      const p = points.get(key) ?? { customer: r.customer, start, value: 0n, lastHour: -1 };
      if (q.window === 'hour' || additive) p.value += r.value;
      else if (q.window === 'month' && r.hour.getTime() > p.lastHour) {
        // The latest period-to-date value inside the month is the month's value so far.
        p.value = r.periodValue;
        p.lastHour = r.hour.getTime();
      }
      points.set(key, p);
    }
    if (!additive && q.window === 'day') {
      for (const p of points.values()) {
        const end = new Date(Math.min(p.start.getTime() + 24 * HOUR_MS, q.to.getTime()));
        const from = new Date(Math.max(p.start.getTime(), q.from.getTime()));
        p.value = (await this.source.period(meter, from, end)).get(p.customer) ?? 0n;
      }
    }
    return [...points.values()]
      .sort((a, b) => +a.start - +b.start || (a.customer < b.customer ? -1 : 1))
      .map((p) => ({
        meter: meter.name,
        customer: p.customer,
        window_start: p.start.toISOString(),
        value: p.value.toString(),
      }));
  }

  /** Each meter's usage in the customer's current billing period (calendar month, UTC), priced. */
  async customerPeriod(customer: string, meters: readonly MeterDefinition[]) {
    const now = this.now();
    const from = periodStart(now);
    const out = [];
    for (const meter of meters) {
      const [point] = await this.usage(meter, { from, to: now, window: 'month', customer });
      const quantity = BigInt(point?.value ?? '0');
      const price = meter.pricing ? priceTiers(meter.pricing, quantity) : undefined;
      out.push({
        meter: meter.name,
        unit: meter.unit,
        quantity: quantity.toString(),
        ...(price
          ? {
              currency: meter.pricing!.currency,
              cost: {
                minor: price.total.minor,
                amount: price.total.rounded_minor.toString(),
                display: price.total.display,
              },
              tiers: price.lines.map((l) => ({
                tier: l.tier,
                from: l.from.toString(),
                up_to: l.up_to === 'inf' ? 'inf' : l.up_to.toString(),
                quantity: l.quantity.toString(),
                unit_amount_decimal: l.unit_amount_decimal,
                flat_amount_decimal: l.flat_amount_decimal,
                amount: l.amount.rounded_minor.toString(),
                display: l.amount.display,
              })),
            }
          : {}),
      });
    }
    return {
      customer,
      period: {
        start: from.toISOString(),
        end: new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1)).toISOString(),
      },
      meters: out,
    };
  }
}
