import { appendFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Shipper, type RowSink } from '../../../src/collector/shipper.ts';
import { JSON_EACH_ROW, tabSeparated, type RowFormat } from '../../../src/collector/row-format.ts';
import { remainder, Spool } from '../../../src/collector/spool.ts';
import { SpoolFullError, UpstreamError } from '../../../src/errors.ts';

const line = (i: number) => Buffer.from(`{"event_id":"e${i}"}\n`);
const quietLogger = { info() {}, warn() {}, error() {} };

const dirs: string[] = [];
const opened: Spool[] = [];
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function newSpool(maxBytes = 1 << 20) {
  const dir = await mkdtemp(join(tmpdir(), 'bm-spool-'));
  dirs.push(dir);
  const spool = new Spool({ dir, maxBytes, retryAfterSeconds: 7 });
  await spool.open();
  opened.push(spool);
  return spool;
}

async function spooledLines(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.ndjson')).sort();
  const text = (await Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')))).join('');
  return text.split('\n').filter(Boolean);
}

describe('spool', () => {
  it('keeps every acknowledged append, in order, across concurrent appends (group commit)', async () => {
    const spool = await newSpool();
    await Promise.all(Array.from({ length: 500 }, (_, i) => spool.append(line(i))));
    await spool.seal();
    const lines = await spooledLines(spool.dir);
    expect(lines).toHaveLength(500);
    expect(new Set(lines).size).toBe(500);
    expect(spool.depthBytes).toBe(lines.reduce((n, l) => n + l.length + 1, 0));
  });

  it('recovers segments a killed process left behind and cuts a torn last line', async () => {
    const spool = await newSpool();
    await spool.append(line(1));
    await spool.append(line(2));
    // Simulate a crash mid-write: half a line after the acknowledged ones, file never sealed.
    const [active] = (await readdir(spool.dir)).filter((n) => n.endsWith('.ndjson'));
    await appendFile(join(spool.dir, active!), '{"event_id":"torn');
    const reopened = new Spool({ dir: spool.dir, maxBytes: 1 << 20 });
    await reopened.open();
    opened.push(reopened);
    expect(reopened.sealedSegments()).toHaveLength(1);
    expect(await spooledLines(spool.dir)).toEqual(['{"event_id":"e1"}', '{"event_id":"e2"}']);
    await reopened.append(line(3));
    await reopened.seal();
    expect(reopened.sealedSegments()).toHaveLength(2);
  });

  it('resumes a short writev at the right byte, within or between buffers', () => {
    const parts = [Buffer.from('abc'), Buffer.from('de'), Buffer.from('fgh')];
    const text = (bs: Buffer[]) => Buffer.concat(bs).toString();
    for (let skip = 0; skip <= 8; skip++) expect(text(remainder(parts, skip))).toBe('abcdefgh'.slice(skip));
    expect(remainder(parts, 3)[0]).toBe(parts[1]); // whole buffers are passed on, not copied
  });

  it('refuses appends past its size with a SpoolFullError carrying Retry-After, and loses nothing', async () => {
    const spool = await newSpool(line(0).length * 3);
    await spool.append(line(1));
    await spool.append(line(2));
    await spool.append(line(3));
    const err = await spool.append(line(4)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpoolFullError);
    expect((err as SpoolFullError).retryAfterSeconds).toBe(7);
    expect(spool.hasRoom).toBe(false);
    await spool.seal();
    expect(await spooledLines(spool.dir)).toHaveLength(3);
  });
});

/** A shipper of one spool (to table `table`), with a quiet logger. */
function shipperFor(spool: Spool, sink: RowSink, intervalMs: number, table = 't'): Shipper {
  return new Shipper({ spools: new Map([[table, spool]]), sink, intervalMs, logger: quietLogger });
}

/** Polls every 5 ms until `done()` holds. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
}

/** A sink that records when each insert starts and ends; the first insert lasts until holdFirst() settles. */
function timedSink(holdFirst: () => Promise<unknown>) {
  const starts: number[] = [];
  const ends: number[] = [];
  const sink: RowSink = {
    insertRows: async () => {
      starts.push(performance.now());
      if (starts.length === 1) await holdFirst();
      ends.push(performance.now());
    },
  };
  return { sink, starts, ends };
}

describe('shipper', () => {
  it('ships sealed segments and deletes them only after the sink took them', async () => {
    const spool = await newSpool();
    const inserted: string[] = [];
    let down = true;
    const sink: RowSink = {
      insertRows: async (_table, _format, body) => {
        if (down) throw new UpstreamError('clickhouse', 'connection refused', true);
        inserted.push(...body.toString().split('\n').filter(Boolean));
      },
    };
    const shipper = shipperFor(spool, sink, 10, 'request_logs');
    for (let i = 0; i < 10; i++) await spool.append(line(i));
    await expect(shipper.flush()).rejects.toThrow('connection refused');
    expect(shipper.healthy).toBe(false);
    expect(spool.depthBytes).toBeGreaterThan(0);
    down = false;
    await shipper.flush();
    expect(inserted).toHaveLength(10);
    expect(spool.depthBytes).toBe(0);
    expect(await spooledLines(spool.dir)).toEqual([]);
    expect(shipper.healthy).toBe(true);
  });

  it('never ships a segment twice when a flush meets the timer (regression: users stored twice)', async () => {
    const spool = await newSpool();
    const inserted: string[] = [];
    const sink: RowSink = {
      insertRows: async (_t, _f, body) => {
        await new Promise((r) => setTimeout(r, 5));
        inserted.push(...body.toString().split('\n').filter(Boolean));
      },
    };
    const shipper = shipperFor(spool, sink, 1);
    shipper.start();
    for (let i = 0; i < 40; i++) {
      await spool.append(line(i));
      await Promise.all([shipper.flush(), shipper.flush()]);
    }
    await shipper.stop();
    await shipper.flush();
    expect(inserted.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `{"event_id":"e${i}"}`).sort());
  });

  it('ships a backlog back-to-back instead of waiting the interval, and calm load at the interval', async () => {
    const spool = await newSpool(64 << 20);
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    const { sink, starts, ends } = timedSink(() => firstHeld);
    const shipper = shipperFor(spool, sink, 400);
    await spool.append(line(0));
    shipper.start();
    await until(() => starts.length >= 1);
    // While the first insert runs, 9 MiB arrive: a backlog.
    const big = Buffer.from(`${JSON.stringify({ event_id: 'x', pad: 'p'.repeat(1024 * 1024) })}\n`);
    for (let i = 0; i < 9; i++) await spool.append(big);
    releaseFirst();
    await until(() => starts.length >= 2);
    expect(starts[1]! - ends[0]!).toBeLessThan(200); // not the 400 ms interval
    // Nothing left behind: the next one waits the interval again.
    await spool.append(line(1));
    await until(() => starts.length >= 3);
    expect(starts[2]! - ends[1]!).toBeGreaterThanOrEqual(350);
    await shipper.stop();
  });

  it('counts the interval from start to start: an insert longer than the interval is followed at once', async () => {
    const spool = await newSpool();
    const { sink, starts, ends } = timedSink(() => new Promise((r) => setTimeout(r, 450)));
    const shipper = shipperFor(spool, sink, 300);
    await spool.append(line(0));
    shipper.start();
    await until(() => starts.length >= 1);
    await spool.append(line(1)); // a little more arrives during the slow insert: no backlog
    await until(() => starts.length >= 2);
    await shipper.stop();
    expect(starts[1]! - ends[0]!).toBeLessThan(150); // not another 300 ms after the slow one ended
  });

  it('quarantines only the segment ClickHouse refuses for good, and ships the rest', async () => {
    const spool = await newSpool();
    await spool.append(line(1));
    await spool.seal();
    await spool.append(Buffer.from('{"poison":true}\n'));
    await spool.seal();
    await spool.append(line(3));
    const inserted: string[] = [];
    const sink: RowSink = {
      insertRows: async (_t, _f, body) => {
        if (body.includes('poison')) throw new UpstreamError('clickhouse', 'Cannot parse input', false);
        inserted.push(...body.toString().split('\n').filter(Boolean));
      },
    };
    const shipper = shipperFor(spool, sink, 10);
    await shipper.flush();
    expect(inserted).toEqual(['{"event_id":"e1"}', '{"event_id":"e3"}']);
    expect(await readdir(join(spool.dir, 'quarantine'))).toHaveLength(1);
  });
});

describe('segment formats', () => {
  const columns = ['event_id', 'status'];
  const tsvLine = (i: number) => Buffer.from(`e${i}\t200\n`);

  async function tsvSpool(dir?: string) {
    const where = dir ?? (await mkdtemp(join(tmpdir(), 'bm-spool-')));
    if (!dir) dirs.push(where);
    const spool = new Spool({ dir: where, maxBytes: 1 << 20, format: tabSeparated(columns) });
    await spool.open();
    opened.push(spool);
    return spool;
  }

  function recordingSink() {
    const inserts: { format: RowFormat; body: string }[] = [];
    const sink: RowSink = {
      insertRows: async (_t, format, body) => {
        inserts.push({ format, body: body.toString() });
      },
    };
    return { sink, inserts };
  }

  it('starts every TabSeparated segment with its column names, and ships the rows without them', async () => {
    const spool = await tsvSpool();
    await spool.append(tsvLine(1));
    await spool.seal();
    await spool.append(tsvLine(2));
    await spool.seal();
    const names = (await readdir(spool.dir)).sort();
    expect(names.every((n) => n.endsWith('.tsv'))).toBe(true);
    expect(await readFile(join(spool.dir, names[0]!), 'utf8')).toBe('event_id\tstatus\ne1\t200\n');
    const { sink, inserts } = recordingSink();
    const shipper = shipperFor(spool, sink, 10);
    await shipper.flush();
    // Two segments merged into one insert, each without its header line.
    expect(inserts).toEqual([{ format: tabSeparated(columns), body: 'e1\t200\ne2\t200\n' }]);
    expect(spool.depthBytes).toBe(0);
  });

  it('drops on open a segment torn inside its header or holding no row, and keeps the rest', async () => {
    const spool = await tsvSpool();
    await spool.append(tsvLine(1));
    await spool.seal();
    await writeFile(join(spool.dir, 'seg-0000000000000005.tsv'), 'event_id\tsta');
    await writeFile(join(spool.dir, 'seg-0000000000000006.tsv'), 'event_id\tstatus\n');
    const reopened = await tsvSpool(spool.dir);
    expect(reopened.sealedSegments().map((s) => s.name)).toEqual(['seg-0000000000000000.tsv']);
    expect(reopened.depthBytes).toBe('event_id\tstatus\ne1\t200\n'.length);
    await reopened.append(tsvLine(2));
    await reopened.seal();
    // Numbering goes on after the highest name seen, dropped ones included.
    expect(reopened.sealedSegments().map((s) => s.name)).toEqual([
      'seg-0000000000000000.tsv',
      'seg-0000000000000007.tsv',
    ]);
  });

  it('ships a spool left by an older version: JSONEachRow segments first, never merged with TabSeparated ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bm-spool-'));
    dirs.push(dir);
    const old = new Spool({ dir, maxBytes: 1 << 20 });
    await old.open();
    await old.append(line(1));
    await old.seal();
    await old.append(line(2));
    await old.close();
    const spool = await tsvSpool(dir);
    await spool.append(tsvLine(3));
    await spool.seal();
    expect(spool.sealedSegments().map((s) => s.name.slice(-6))).toEqual(['ndjson', 'ndjson', '02.tsv']);
    const { sink, inserts } = recordingSink();
    const shipper = shipperFor(spool, sink, 10);
    await shipper.flush();
    expect(inserts).toEqual([
      { format: JSON_EACH_ROW, body: '{"event_id":"e1"}\n{"event_id":"e2"}\n' },
      { format: tabSeparated(columns), body: 'e3\t200\n' },
    ]);
  });
});
