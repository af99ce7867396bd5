// The explorer's SQL on both engines: filters, metadata key/value, the histogram's buckets, paging
// newest first by cursor without gaps or repeats, retried copies counted once (even 40 of one event).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import {
  RequestLogExplorer,
  type ExplorerFilter,
} from '../../../src/storage/clickhouse/request-log-explorer.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';
import { requestLogRow } from '../../support/request-log-row.ts';

const BASE = Date.parse('2027-04-02T10:00:00Z') / 1000;
const rows = Array.from({ length: 30 }, (_, i) =>
  requestLogRow({
    event_id: `e${String(i).padStart(2, '0')}`,
    received_at: BASE + i * 60,
    request_time: BASE + i * 60,
    customer_key: i % 3 === 0 ? 'co_a' : 'co_b',
    method: i % 2 ? 'GET' : 'POST',
    route: i < 20 ? '/RetrieveCreditScore' : "/it's",
    status: i % 5 === 0 ? 500 : 200,
    meta_keys: ['metadata.plan'],
    meta_values: [i % 4 === 0 ? "pro'\\" : 'free'],
  }),
);
const RANGE = { from: new Date(BASE * 1000), to: new Date((BASE + 3600) * 1000) };

describe.each(ENGINES)('request log explorer on the %s engine', (engine) => {
  let ch: ClickHouse;
  let explorer: RequestLogExplorer;
  beforeAll(async () => {
    ch = await openMigratedDatabase(engine, 'explorer');
    explorer = new RequestLogExplorer(ch);
    // rows[29], the newest, 40 times over: more copies than a page's candidates hold.
    const lines = [...rows, rows[3]!, ...Array.from({ length: 40 }, () => rows[29]!)]
      .map((r) => `${JSON.stringify(r)}\n`)
      .join('');
    await ch.insertJsonEachRow('request_logs', lines);
  });
  afterAll(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  const expected = (f: Omit<ExplorerFilter, 'from' | 'to'>) =>
    rows.filter(
      (r) =>
        (f.customer === undefined || r.customer_key === f.customer) &&
        (f.route === undefined || r.route === f.route) &&
        (f.method === undefined || r.method === f.method) &&
        (f.status === undefined || r.status === f.status) &&
        (f.statusClass === undefined || Math.floor(r.status / 100) === f.statusClass) &&
        (f.metaKey === undefined ||
          (r.meta_keys[0] === f.metaKey && (f.metaValue === undefined || r.meta_values[0] === f.metaValue))),
    );

  it.each([
    {},
    { customer: 'co_a' },
    { route: "/it's" },
    { method: 'get' },
    { status: 200, route: '/RetrieveCreditScore' },
    { statusClass: 5 },
    { metaKey: 'metadata.plan', metaValue: "pro'\\" },
    { metaKey: 'metadata.none' },
  ])('counts what %o matches, each event once', async (f) => {
    const want = expected({ ...f, method: f.method?.toUpperCase() });
    const buckets = await explorer.histogram({ ...RANGE, ...f }, 600);
    expect(buckets.reduce((a, b) => a + b.calls, 0)).toBe(want.length);
    expect(buckets.every((b) => b.start.getTime() % 600_000 === 0)).toBe(true);
    const page = await explorer.page({ ...RANGE, ...f }, 200);
    expect(page.rows.map((r) => r.event_id)).toEqual(want.map((r) => r.event_id).reverse());
  });

  it('pages newest first, 7 at a time, without gaps or repeats', async () => {
    const seen: string[] = [];
    let cursor;
    for (let i = 0; i < 10; i++) {
      const page = await explorer.page(RANGE, 7, cursor);
      seen.push(...page.rows.map((r) => r.event_id));
      if (!page.next) break;
      cursor = page.next;
    }
    expect(seen).toEqual(rows.map((r) => r.event_id).reverse());
  });
});
