import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  truncate,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import { SpoolFullError } from '../errors.ts';
import { JSON_EACH_ROW, tabSeparated, type RowFormat } from './row-format.ts';

/**
 * A write-ahead spool: the durability point of ingest. An append resolves only after its bytes are
 * written and fdatasync'ed, so a 2xx given after it survives a SIGKILL or a power cut of the process.
 *
 * - Group commit: appends that arrive while a sync is running are written and synced together by the
 *   next one, so the cost of fsync is shared by every concurrent request rather than paid by each.
 * - Segments: appends go to the active segment; `seal()` closes it so the shipper may read it. Sealed
 *   segments are shipped in order and removed once ClickHouse has them.
 * - Content: rows in the spool's RowFormat, exactly what ClickHouse is sent, so replay needs no
 *   re-serialisation. Each segment records its own format (`.ndjson` JSONEachRow, or `.tsv` with a
 *   header line naming the columns), so a spool left by an older version ships unchanged.
 *   A crash mid-write can leave a torn last line; `open()` cuts it (it was never acknowledged).
 * - Bounded: past `maxBytes` an append throws SpoolFullError (the HTTP layer's 503 + Retry-After).
 */
export interface SpoolOptions {
  dir: string;
  maxBytes: number;
  /** The active segment is sealed once it grows past this. */
  segmentMaxBytes?: number;
  /** Seconds a client should wait when the spool is full. */
  retryAfterSeconds?: number;
  /** How appended rows are written; default JSONEachRow. */
  format?: RowFormat;
}

export interface SealedSegment {
  name: string;
  path: string;
  /** The whole file, header line included. */
  bytes: number;
  format: RowFormat;
  /** Where the rows start (after a TabSeparated segment's header line). */
  rowsOffset: number;
}

interface PendingAppend {
  data: Buffer;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const SEGMENT_PATTERN = /^seg-(\d{16})\.(ndjson|tsv)$/;

export class Spool {
  private readonly maxBytes: number;
  private readonly segmentMaxBytes: number;
  private readonly retryAfterSeconds: number;
  private readonly format: RowFormat;
  /** What a new segment starts with: the column names of a TabSeparated spool, else nothing. */
  private readonly header: Buffer;
  private nextSeq = 0;
  private active: { handle: FileHandle; name: string; bytes: number } | undefined;
  private sealed: SealedSegment[] = [];
  /** Bytes in every segment, sealed and active, plus appends accepted but not yet written. */
  private totalBytes = 0;
  private pending: PendingAppend[] = [];
  private commitScheduled = false;
  /** Serialises commits, seals and close: each runs alone, in order. */
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: SpoolOptions) {
    this.maxBytes = options.maxBytes;
    this.segmentMaxBytes = options.segmentMaxBytes ?? 16 * 1024 * 1024;
    this.retryAfterSeconds = options.retryAfterSeconds ?? 5;
    this.format = options.format ?? JSON_EACH_ROW;
    this.header =
      this.format.kind === 'TabSeparated'
        ? Buffer.from(`${this.format.columns.join('\t')}\n`)
        : Buffer.alloc(0);
  }

  get dir(): string {
    return this.options.dir;
  }

  /** Bytes held (not yet shipped). */
  get depthBytes(): number {
    return this.totalBytes;
  }

  /**
   * Room for at least a typical batch (64 KiB, or 1% of a small spool). Readiness turns false a little
   * before appends start failing, so a load balancer steers traffic away before clients see 503s.
   */
  get hasRoom(): boolean {
    return this.maxBytes - this.totalBytes >= Math.min(64 * 1024, this.maxBytes / 100);
  }

  /** Recovers segments a previous process left behind (cutting torn tails) and readies a new active segment. */
  async open(): Promise<void> {
    await mkdir(this.options.dir, { recursive: true });
    const names = (await readdir(this.options.dir)).filter((n) => SEGMENT_PATTERN.test(n)).sort();
    for (const name of names) {
      const path = join(this.options.dir, name);
      const content = await cutTornTail(path);
      const segment = content && describeSegment(name, path, content);
      if (!segment) {
        await rm(path, { force: true });
        continue;
      }
      this.sealed.push(segment);
      this.totalBytes += segment.bytes;
    }
    const last = names.at(-1);
    this.nextSeq = last ? Number(SEGMENT_PATTERN.exec(last)?.[1]) + 1 : 0;
  }

  /** Appends whole lines of rows in the spool's format; resolves once they are on disk. */
  append(data: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error('spool is closed'));
    if (data.length === 0) return Promise.resolve();
    if (this.totalBytes + data.length > this.maxBytes) {
      return Promise.reject(new SpoolFullError(this.retryAfterSeconds));
    }
    this.totalBytes += data.length;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ data, resolve, reject });
      if (!this.commitScheduled) {
        this.commitScheduled = true;
        this.enqueue(() => this.commit());
      }
    });
  }

  /** Closes the active segment (if it holds anything) so it can be shipped. */
  seal(): Promise<void> {
    return this.enqueue(() => this.sealActive());
  }

  /** Sealed segments, oldest first. */
  sealedSegments(): readonly SealedSegment[] {
    return this.sealed;
  }

  /** Forgets and deletes a shipped segment. */
  async remove(segment: SealedSegment): Promise<void> {
    await rm(segment.path, { force: true });
    this.sealed = this.sealed.filter((s) => s.name !== segment.name);
    this.totalBytes -= segment.bytes;
  }

  /** Moves a segment ClickHouse refuses for good out of the way (kept for the operator, not deleted). */
  async quarantine(segment: SealedSegment): Promise<string> {
    const dir = join(this.options.dir, 'quarantine');
    await mkdir(dir, { recursive: true });
    const target = join(dir, segment.name);
    await rename(segment.path, target);
    this.sealed = this.sealed.filter((s) => s.name !== segment.name);
    this.totalBytes -= segment.bytes;
    return target;
  }

  /** Writes what is pending, seals, and stops accepting appends. */
  async close(): Promise<void> {
    this.closed = true;
    await this.enqueue(() => this.sealActive());
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    // The chain itself must survive a failed task; the caller still sees the failure.
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async commit(): Promise<void> {
    this.commitScheduled = false;
    const group = this.pending;
    this.pending = [];
    if (group.length === 0) return;
    let active: { handle: FileHandle; name: string; bytes: number } | undefined;
    let startOffset = 0;
    try {
      active = await this.ensureActive();
      startOffset = active.bytes;
      let buffers = group.map((p) => p.data);
      const total = buffers.reduce((n, b) => n + b.length, 0);
      // One writev for the whole group, without copying it into one buffer first (at 100k events/s
      // that copy is ~30 MB a second of short-lived buffers).
      // writev may write less than asked; keep going until every byte is down.
      let written = 0;
      while (written < total) {
        const { bytesWritten } = await active.handle.writev(buffers, startOffset + written);
        written += bytesWritten;
        if (written < total) buffers = remainder(buffers, bytesWritten);
      }
      await active.handle.datasync();
      active.bytes += total;
      for (const p of group) p.resolve();
      if (active.bytes >= this.segmentMaxBytes) await this.sealActive();
    } catch (err) {
      for (const p of group) {
        this.totalBytes -= p.data.length;
        p.reject(err);
      }
      // Cut whatever part of the failed group reached the file: a half line would poison the segment.
      if (active) await active.handle.truncate(startOffset).catch(() => undefined);
    }
  }

  private async ensureActive(): Promise<{ handle: FileHandle; name: string; bytes: number }> {
    if (this.active) return this.active;
    const extension = this.format.kind === 'TabSeparated' ? 'tsv' : 'ndjson';
    const name = `seg-${String(this.nextSeq++).padStart(16, '0')}.${extension}`;
    const handle = await open(join(this.options.dir, name), 'w');
    // The header goes down with the first commit's datasync; a segment torn inside it is dropped
    // on open (it held no acknowledged row).
    if (this.header.length > 0) await handle.write(this.header, 0, this.header.length, 0);
    await syncDir(this.options.dir);
    this.totalBytes += this.header.length;
    this.active = { handle, name, bytes: this.header.length };
    return this.active;
  }

  private async sealActive(): Promise<void> {
    const active = this.active;
    if (!active) return;
    this.active = undefined;
    await active.handle.close();
    const path = join(this.options.dir, active.name);
    if (active.bytes <= this.header.length) {
      this.totalBytes -= active.bytes;
      await rm(path, { force: true });
      return;
    }
    this.sealed.push({
      name: active.name,
      path,
      bytes: active.bytes,
      format: this.format,
      rowsOffset: this.header.length,
    });
  }
}

/** The buffers less their first `skip` bytes (after a short write). */
export function remainder(buffers: readonly Buffer[], skip: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return rest;
}

/** Truncates a segment after its last newline; returns what remains (undefined when nothing does). */
async function cutTornTail(path: string): Promise<Buffer | undefined> {
  const { size } = await stat(path);
  if (size === 0) return undefined;
  const content = await readFile(path);
  const keep = content.lastIndexOf(0x0a) + 1;
  if (keep !== size) await truncate(path, keep);
  return keep === 0 ? undefined : content.subarray(0, keep);
}

/** A recovered segment's format, from its extension and header line; undefined when it holds no row. */
function describeSegment(name: string, path: string, content: Buffer): SealedSegment | undefined {
  if (SEGMENT_PATTERN.exec(name)?.[2] !== 'tsv') {
    return { name, path, bytes: content.length, format: JSON_EACH_ROW, rowsOffset: 0 };
  }
  const headerEnd = content.indexOf(0x0a) + 1;
  if (headerEnd === content.length) return undefined;
  const columns = content
    .subarray(0, headerEnd - 1)
    .toString('utf8')
    .split('\t');
  return { name, path, bytes: content.length, format: tabSeparated(columns), rowsOffset: headerEnd };
}

/** Makes a file's creation durable: fsync its directory. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
