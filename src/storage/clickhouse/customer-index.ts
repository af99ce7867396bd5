import { z } from 'zod';
import type { CustomerIndex, CustomerListQuery } from '../../billing/stripe/billing-status.ts';
import type { ClickHouse } from './clickhouse.ts';
import { literal } from '../../sql/escape.ts';

/**
 * The customers billing-meter knows, over ClickHouse: every key with metered usage (meter_usage, any
 * meter, any period), an explicit Stripe mapping (customer_mappings) or a Moesif company carrying a
 * Stripe customer id (companies). A key whose logs were never evaluated is not among them yet.
 *
 * Each source is grouped by key before the union, so a page reads each table's distinct keys once;
 * meter_usage is ordered by (meter, version, customer, hour), so the scan is of its keys column, not a
 * lookup: fine for an admin listing, not for a request path.
 */

export interface CustomerTables {
  usage: string;
  mappings: string;
  companies: string;
}

/** The key condition of one source: after the cursor, with the prefix (bytes, as ClickHouse compares). */
function keyCondition(column: string, q: { after?: string; prefix?: string; equals?: string }): string {
  const parts: string[] = [];
  if (q.equals !== undefined) parts.push(`${column} = ${literal(q.equals)}`);
  if (q.after !== undefined) parts.push(`${column} > ${literal(q.after)}`);
  if (q.prefix !== undefined && q.prefix !== '') {
    // substring/length count bytes on both engines, as the prefix's UTF-8 bytes are compared.
    parts.push(
      `substring(${column}, 1, ${literal(Buffer.byteLength(q.prefix, 'utf8'))}) = ${literal(q.prefix)}`,
    );
  }
  parts.push(`${column} != ''`);
  return parts.join(' AND ');
}

function knownKeysSql(t: CustomerTables, q: { after?: string; prefix?: string; equals?: string }): string {
  return `SELECT customer AS customer_key FROM ${t.usage} WHERE ${keyCondition('customer', q)} GROUP BY customer
  UNION ALL
  SELECT customer_key FROM ${t.mappings} WHERE ${keyCondition('customer_key', q)} GROUP BY customer_key
  UNION ALL
  SELECT company_id AS customer_key FROM ${t.companies}
  WHERE stripe_customer_id != '' AND ${keyCondition('company_id', q)} GROUP BY company_id`;
}

/** One page of known keys, in byte order, after `after`, starting with `prefix`. */
export function customerListSql(t: CustomerTables, q: CustomerListQuery): string {
  return `SELECT customer_key FROM (
  ${knownKeysSql(t, q)}
) GROUP BY customer_key ORDER BY customer_key LIMIT ${literal(q.limit)}`;
}

export function customerSeenSql(t: CustomerTables, customerKey: string): string {
  return `SELECT count() AS n FROM (
  ${knownKeysSql(t, { equals: customerKey })}
)`;
}

export class ClickHouseCustomerIndex implements CustomerIndex {
  constructor(private readonly ch: ClickHouse) {}

  private tables(): CustomerTables {
    return {
      usage: this.ch.table('meter_usage'),
      mappings: this.ch.table('customer_mappings'),
      companies: this.ch.table('companies'),
    };
  }

  async list(q: CustomerListQuery): Promise<string[]> {
    const rows = await this.ch.query(
      customerListSql(this.tables(), q),
      z.object({ customer_key: z.string() }),
    );
    return rows.map((r) => r.customer_key);
  }

  async seen(customerKey: string): Promise<boolean> {
    const [row] = await this.ch.query(
      customerSeenSql(this.tables(), customerKey),
      z.object({ n: z.coerce.number() }),
    );
    return (row?.n ?? 0) > 0;
  }
}
