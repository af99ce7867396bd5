import { appendFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Shipper, type RowSink, type ShipperTimer } from '../../../src/collector/shipper.ts';
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
function shipperFor(
  spool: Spool,
  sink: RowSink,
  intervalMs: number,
  table = 't',
  timer?: ShipperTimer,
): Shipper {
  return new Shipper({ spools: new Map([[table, spool]]), sink, intervalMs, logger: quietLogger, timer });
}

/** Polls every 5 ms until `done()` holds. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
}

/**
 * The shipper's clock and timer, moved by hand: it records every delay the shipper asks for and fires
 * the pending one on demand, so the schedule is checked exactly rather than measured on a busy machine.
 */
class ManualTimer implements ShipperTimer {
  nowMs = 0;
  readonly delays: number[] = [];
  private pending: (() => void) | undefined;
  private waiters: (() => void)[] = [];

  now = (): number => this.nowMs;

  after = (ms: number, fn: () => void): (() => void) => {
    this.delays.push(ms);
    this.pending = fn;
    for (const wake of this.waiters.splice(0)) wake();
    return () => {
      if (this.pending === fn) this.pending = undefined;
    };
  };

  /** Resolves once the shipper has asked for `n` delays in all. */
  async asked(n: number): Promise<void> {
    while (this.delays.length < n) await new Promise<void>((wake) => this.waiters.push(wake));
  }

  /** Moves the clock on by the pending delay and runs what waited for it. */
  fire(): void {
    const fn = this.pending;
    if (!fn) throw new Error('nothing is scheduled');
    this.pending = undefined;
    this.nowMs += this.delays.at(-1)!;
    fn();
  }
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
    const timer = new ManualTimer();
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    let inserts = 0;
    const sink: RowSink = {
      insertRows: async () => {
        inserts += 1;
        if (inserts === 1) await firstHeld;
      },
    };
    const shipper = shipperFor(spool, sink, 400, 't', timer);
    await spool.append(line(0));
    shipper.start();
    expect(timer.delays).toEqual([400]);
    timer.fire();
    await until(() => inserts === 1);
    // While the first insert runs (100 ms), 9 MiB arrive: a backlog.
    const big = Buffer.from(`${JSON.stringify({ event_id: 'x', pad: 'p'.repeat(1024 * 1024) })}\n`);
    for (let i = 0; i < 9; i++) await spool.append(big);
    timer.nowMs += 100;
    releaseFirst();
    await timer.asked(2);
    expect(timer.delays[1]).toBe(0); // at once, not after the 400 ms interval
    timer.fire();
    await timer.asked(3);
    expect(inserts).toBe(2);
    expect(spool.depthBytes).toBe(0);
    // Nothing left behind: the next one waits the interval again.
    expect(timer.delays[2]).toBe(400);
    await shipper.stop();
  });

  it('counts the interval from start to start: an insert longer than the interval is followed at once', async () => {
    const spool = await newSpool();
    const timer = new ManualTimer();
    const took = [450, 100]; // ms of the first insert, then of the second
    const sink: RowSink = {
      insertRows: async () => {
        timer.nowMs += took.shift() ?? 0;
      },
    };
    const shipper = shipperFor(spool, sink, 300, 't', timer);
    await spool.append(line(0));
    shipper.start();
    timer.fire();
    await timer.asked(2);
    await spool.append(line(1)); // a little more: no backlog
    timer.fire();
    await timer.asked(3);
    await shipper.stop();
    // 300 - 450 ms: at once, not another 300 ms after the slow one ended; then 300 - 100 ms.
    expect(timer.delays).toEqual([300, 0, 200]);
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
