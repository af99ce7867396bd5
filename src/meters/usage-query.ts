import { aggregationOf } from './aggregations.ts';
import { periodEnd, periodId, periodStart, type BillingPeriod } from '../time/billing-period.ts';
import { HOUR_MS } from '../time/hours.ts';
import type { HourlyValue, UsageSource } from './evaluation.ts';
import type { MeterDefinition } from './meter-schema.ts';
import { majorUnitDecimal, type Money } from './money.ts';
import { priceTiers, type Pricing } from './tiers.ts';

/**
 * Reading usage back: per hour, day or month, and customers' billing periods priced by the meters'
 * tiers. Additive meters (count, sum) add their hours up; non-additive ones (unique_count, min, max,
 * latest) never do: a month is its stored period-to-date value, and a day is computed from the logs
 * with the meter's current definition.
 */
export type UsageWindow = 'hour' | 'day' | 'month';

export interface StoredUsage extends HourlyValue {
  periodValue: bigint;
}

/** Port: stored hourly usage of a meter (all versions), latest revision of each hour. */
export interface UsageReader {
  /** `customers`: only these (an empty list: none); left out: every customer. */
  usage(meter: string, from: Date, to: Date, customers?: readonly string[]): Promise<StoredUsage[]>;
}

/**
 * Money as the API answers it, one shape everywhere: the currency, the charged amount as an exact
 * decimal string of major units and as an integer of minor units, and the same for people.
 */
export interface Cost {
  /** Lower-case ISO 4217, as in the meter's pricing ('usd'). */
  currency: string;
  /** Major units, exact, with the currency's decimals: '4200.00' (usd), '1500' (jpy), '1.234' (kwd). */
  amount: string;
  /** Whole minor units as charged: 420000. An integer; exact up to 2^53 - 1 minor units. */
  amount_minor: number;
  /** For people: '$4,200.00'. */
  display: string;
}

export interface TierCost {
  tier: number;
  from: string;
  up_to: string;
  quantity: string;
  unit_amount_decimal: string;
  flat_amount_decimal: string;
  /** The tier line's charged amount, in the period cost's currency. */
  amount: string;
  amount_minor: number;
  display: string;
}

export interface UsagePoint {
  meter: string;
  customer: string;
  window_start: string;
  value: string;
  /** Month windows of a priced meter only: the month's quantity priced by the tiers. */
  cost?: Cost;
}

export interface MeterPeriodUsage {
  meter: string;
  unit: string;
  quantity: string;
  /** Priced meters only. */
  cost?: Cost;
  tiers?: TierCost[];
}

export interface CustomerPeriodUsage {
  customer: string;
  period: { id: string; start: string; end: string };
  meters: MeterPeriodUsage[];
}

function windowStart(d: Date, window: UsageWindow): Date {
  if (window === 'hour') return d;
  if (window === 'month') return periodStart(d);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
}

function minorUnits(rounded: bigint): number {
  if (rounded > BigInt(Number.MAX_SAFE_INTEGER) || rounded < -BigInt(Number.MAX_SAFE_INTEGER))
    throw new RangeError(`amount of ${rounded} minor units is beyond what a JSON integer holds exactly`);
  return Number(rounded);
}

function costOf(money: Money, currency: string): Cost {
  return {
    currency,
    amount: majorUnitDecimal(money.rounded_minor, currency),
    amount_minor: minorUnits(money.rounded_minor),
    display: money.display,
  };
}

/** What `quantity` costs under `pricing`: the total, and each tier line, in the API's one money shape. */
export function priceView(pricing: Pricing, quantity: bigint): { cost: Cost; tiers: TierCost[] } {
  const price = priceTiers(pricing, quantity);
  return {
    cost: costOf(price.total, pricing.currency),
    tiers: price.lines.map((l) => {
      const { amount, amount_minor, display } = costOf(l.amount, pricing.currency);
      return {
        tier: l.tier,
        from: l.from.toString(),
        up_to: l.up_to === 'inf' ? 'inf' : l.up_to.toString(),
        quantity: l.quantity.toString(),
        unit_amount_decimal: l.unit_amount_decimal,
        flat_amount_decimal: l.flat_amount_decimal,
        amount,
        amount_minor,
        display,
      };
    }),
  };
}

export class UsageQueryService {
  constructor(
    private readonly reader: UsageReader,
    private readonly source: UsageSource,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The billing period that holds now. */
  currentPeriod(): BillingPeriod {
    const now = this.now();
    return { start: periodStart(now), end: periodEnd(now) };
  }

  async usage(
    meter: MeterDefinition,
    q: { from: Date; to: Date; window: UsageWindow; customers?: readonly string[] },
  ): Promise<UsagePoint[]> {
    const rows = await this.reader.usage(meter.name, q.from, q.to, q.customers);
    const { additive } = aggregationOf(meter);
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
    const priced = q.window === 'month' ? meter.pricing : undefined;
    return [...points.values()]
      .sort((a, b) => +a.start - +b.start || (a.customer < b.customer ? -1 : 1))
      .map((p) => ({
        meter: meter.name,
        customer: p.customer,
        window_start: p.start.toISOString(),
        value: p.value.toString(),
        ...(priced ? { cost: priceView(priced, p.value).cost } : {}),
      }));
  }

  /** Each meter's usage of one customer in a billing period (default: the current one), priced. */
  async customerPeriod(
    customer: string,
    meters: readonly MeterDefinition[],
    period?: BillingPeriod,
  ): Promise<CustomerPeriodUsage> {
    const [usage] = await this.customersPeriod([customer], meters, period);
    return usage!;
  }

  /**
   * The same for several customers, in their order, with one query per meter: what a page of the
   * customer list needs. A period not over yet is read up to now.
   */
  async customersPeriod(
    customers: readonly string[],
    meters: readonly MeterDefinition[],
    period: BillingPeriod = this.currentPeriod(),
  ): Promise<CustomerPeriodUsage[]> {
    const now = this.now();
    const to = period.end < now ? period.end : now;
    const quantities = new Map<string, Map<string, bigint>>();
    if (customers.length > 0) {
      for (const meter of meters) {
        const points = await this.usage(meter, { from: period.start, to, window: 'month', customers });
        quantities.set(meter.name, new Map(points.map((p) => [p.customer, BigInt(p.value)])));
      }
    }
    const periodView = {
      id: periodId(period.start),
      start: period.start.toISOString(),
      end: period.end.toISOString(),
    };
    return customers.map((customer) => ({
      customer,
      period: periodView,
      meters: meters.map((meter) => {
        const quantity = quantities.get(meter.name)?.get(customer) ?? 0n;
        return {
          meter: meter.name,
          unit: meter.unit,
          quantity: quantity.toString(),
          ...(meter.pricing ? priceView(meter.pricing, quantity) : {}),
        };
      }),
    }));
  }
}
