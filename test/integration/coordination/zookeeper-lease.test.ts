import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { FencedOffError } from '../../../src/billing/stripe/ports.ts';
import {
  createZooKeeperLease,
  LeaseClosedError,
  LeaseHeldElsewhereError,
  type Lease,
} from '../../../src/coordination/zookeeper-lease.ts';
import { startZooKeeper, type ZooKeeperServer } from '../../support/zookeeper-server.ts';

// The lease on Debian's ZooKeeper 3.8 (started for this file), with real processes for the drills.
const SESSION_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('lease with fencing on ZooKeeper', () => {
  let zk: ZooKeeperServer;
  let dir: string;
  const leases: Lease[] = [];
  const children: ChildProcess[] = [];
  const lease = (root: string, waitMs = 0) => {
    const l = createZooKeeperLease({
      hosts: zk.connectString,
      root,
      name: 'stripe-sync',
      sessionTimeoutMs: SESSION_MS,
      waitMs,
    });
    leases.push(l);
    return l;
  };
  const holder = (root: string, log: string) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, 'fixtures', 'lease-holder.ts'),
        zk.connectString,
        root,
        String(SESSION_MS),
        log,
      ],
      { stdio: 'inherit' },
    );
    children.push(child);
    return child;
  };
  const waitFor = async (what: () => boolean, ms = 20_000) => {
    const deadline = Date.now() + ms;
    while (!what()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await sleep(50);
    }
  };
  const lines = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

  beforeAll(async () => {
    zk = await startZooKeeper({ parentDir: inject('runDir') });
    dir = await mkdtemp(join(inject('runDir'), 'lease-'));
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const l of leases) await l.close();
    await zk?.stop();
  });

  it('lets one holder in at a time; the next waits for it and gets a larger token', async () => {
    const a = lease('/exclusive');
    const b = lease('/exclusive', 10_000);
    const order: string[] = [];
    let tokenA = 0n;
    // b asks only once a holds the lease: connecting to ZooKeeper takes as long as a loaded machine makes it.
    let aIn!: () => void;
    const aHolds = new Promise<void>((resolve) => (aIn = resolve));
    const first = a.run(async (fence) => {
      tokenA = fence.token;
      order.push('a in');
      aIn();
      await sleep(300);
      order.push('a out');
    });
    await aHolds;
    const second = b.run(async (fence) => {
      order.push('b in');
      expect(fence.token).toBeGreaterThan(tokenA);
    });
    await Promise.all([first, second]);
    expect(order).toEqual(['a in', 'a out', 'b in']);
    // Without waiting, a held lease is refused with who holds it.
    const c = lease('/exclusive');
    await a.run(async () => {
      await expect(c.run(async () => undefined)).rejects.toThrow(LeaseHeldElsewhereError);
    });
  });

  it('fences a holder whose lease is no longer confirmed', async () => {
    let clock = Date.now();
    const l = createZooKeeperLease({
      hosts: zk.connectString,
      root: '/clock',
      name: 'stripe-sync',
      sessionTimeoutMs: SESSION_MS,
      now: () => clock,
    });
    leases.push(l);
    await l.run(async (fence) => {
      fence.assertHeld();
      clock += SESSION_MS; // as if paused for a whole session timeout
      expect(() => fence.assertHeld()).toThrow(FencedOffError);
    });
  });

  it('opens no session after close(): a late run is refused, and so is one that was connecting', async () => {
    const open = await zk.connections();
    const l = lease('/closed');
    await l.run(async () => undefined);
    expect(await zk.connections()).toBe(open + 1);
    await l.close();
    await zk.waitForConnections(open);
    let ran = 0;
    // A timer that fires after shutdown (the alert delivery's, a heartbeat's).
    await expect(l.run(async () => void ran++)).rejects.toThrow(LeaseClosedError);
    // Closed while its first run connects: that session is closed too, not kept.
    const m = lease('/closed');
    const connecting = m.run(async () => void ran++);
    await m.close();
    await expect(connecting).rejects.toThrow(LeaseClosedError);
    await expect(m.run(async () => void ran++)).rejects.toThrow(LeaseClosedError);
    expect(ran).toBe(0);
    await sleep(500);
    expect(await zk.connections()).toBe(open);
  });

  it('drill: the holder is SIGKILLed; the waiting one takes over within the session timeout', async () => {
    const log = join(dir, 'killed.log');
    const child = holder('/killed', log);
    await waitFor(() => lines(log).some((l) => l.startsWith('send 2')));
    const next = lease('/killed', 30_000);
    const killedAt = Date.now();
    child.kill('SIGKILL');
    let tookOverAt = 0;
    await next.run(async () => {
      tookOverAt = Date.now();
    });
    // ZooKeeper ends the dead session after its timeout; the waiter is woken by the node's deletion.
    expect(tookOverAt - killedAt).toBeLessThan(SESSION_MS * 2 + 1500);
  });

  it('drill: the holder is SIGSTOPped past its lease, then resumed: it sends nothing more', async () => {
    const log = join(dir, 'stopped.log');
    const child = holder('/stopped', log);
    await waitFor(() => lines(log).some((l) => l.startsWith('send 2')));
    child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    const sentBefore = lines(log).filter((l) => l.startsWith('send')).length;
    // Another process takes the lease once the paused holder's session has expired.
    const next = lease('/stopped', 30_000);
    let tookOverAt = 0;
    await next.run(async () => {
      tookOverAt = Date.now();
      child.kill('SIGCONT');
      await waitFor(() => lines(log).some((l) => l.startsWith('fenced')));
    });
    expect(tookOverAt).toBeGreaterThan(stoppedAt);
    const after = lines(log);
    // Woken while another holds the lease, the old holder's first check fails: no "send" after the stop.
    expect(after.filter((l) => l.startsWith('send')).length).toBe(sentBefore);
    expect(after.at(-1)).toMatch(/^fenced lease \/stopped\/leases\/stripe-sync (lost|not confirmed)/);
  });
});
