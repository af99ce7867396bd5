import { hostname } from 'node:os';
import zookeeper from 'node-zookeeper-client';
import { FencedOffError, type SyncFence } from '../billing/stripe/ports.ts';
import { UpstreamError } from '../errors.ts';

/**
 * What must run once among several replicas of the service (the hourly evaluation and Stripe sync, under
 * `stripe-sync`; alert delivery, under `alert-delivery`), runs under a lease in
 * ZooKeeper (or ClickHouse Keeper, which speaks its protocol): an ephemeral node `<root>/leases/<name>`,
 * which ZooKeeper deletes when the holder's session ends, by a close or by the session timeout after the
 * holder went silent (killed, paused, cut off).
 *
 * Fencing: the holder counts its lease as valid for 2/3 of the session timeout after the last request
 * ZooKeeper answered, timed from when that request was *sent* (ZooKeeper heard from the session then, so
 * it cannot have expired it before that time plus the timeout). A heartbeat renews it several times per
 * timeout. assertHeld() is checked before every ledger intent and every call to Stripe
 * (sync-executor.ts): a process paused past its lease sees, on waking, that it no longer holds it, before
 * it writes or sends anything (alert-delivery.ts checks it the same way before each send and each record
 * of an attempt). The token is the node's creation zxid, which grows from one holder to the
 * next, and is written on every intent. The limit: a pause between the check and the call it guards
 * (microseconds of our code) is not covered; that call is then the intent recorded under the lease, with
 * the same identifier and value, which Stripe takes once (its idempotency) and a new holder resumes as is.
 */
export interface Lease {
  /**
   * Runs `fn` holding the lease; waits up to waitMs for a holder to finish (or die) first, then throws
   * LeaseHeldElsewhereError. Releases it after `fn`.
   */
  run<T>(fn: (fence: SyncFence) => Promise<T>): Promise<T>;
  /** Ends the session (ZooKeeper drops a held node with it); run() refuses from then on (LeaseClosedError). */
  close(): Promise<void>;
}

export class LeaseHeldElsewhereError extends Error {
  constructor(
    readonly holder: string,
    waitedMs: number,
  ) {
    super(`the lease is held by ${holder || 'another process'} (waited ${waitedMs} ms); try again later`);
    this.name = 'LeaseHeldElsewhereError';
  }
}

/** After close(): the lease opens no new session (a late timer after shutdown gets this, not a session). */
export class LeaseClosedError extends Error {
  constructor(path: string) {
    super(`the lease ${path} is closed`);
    this.name = 'LeaseClosedError';
  }
}

export interface ZooKeeperLeaseOptions {
  /** host:port[,host:port…] */
  hosts: string;
  /** Chroot of the service's nodes, e.g. /billing-meter. */
  root: string;
  name: string;
  /** Requested session timeout; ZooKeeper may clamp it (2 to 20 ticks by default). */
  sessionTimeoutMs: number;
  /** How long run() waits for another holder; default 5 minutes; 0: asks once. */
  waitMs?: number;
  /** Who holds it, as other processes see it. */
  owner?: string;
  now?: () => number;
}

/** node-zookeeper-client: pure JavaScript (no native build, unlike `zookeeper`), maintained, typed. */
export function createZooKeeperLease(options: ZooKeeperLeaseOptions): Lease {
  const now = options.now ?? Date.now;
  const owner = options.owner ?? `${hostname()}:${process.pid}`;
  const path = `${options.root.replace(/\/+$/, '')}/leases/${options.name}`;
  let client: zookeeper.Client | undefined;
  let connecting: Promise<zookeeper.Client> | undefined;
  let closed = false;

  const connected = (): Promise<zookeeper.Client> => {
    if (closed) return Promise.reject(new LeaseClosedError(path));
    if (client) return Promise.resolve(client);
    connecting ??= new Promise<zookeeper.Client>((resolve, reject) => {
      const c = zookeeper.createClient(options.hosts, {
        sessionTimeout: options.sessionTimeoutMs,
        spinDelay: 200,
        retries: 2,
      });
      const timer = setTimeout(() => {
        c.close();
        reject(new UpstreamError('zookeeper', `no connection to ${options.hosts}`, true));
      }, options.sessionTimeoutMs);
      c.once('connected', () => {
        clearTimeout(timer);
        // Closed while connecting: this session ends here, it is not kept for a later call.
        if (closed) {
          c.close();
          reject(new LeaseClosedError(path));
          return;
        }
        client = c;
        resolve(c);
      });
      // An expired session is over for good: the next run opens a new one.
      c.on('expired', () => {
        if (client === c) client = undefined;
        c.close();
      });
      c.connect();
    }).finally(() => (connecting = undefined));
    return connecting;
  };

  const call = <T>(op: (c: zookeeper.Client, done: (err: unknown, value?: T) => void) => void) =>
    connected().then(
      (c) =>
        new Promise<T>((resolve, reject) => op(c, (err, value) => (err ? reject(err) : resolve(value as T)))),
    );
  const code = (err: unknown) => (err instanceof zookeeper.Exception ? err.getCode() : undefined);

  /** Creates the node; undefined when another holds it (then resolved once it may be free, or a second passes). */
  const tryCreate = async (): Promise<{ token: bigint; sentAt: number } | { holder: string }> => {
    await call((c, done) => c.mkdirp(path.slice(0, path.lastIndexOf('/')), done));
    const sentAt = now();
    try {
      await call<string>((c, done) =>
        c.create(path, Buffer.from(owner), zookeeper.CreateMode.EPHEMERAL, done),
      );
    } catch (err) {
      if (code(err) !== zookeeper.Exception.NODE_EXISTS) throw err;
      const holder = await call<Buffer>((c, done) => c.getData(path, done)).catch(() => Buffer.from(''));
      return { holder: holder.toString() };
    }
    const stat = await call<zookeeper.Stat>((c, done) => c.exists(path, done));
    return { token: stat.czxid.readBigUInt64BE(0), sentAt };
  };

  const waitForRelease = () =>
    call<void>((c, done) =>
      c.exists(
        path,
        () => done(null),
        (err, stat) => {
          if (err) done(err);
          else if (!stat) done(null);
        },
      ),
    );

  return {
    async run(fn) {
      const started = now();
      const waitMs = options.waitMs ?? 300_000;
      let got = await tryCreate();
      while ('holder' in got) {
        const left = started + waitMs - now();
        if (left <= 0) throw new LeaseHeldElsewhereError(got.holder, now() - started);
        // Woken by the node's deletion, or after a second: a session's end may also reach us late.
        await Promise.race([waitForRelease(), new Promise((r) => setTimeout(r, Math.min(left, 1000)))]);
        got = await tryCreate();
      }
      const { token } = got;
      const c = await connected();
      const validityMs = (c.getSessionTimeout() * 2) / 3;
      let confirmedAt = got.sentAt;
      let lost: string | undefined;
      const heartbeat = setInterval(
        () => {
          const sentAt = now();
          call<zookeeper.Stat>((cc, done) => cc.exists(path, done)).then(
            (stat) => {
              if (!stat || stat.czxid.readBigUInt64BE(0) !== token) lost ??= 'the lease node is gone';
              else confirmedAt = Math.max(confirmedAt, sentAt);
            },
            () => undefined, // unanswered: the lease runs out by time
          );
        },
        Math.max(100, validityMs / 4),
      );
      const onExpired = () => (lost ??= 'the ZooKeeper session expired');
      c.once('expired', onExpired);
      const fence: SyncFence = {
        token,
        assertHeld() {
          if (lost) throw new FencedOffError(`lease ${path} lost: ${lost}`);
          const age = now() - confirmedAt;
          if (age > validityMs)
            throw new FencedOffError(
              `lease ${path} not confirmed for ${age} ms (valid ${Math.round(validityMs)} ms): it may be another's`,
            );
        },
      };
      try {
        return await fn(fence);
      } finally {
        clearInterval(heartbeat);
        c.removeListener('expired', onExpired);
        if (!lost) {
          const stat = await call<zookeeper.Stat>((cc, done) => cc.exists(path, done)).catch(() => undefined);
          if (stat && stat.czxid.readBigUInt64BE(0) === token)
            await call<void>((cc, done) => cc.remove(path, stat.version, done)).catch(() => undefined);
        }
      }
    },
    async close() {
      // For good: a run, a heartbeat or a release that comes later gets LeaseClosedError, no session.
      closed = true;
      const c = client ?? (await connecting?.catch(() => undefined));
      client = undefined;
      c?.close();
    },
  };
}
