// The explorer's SQL on both engines: filters, metadata key/value, the histogram's buckets, paging
// newest first by cursor without gaps or repeats, retried copies counted once (even 40 of one event);
// and the histogram's two paths: minutes a merged part alone holds (count()) beside minutes where copies
// can be (a part inserted since, never merged), and a copy with another request time left out once decided.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import { CopyResolution } from '../../../src/storage/clickhouse/copy-resolution.ts';
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

  it.each([1, 2, 7])(
    'pages %i at a time from a range that ends with the rows (windows of a minute and more, full of copies)',
    async (limit) => {
      // The last minute holds rows 28 and 29 (41 copies): candidates all copies, then wider windows.
      const range = { from: RANGE.from, to: new Date((BASE + 29 * 60 + 1) * 1000) };
      const seen: string[] = [];
      let cursor;
      for (let i = 0; i < 40; i++) {
        const page = await explorer.page(range, limit, cursor);
        expect(page.rows.length).toBeLessThanOrEqual(limit);
        seen.push(...page.rows.map((r) => r.event_id));
        if (!page.next) break;
        cursor = page.next;
      }
      expect(seen).toEqual(rows.map((r) => r.event_id).reverse());
    },
  );
});

describe.each(ENGINES)('request log explorer over merged parts and new copies on the %s engine', (engine) => {
  let ch: ClickHouse;
  let explorer: RequestLogExplorer;
  const insert = (list: typeof rows) =>
    ch.insertJsonEachRow('request_logs', list.map((r) => `${JSON.stringify(r)}\n`).join(''));
  const parts = async () =>
    (
      await ch.query(
        `SELECT name FROM system.parts WHERE database = '${ch.database}' AND table = 'request_logs' AND active ORDER BY name`,
        z.object({ name: z.string() }),
      )
    ).map((p) => p.name);
  // Minute buckets: each row its own minute (rows are a minute apart).
  const perBucket = async () =>
    (await explorer.histogram(RANGE, 60)).map((b) => [(b.start.getTime() / 1000 - BASE) / 60, b.calls]);
  const everyMinuteOnce = rows.map((_, i) => [i, 1]);

  beforeAll(async () => {
    ch = await openMigratedDatabase(engine, 'explorer_parts');
    const copies = new CopyResolution(ch, { minIntervalMs: 0 });
    explorer = new RequestLogExplorer(ch, copies);
    await insert(rows);
    await ch.command(`OPTIMIZE TABLE ${ch.table('request_logs')} FINAL`);
  });
  afterAll(async () => {
    await ch.command(`DROP DATABASE IF EXISTS ${ch.database}`);
    await ch.close();
  });

  it('counts rows a merged part alone holds, and dedupes where a new insert put copies', async () => {
    expect(await parts()).toHaveLength(1);
    expect(await perBucket()).toEqual(everyMinuteOnce);
    // Retried batches after the merge: rows 5-7 once more, and row 20 twice in one insert.
    await insert([rows[5]!, rows[6]!, rows[7]!]);
    await insert([rows[20]!, rows[20]!]);
    expect((await parts()).length).toBe(3);
    expect(await perBucket()).toEqual(everyMinuteOnce);
    const page = await explorer.page(RANGE, 200);
    expect(page.rows.map((r) => r.event_id)).toEqual(rows.map((r) => r.event_id).reverse());
    // Merged again: the copies collapse, the count stays.
    await ch.command(`OPTIMIZE TABLE ${ch.table('request_logs')} FINAL`);
    expect(await perBucket()).toEqual(everyMinuteOnce);
  });

  it('leaves out a copy with another request time once the copy resolution decided it', async () => {
    // Row 10 sent again a day later with a request time 90 s later: the first received counts.
    const late = { ...rows[10]!, request_time: rows[10]!.request_time + 90, received_at: BASE + 86_400 };
    await insert([late]);
    await new CopyResolution(ch, { minIntervalMs: 0 }).catchUp();
    expect(await perBucket()).toEqual(everyMinuteOnce);
    const page = await explorer.page(RANGE, 200);
    expect(page.rows.map((r) => r.event_id)).toEqual(rows.map((r) => r.event_id).reverse());
    expect(page.rows.find((r) => r.event_id === 'e10')?.request_time).toBe(
      new Date(rows[10]!.request_time * 1000).toISOString().slice(0, 19).replace('T', ' '),
    );
  });
});
