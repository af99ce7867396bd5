import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { UpstreamError } from '../errors.ts';
import { CoalescedRefresh, WALL_CLOCK, type RefreshClock } from './coalesced-refresh.ts';

/**
 * Ingest keys: what an API owner's SDK, gateway or shipper presents to send logs.
 *
 * Format `bmk_<key id: 16>_<secret: 48>` (69 characters, base62): the Moesif SDKs refuse application
 * ids shorter than 50. The key id is public (it is the `app` column of every row); the whole key is
 * stored only as its SHA-256 (a high-entropy random secret needs no slow hash) and compared in
 * constant time.
 */
export interface IngestKeyRecord {
  keyId: string;
  name: string;
  keyHash: string;
  createdAt: Date;
  /** undefined while the key is valid. */
  revokedAt: Date | undefined;
}

/**
 * Port: where key records live (ClickHouse in production, a map in unit tests). A failure to read or
 * write is thrown as an UpstreamError (retryable when trying again may help).
 */
export interface IngestKeyRepository {
  listAll(): Promise<IngestKeyRecord[]>;
  save(record: IngestKeyRecord): Promise<void>;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_PATTERN = /^bmk_([0-9A-Za-z]{16})_([0-9A-Za-z]{48})$/;

/** Uniform base62 from rejection sampling (a plain modulo would bias toward the first characters). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function hashIngestKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function generateIngestKey(): { keyId: string; key: string } {
  const keyId = randomBase62(16);
  return { keyId, key: `bmk_${keyId}_${randomBase62(48)}` };
}

const DUMMY_HASH = Buffer.from(hashIngestKey('bmk_dummy'), 'hex');

const snapshotSchema = z.array(
  z.object({
    keyId: z.string(),
    name: z.string(),
    keyHash: z.string().regex(/^[0-9a-f]{64}$/),
    createdAt: z.coerce.date(),
    revokedAt: z.coerce.date().optional(),
  }),
);

/** How often a key id nobody here has seen may trigger a read of the key table (all callers together). */
export const UNKNOWN_KEY_REFRESH_MS = 1_000;

export interface UnknownKeyRefreshOptions {
  /** At most one read of the repository per this many ms for unknown keys; default UNKNOWN_KEY_REFRESH_MS. */
  minIntervalMs?: number;
  clock?: RefreshClock;
}

export class IngestKeyService {
  private byId = new Map<string, IngestKeyRecord>();
  private timer: NodeJS.Timeout | undefined;
  private readonly unknownKeyRefresh: CoalescedRefresh;
  private snapshotWrites: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly repository: IngestKeyRepository,
    /** A local copy of the key table, so ingest authenticates through a ClickHouse outage, even across a restart. */
    private readonly snapshotPath?: string,
    private readonly now: () => Date = () => new Date(),
    unknownKeys: UnknownKeyRefreshOptions = {},
  ) {
    this.unknownKeyRefresh = new CoalescedRefresh(
      () => this.refresh(),
      unknownKeys.minIntervalMs ?? UNKNOWN_KEY_REFRESH_MS,
      unknownKeys.clock ?? WALL_CLOCK,
    );
  }

  /** Loads keys from the repository, falling back to the local snapshot if the repository is unreachable. */
  async load(): Promise<void> {
    try {
      await this.refresh();
    } catch (err) {
      if (!this.snapshotPath) throw err;
      const raw = await readFile(this.snapshotPath, 'utf8').catch(() => undefined);
      if (raw === undefined) throw err;
      this.replace(snapshotSchema.parse(JSON.parse(raw)).map((r) => ({ ...r, revokedAt: r.revokedAt })));
    }
  }

  async refresh(): Promise<void> {
    await this.adopt(await this.repository.listAll());
  }

  /** Re-reads keys periodically so a key created or revoked by the CLI (another process) takes effect. */
  startRefreshing(intervalMs: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => void this.refresh().catch(onError), intervalMs);
    this.timer.unref();
  }

  stopRefreshing(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async create(name: string): Promise<{ record: IngestKeyRecord; key: string }> {
    const { keyId, key } = generateIngestKey();
    const record: IngestKeyRecord = {
      keyId,
      name,
      keyHash: hashIngestKey(key),
      createdAt: this.now(),
      revokedAt: undefined,
    };
    await this.repository.save(record);
    this.byId.set(keyId, record);
    if (this.snapshotPath) await this.writeSnapshot();
    return { record, key };
  }

  /**
   * Revokes a key; returns false if there is no such key. Revoking twice is harmless. Throws an
   * UpstreamError when the key table cannot be read: the key may exist (created by another process
   * since the last refresh), so "no such key" would be a guess.
   */
  async revoke(keyId: string): Promise<boolean> {
    let records: IngestKeyRecord[];
    try {
      records = await this.repository.listAll();
    } catch (err) {
      throw new UpstreamError(
        'ingest keys',
        `could not read the key table, so ${keyId} was not revoked; try again`,
        err instanceof UpstreamError ? err.retryable : true,
        { cause: err },
      );
    }
    await this.adopt(records);
    const record = this.byId.get(keyId);
    if (!record) return false;
    if (record.revokedAt) return true;
    const revoked = { ...record, revokedAt: this.now() };
    await this.repository.save(revoked);
    this.byId.set(keyId, revoked);
    if (this.snapshotPath) await this.writeSnapshot();
    return true;
  }

  list(): IngestKeyRecord[] {
    return [...this.byId.values()].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /**
   * The record of a valid key, or undefined for a missing, malformed, unknown or revoked one.
   *
   * A well-formed key whose id is not known here may have been created by another process (the CLI)
   * since the last refresh: it waits for a fresh read of the key table before it is refused. Those
   * reads are shared by all such callers and spaced by the unknown-key interval, so a flood of made-up
   * keys costs at most one read per interval. Only the key id, which is public (the `app` of every
   * row), decides whether a lookup waits; the secret is still compared in constant time. A failed
   * read refuses the key with what is known: ingest keeps working from memory through an outage.
   */
  async authenticate(presented: string | undefined): Promise<IngestKeyRecord | undefined> {
    const match = presented === undefined ? null : KEY_PATTERN.exec(presented);
    if (match && !this.byId.has(match[1]!)) await this.unknownKeyRefresh.request().catch(() => undefined);
    const record = match ? this.byId.get(match[1]!) : undefined;
    const presentedHash = Buffer.from(hashIngestKey(presented ?? ''), 'hex');
    // Compare even when there is no candidate: the secret never decides how long the answer takes.
    const expected = record ? Buffer.from(record.keyHash, 'hex') : DUMMY_HASH;
    const equal = timingSafeEqual(presentedHash, expected);
    if (!record || !equal || record.revokedAt) return undefined;
    return record;
  }

  private replace(records: IngestKeyRecord[]): void {
    this.byId = new Map(records.map((r) => [r.keyId, r]));
  }

  /** The repository's records become the known set, and the local snapshot. */
  private async adopt(records: IngestKeyRecord[]): Promise<void> {
    this.replace(records);
    if (this.snapshotPath) await this.writeSnapshot();
  }

  /**
   * One write at a time, each of the keys known when it starts: two at once (an admin list's refresh
   * beside the periodic one) shared the temporary file, and the later rename failed with ENOENT.
   */
  private writeSnapshot(): Promise<void> {
    const write = this.snapshotWrites.then(async () => {
      const path = this.snapshotPath!;
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.tmp`;
      // Hashes only: the snapshot holds nothing a thief could send with.
      await writeFile(tmp, JSON.stringify(this.list()), { mode: 0o600 });
      await rename(tmp, path);
    });
    this.snapshotWrites = write.catch(() => undefined);
    return write;
  }
}
