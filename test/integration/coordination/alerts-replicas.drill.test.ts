// Drills: alert delivery with two replicas of the service on one ClickHouse (the 18.16 server) and one
// ZooKeeper (Debian's), under the lease `alert-delivery` (COORDINATION_URL, 2 s sessions), sending to a
// receiver that verifies every request with Stripe's library and notes which replica sent it:
// - two replicas in this process, each delivering every 50 ms and, on top, both at the same moments ten
//   times after each evaluation, while customers cross 6 thresholds over 3 evaluations: the receiver gets
//   each crossing exactly once, and the delivery log holds one attempt per crossing; stopped, they leave
//   no ZooKeeper session open (Services.close closes both leases);
// - two `serve` processes: the replica delivering is SIGSTOPped while a send is in flight, past its
//   lease; the other takes over and delivers the rest; resumed, the stopped one sends nothing more.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { crossingId } from '../../../src/alerts/alert-engine.ts';
import { periodStart } from '../../../src/time/billing-period.ts';
import { alertMeterYaml } from '../../support/alert-meter.ts';
import { alertReceiver, type AlertReceiver, type ReceivedAlert } from '../../support/alert-receiver.ts';
import { serverUrl } from '../../support/clickhouse.ts';
import { sleep } from '../../support/clickhouse-server.ts';
import { startServeReplica, stopReplicas, type ServeReplica } from '../../support/serve-replica.ts';
import { startTestService, type TestService } from '../../support/service.ts';
import { startZooKeeper, type ZooKeeperServer } from '../../support/zookeeper-server.ts';

const SECRET = 'alert-secret-0123456789abcdef0123';
const SESSION_MS = 2000;
const HOUR_MS = 3_600_000;
const QUOTA = 'quota:80%';
const NEXT_TIER = 'next_tier:100';

/** Which replica sent it: each is configured with `?replica=<name>` on the receiver's URL. */
const sender = (alert: ReceivedAlert) => new URL(alert.path, 'http://x').searchParams.get('replica');

const waitFor = async (what: () => boolean, ms = 60_000) => {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(20);
  }
};

describe('drills: alert delivery among replicas (one ClickHouse, one ZooKeeper, the alert-delivery lease)', () => {
  let zk: ZooKeeperServer;
  let metersDir: string;
  // The hour before the current one: closed, so evaluated; its month is the billing period.
  const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - HOUR_MS;
  const period = periodStart(new Date(hour));
  const receivers: AlertReceiver[] = [];
  const services: TestService[] = [];
  const children: ChildProcess[] = [];

  const env = (database: string, root: string, receiver: AlertReceiver, replica: string) => ({
    CLICKHOUSE_URL: serverUrl(),
    CLICKHOUSE_DATABASE: database,
    COORDINATION_URL: `zk://${zk.connectString}/${root}`,
    COORDINATION_SESSION_TIMEOUT_MS: String(SESSION_MS),
    METERS_DIR: metersDir,
    METER_SCHEDULE: '0 0 1 1 *',
    ALERT_WEBHOOK_URL: `${receiver.url}?replica=${replica}`,
    ALERT_WEBHOOK_SECRET: SECRET,
  });
  const sent = new Map<string, number>();
  /** `n` more billable calls of `customer` in the hour. */
  const calls = (customer: string, n: number) => {
    const from = sent.get(customer) ?? 0;
    sent.set(customer, from + n);
    return Array.from({ length: n }, (_, i) => ({
      id: `${customer}-${from + i}`,
      timestamp: new Date(hour + (from + i) * 1000).toISOString(),
      company_id: customer,
      method: 'GET',
      path: '/v1/score',
      status: 200,
    }));
  };
  const idOf = (customer: string, threshold: string) => crossingId('calls', customer, threshold, period);
  const counts = (ids: readonly string[]) => {
    const out = new Map<string, number>();
    for (const id of ids) out.set(id, (out.get(id) ?? 0) + 1);
    return out;
  };

  beforeAll(async () => {
    zk = await startZooKeeper({ parentDir: inject('runDir') });
    metersDir = await mkdtemp(join(inject('runDir'), 'alert-meters-'));
    await writeFile(
      join(metersDir, 'calls.yaml'),
      alertMeterYaml({ routes: ['/v1/score'], effectiveFrom: period }),
    );
  });

  afterAll(async () => {
    await stopReplicas(children);
    for (const s of services) await s.stop();
    for (const r of receivers) await r.close();
    await zk?.stop();
  });

  it('both replicas deliver at the same moments, again and again: each of 6 crossings arrives once', async () => {
    const receiver = await alertReceiver(SECRET);
    receivers.push(receiver);
    const database = `drill_alerts_${process.pid}`;
    const open = await zk.connections();
    const timers = { ALERT_DELIVERY_INTERVAL_MS: '50' };
    const a = await startTestService('server', { ...env(database, 'alerts-once', receiver, 'a'), ...timers });
    services.push(a);
    const b = await startTestService('server', { ...env(database, 'alerts-once', receiver, 'b'), ...timers });
    services.push(b);
    // Three evaluations; the crossings each makes.
    const rounds: { usage: [string, number][]; crossings: [string, string][] }[] = [
      {
        usage: [
          ['c0', 85],
          ['c1', 85],
        ],
        crossings: [
          ['c0', QUOTA],
          ['c1', QUOTA],
        ],
      },
      // c0 at 115 enters the next tier; c2 at 150 crosses both thresholds at once.
      {
        usage: [
          ['c0', 30],
          ['c2', 150],
        ],
        crossings: [
          ['c0', NEXT_TIER],
          ['c2', QUOTA],
          ['c2', NEXT_TIER],
        ],
      },
      { usage: [['c1', 20]], crossings: [['c1', NEXT_TIER]] },
    ];
    const expected: string[] = [];
    let skipped = 0;
    for (const [i, round] of rounds.entries()) {
      const via = i % 2 === 0 ? a : b;
      const res = await fetch(`${via.url}/v1/logs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${a.ingestKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(round.usage.flatMap(([customer, n]) => calls(customer, n))),
      });
      expect(res.status).toBe(202);
      await Promise.all([a.service.flush(), b.service.flush()]);
      // The hourly job on both at once: each evaluation observes the usage and starts a delivery pass.
      await Promise.all([a.service.runHourly(), b.service.runHourly()]);
      for (let n = 0; n < 10; n++) {
        const reports = await Promise.all([a, b].map((r) => r.service.alerts.delivery.deliverDue()));
        skipped += reports.reduce((sum, r) => sum + (r.skipped ?? 0), 0);
      }
      expected.push(...round.crossings.map(([customer, threshold]) => idOf(customer, threshold)));
      await waitFor(() => new Set(receiver.acknowledged).size >= expected.length);
    }
    // The timers keep firing on both: give a late duplicate the time to show.
    await sleep(1000);
    await Promise.all([a, b].map((r) => r.service.alerts.delivery.idle()));

    expect(receiver.rejected).toEqual([]);
    expect(counts(receiver.verified.map((r) => r.event.id))).toEqual(new Map(expected.map((id) => [id, 1])));
    // One attempt recorded per crossing, whichever replica made it.
    const attempts = await a.service.clickhouse.query(
      `SELECT crossing_id AS id, toString(count()) AS n FROM ${database}.alert_deliveries GROUP BY crossing_id`,
      z.object({ id: z.string(), n: z.coerce.number() }),
    );
    expect(new Map(attempts.map((r) => [r.id, r.n]))).toEqual(new Map(expected.map((id) => [id, 1])));
    // The metrics of the two replicas add up to the same: 6 delivered, none failed.
    const metric = async (svc: TestService, line: RegExp) =>
      Number(line.exec(await (await fetch(`${svc.url}/metrics`)).text())?.[1] ?? 0);
    const delivered = /^billing_meter_alert_deliveries_total\{outcome="delivered"\} (\d+)$/m;
    const failed = /^billing_meter_alert_deliveries_total\{outcome="failed"\} (\d+)$/m;
    expect((await metric(a, delivered)) + (await metric(b, delivered))).toBe(expected.length);
    expect((await metric(a, failed)) + (await metric(b, failed))).toBe(0);
    const skippedLine = /^billing_meter_alert_delivery_passes_skipped_total (\d+)$/m;
    const skippedAll = (await metric(a, skippedLine)) + (await metric(b, skippedLine));
    expect(skippedAll).toBeGreaterThanOrEqual(skipped);
    console.info(
      `alerts drill: ${receiver.verified.filter((r) => sender(r) === 'a').length} sent by a, ` +
        `${receiver.verified.filter((r) => sender(r) === 'b').length} by b; ${skippedAll} passes found the lease held (${skipped} of those asked on demand)`,
    );
    // Stopped, each replica has closed both its leases: no session of theirs is left open.
    for (const s of services.splice(0)) await s.stop();
    await zk.waitForConnections(open);
  });

  it('the replica delivering is SIGSTOPped mid-send past its lease: the other delivers; resumed, it sends nothing', async () => {
    const replicas = new Map<string, ServeReplica>();
    let stopped: { replica: string; at: number; id: string } | undefined;
    const receiver = await alertReceiver(SECRET, {
      // The second alert: its sender is paused before it hears the answer (and so before it records it).
      answer: (n, alert) => {
        if (n === 2) {
          const replica = sender(alert)!;
          replicas.get(replica)!.child.kill('SIGSTOP');
          stopped = { replica, at: Date.now(), id: alert.event.id };
        }
        return 200;
      },
    });
    receivers.push(receiver);
    const database = `drill_alerts_stopped_${process.pid}`;
    for (const name of ['a', 'b']) {
      const replica = await startServeReplica({
        ...env(database, 'alerts-stopped', receiver, name),
        ALERT_DELIVERY_INTERVAL_MS: '100',
      });
      children.push(replica.child);
      replicas.set(name, replica);
    }
    const customers = ['s0', 's1', 's2', 's3', 's4', 's5'];
    const expected = customers.map((c) => idOf(c, QUOTA));
    const a = replicas.get('a')!;
    await a.ingest(customers.flatMap((c) => calls(c, 85)));
    await a.evaluate();

    // The other replica takes the lease once ZooKeeper has ended the paused one's session, and sends
    // what is not recorded as delivered: the rest, and the one whose answer the paused replica never read.
    await waitFor(() => stopped !== undefined && new Set(receiver.acknowledged).size === expected.length);
    const { replica: pausedName, at: stoppedAt, id: inFlight } = stopped!;
    const paused = replicas.get(pausedName)!;
    const fromOther = receiver.verified.filter((r) => sender(r) !== pausedName);
    expect(fromOther.length).toBeGreaterThan(0);
    expect(fromOther.every((r) => r.receivedAtMs > stoppedAt)).toBe(true);
    const seenBeforeResume = receiver.verified.length;
    paused.child.kill('SIGCONT');
    // Awake: its fence fails before it records the answer; its timer then finds nothing due, ten times over.
    await sleep(1000);
    expect(paused.child.exitCode).toBe(null);
    expect(receiver.verified.slice(seenBeforeResume)).toEqual([]);
    expect(receiver.verified.filter((r) => sender(r) === pausedName && r.receivedAtMs > stoppedAt)).toEqual(
      [],
    );
    expect(receiver.rejected).toEqual([]);
    // Each crossing acknowledged; the one in flight at the pause twice, with the same id (receivers
    // dedupe on it: the limit README and alert-delivery.ts state).
    expect(counts(receiver.verified.map((r) => r.event.id))).toEqual(
      new Map(expected.map((id) => [id, id === inFlight ? 2 : 1])),
    );
    const firstTakeover = Math.min(...fromOther.map((r) => r.receivedAtMs));
    console.info(
      `alerts drill: ${pausedName} paused at its second send; the other sent ${fromOther.length} alerts, ` +
        `the first ${firstTakeover - stoppedAt} ms after the pause (session ${SESSION_MS} ms)`,
    );
  });
});
