import { z } from 'zod';
import {
  BillingStatusService,
  type BillingState,
  type BillingStateStore,
  type BillingStatusDeps,
  type PaymentStatus,
} from '../../billing/stripe/billing-status.ts';
import {
  CustomerMappingService,
  type CustomerMappingStore,
  type ExplicitMapping,
} from '../../billing/stripe/customer-directory.ts';
import {
  StripeWebhookService,
  type BillingLogger,
  type WebhookEventStore,
} from '../../billing/stripe/webhooks.ts';
import type { MeterDefinition } from '../../meters/meter-schema.ts';
import type { ClickHouse } from './clickhouse.ts';
import { ClickHouseCustomerIndex } from './customer-index.ts';
import { literal } from './escape.ts';
import { chunkKeys, inList } from './key-lists.ts';
import { seconds } from './row-types.ts';

/**
 * The ClickHouse repositories of the Stripe side: customer mappings (customer_mappings, plus the
 * Moesif `companies` table), handled webhook ids (stripe_webhook_events) and billing state
 * (stripe_billing_state). Reads use argMax over `version` rather than FINAL: exact before merges, and
 * the same SQL on 18.16 and the embedded engine. Aliases never reuse a column name, so that an alias
 * cannot leak into another aggregate (ClickHouse substitutes aliases in expressions).
 */

const uint64 = z
  .union([z.string().regex(/^\d+$/), z.number().int().nonnegative()])
  .transform((v) => BigInt(v));
const epochSeconds = z.coerce.number().int().nonnegative();
const explicitSource = z.enum(['admin', 'webhook']);

export { chunkKeys } from './key-lists.ts';

/** Latest explicit mapping of each key, and the latest non-empty Moesif company value, in one query. */
export function mappingLookupSql(
  tables: { mappings: string; companies: string },
  keys: readonly string[],
): string {
  const list = inList(keys);
  return `SELECT 'explicit' AS kind, customer_key AS mapped_key,
       argMax(stripe_customer_id, version) AS mapped_id, argMax(source, version) AS mapped_source,
       toUInt32(argMax(updated_at, version)) AS mapped_at, toString(max(version)) AS mapped_version
FROM ${tables.mappings} WHERE customer_key IN ${list} GROUP BY customer_key
UNION ALL
SELECT 'moesif' AS kind, company_id AS mapped_key,
       argMax(latest_id, latest_version) AS mapped_id, 'moesif' AS mapped_source,
       toUInt32(0) AS mapped_at, toString(max(latest_version)) AS mapped_version
FROM (
  SELECT company_id, argMax(stripe_customer_id, version) AS latest_id, max(version) AS latest_version
  FROM ${tables.companies} WHERE company_id IN ${list} GROUP BY app, company_id
) WHERE latest_id != '' GROUP BY company_id`;
}

export function mappingListSql(table: string, q: { limit: number; after?: string }): string {
  return `SELECT customer_key, mapped_id, mapped_source, mapped_at, toString(mapped_version) AS mapped_version
FROM (
  SELECT customer_key, argMax(stripe_customer_id, version) AS mapped_id, argMax(source, version) AS mapped_source,
         toUInt32(argMax(updated_at, version)) AS mapped_at, max(version) AS mapped_version
  FROM ${table}${q.after === undefined ? '' : ` WHERE customer_key > ${literal(q.after)}`}
  GROUP BY customer_key
) WHERE mapped_id != '' ORDER BY customer_key LIMIT ${literal(q.limit)}`;
}

const lookupRow = z.object({
  kind: z.enum(['explicit', 'moesif']),
  mapped_key: z.string(),
  mapped_id: z.string(),
  mapped_source: z.string(),
  mapped_at: epochSeconds,
  mapped_version: uint64,
});

const listRow = z.object({
  customer_key: z.string(),
  mapped_id: z.string(),
  mapped_source: explicitSource,
  mapped_at: epochSeconds,
  mapped_version: uint64,
});

export class ClickHouseCustomerMappingStore implements CustomerMappingStore {
  constructor(private readonly ch: ClickHouse) {}

  async lookup(customerKeys: readonly string[]) {
    const explicit = new Map<string, ExplicitMapping>();
    const moesif = new Map<string, string>();
    const tables = { mappings: this.ch.table('customer_mappings'), companies: this.ch.table('companies') };
    for (const keys of chunkKeys([...new Set(customerKeys)])) {
      for (const r of await this.ch.query(mappingLookupSql(tables, keys), lookupRow)) {
        if (r.kind === 'moesif') moesif.set(r.mapped_key, r.mapped_id);
        else {
          explicit.set(r.mapped_key, {
            customerKey: r.mapped_key,
            stripeCustomerId: r.mapped_id,
            // Written only by this store; anything else would be a bug, read as the operator's.
            source: explicitSource.catch('admin').parse(r.mapped_source),
            updatedAt: new Date(r.mapped_at * 1000),
            version: r.mapped_version,
          });
        }
      }
    }
    return { explicit, moesif };
  }

  async write(m: ExplicitMapping): Promise<void> {
    const row = {
      customer_key: m.customerKey,
      stripe_customer_id: m.stripeCustomerId,
      source: m.source,
      updated_at: seconds(m.updatedAt),
      version: m.version.toString(),
    };
    await this.ch.insertJsonEachRow('customer_mappings', `${JSON.stringify(row)}\n`);
  }

  async list(q: { limit: number; after?: string }): Promise<ExplicitMapping[]> {
    const rows = await this.ch.query(mappingListSql(this.ch.table('customer_mappings'), q), listRow);
    return rows.map((r) => ({
      customerKey: r.customer_key,
      stripeCustomerId: r.mapped_id,
      source: r.mapped_source,
      updatedAt: new Date(r.mapped_at * 1000),
      version: r.mapped_version,
    }));
  }
}

export class ClickHouseWebhookEventStore implements WebhookEventStore {
  constructor(private readonly ch: ClickHouse) {}

  async seen(eventId: string): Promise<boolean> {
    const [row] = await this.ch.query(
      `SELECT count() AS n FROM ${this.ch.table('stripe_webhook_events')} WHERE event_id = ${literal(eventId)}`,
      z.object({ n: z.coerce.number() }),
    );
    return (row?.n ?? 0) > 0;
  }

  async record(event: { id: string; type: string; created: Date; receivedAt: Date }): Promise<void> {
    const row = {
      event_id: event.id,
      type: event.type,
      stripe_created: seconds(event.created),
      received_at: seconds(event.receivedAt),
    };
    await this.ch.insertJsonEachRow('stripe_webhook_events', `${JSON.stringify(row)}\n`);
  }
}

export function billingStateSql(table: string, ids: readonly string[]): string {
  return `SELECT stripe_customer_id AS state_customer,
       argMax(subscription_id, version) AS sub_id, argMax(subscription_status, version) AS sub_status,
       toUInt32(argMax(current_period_start, version)) AS period_start, toUInt32(argMax(current_period_end, version)) AS period_end,
       argMax(payment_status, version) AS pay_status, argMax(last_invoice_id, version) AS invoice_id,
       toUInt32(argMax(updated_at, version)) AS changed_at, toString(max(version)) AS state_version,
       toString(argMax(subscription_version, version)) AS sub_version, toString(argMax(payment_version, version)) AS pay_version
FROM ${table} WHERE stripe_customer_id IN ${inList(ids)} GROUP BY stripe_customer_id`;
}

const stateRow = z.object({
  state_customer: z.string(),
  sub_id: z.string(),
  sub_status: z.string(),
  period_start: epochSeconds,
  period_end: epochSeconds,
  pay_status: z.enum(['', 'paid', 'failed']),
  invoice_id: z.string(),
  changed_at: epochSeconds,
  state_version: uint64,
  sub_version: uint64,
  pay_version: uint64,
});

export class ClickHouseBillingStateStore implements BillingStateStore {
  constructor(private readonly ch: ClickHouse) {}

  async get(stripeCustomerIds: readonly string[]): Promise<Map<string, BillingState>> {
    const out = new Map<string, BillingState>();
    for (const ids of chunkKeys([...new Set(stripeCustomerIds)])) {
      for (const r of await this.ch.query(
        billingStateSql(this.ch.table('stripe_billing_state'), ids),
        stateRow,
      )) {
        out.set(r.state_customer, {
          stripeCustomerId: r.state_customer,
          subscriptionId: r.sub_id,
          subscriptionStatus: r.sub_status,
          currentPeriodStart: r.period_start === 0 ? undefined : new Date(r.period_start * 1000),
          currentPeriodEnd: r.period_end === 0 ? undefined : new Date(r.period_end * 1000),
          paymentStatus: r.pay_status as PaymentStatus,
          lastInvoiceId: r.invoice_id,
          updatedAt: new Date(r.changed_at * 1000),
          // Rows written before migration 6 have 0: their fields are as recent as the row.
          subscriptionVersion: r.sub_version === 0n && r.sub_id !== '' ? r.state_version : r.sub_version,
          paymentVersion: r.pay_version === 0n && r.pay_status !== '' ? r.state_version : r.pay_version,
          version: r.state_version,
        });
      }
    }
    return out;
  }

  async put(s: BillingState): Promise<void> {
    const row = {
      stripe_customer_id: s.stripeCustomerId,
      subscription_id: s.subscriptionId,
      subscription_status: s.subscriptionStatus,
      current_period_start: s.currentPeriodStart ? seconds(s.currentPeriodStart) : 0,
      current_period_end: s.currentPeriodEnd ? seconds(s.currentPeriodEnd) : 0,
      payment_status: s.paymentStatus,
      last_invoice_id: s.lastInvoiceId,
      updated_at: seconds(s.updatedAt),
      subscription_version: s.subscriptionVersion.toString(),
      payment_version: s.paymentVersion.toString(),
      version: s.version.toString(),
    };
    await this.ch.insertJsonEachRow('stripe_billing_state', `${JSON.stringify(row)}\n`);
  }
}

export interface StripeBillingOptions {
  ch: ClickHouse;
  meters: readonly MeterDefinition[];
  /** UsageQueryService (its customersPeriod). */
  usage: BillingStatusDeps['usage'];
  /** config.stripe.webhookSecret; undefined: the webhook endpoint answers 503 webhooks_disabled. */
  webhookSecret: string | undefined;
  /** config.stripe.webhookToleranceSeconds. */
  toleranceSeconds: number;
  logger: BillingLogger;
  now?: () => Date;
}

export interface StripeBilling {
  mappings: CustomerMappingService;
  webhooks: StripeWebhookService;
  status: BillingStatusService;
}

/** The Stripe customer mapping, webhooks and billing status over ClickHouse, for main.ts to wire. */
export function createStripeBilling(o: StripeBillingOptions): StripeBilling {
  const now = o.now ?? (() => new Date());
  const mappings = new CustomerMappingService(new ClickHouseCustomerMappingStore(o.ch), now);
  const states = new ClickHouseBillingStateStore(o.ch);
  const webhooks = new StripeWebhookService({
    events: new ClickHouseWebhookEventStore(o.ch),
    states,
    mappings,
    secret: o.webhookSecret,
    toleranceSeconds: o.toleranceSeconds,
    logger: o.logger,
    now,
  });
  const status = new BillingStatusService({
    directory: mappings,
    states,
    usage: o.usage,
    meters: o.meters,
    customers: new ClickHouseCustomerIndex(o.ch),
  });
  return { mappings, webhooks, status };
}
