// Alerts through the whole service, as a real process: a customer crosses 80% of its quota, then the
// next price tier, and the receiver (which verifies every request with Stripe's own library) gets
// exactly two alerts, even though the service is SIGKILLed while it delivers the first one. Both
// engines. The dates come from the (possibly pinned) clock the service shares with the test.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { periodStart } from '../../src/time/billing-period.ts';
import { alertMeterYaml } from '../support/alert-meter.ts';
import { alertReceiver } from '../support/alert-receiver.ts';
import { ENGINES } from '../support/clickhouse.ts';
import { BIN, runCli } from '../support/cli.ts';
import { testEnv, TEST_ADMIN_KEY } from '../support/service.ts';
import { closedPort, waitFor } from './support.ts';

const SECRET = 'alert-secret-0123456789abcdef0123';
const HOUR = 3_600_000;

describe.each(ENGINES)('alerts from a service process on %s ClickHouse', (engine) => {
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('sends 80% of the quota then the next tier once each, across a SIGKILL mid-delivery', async () => {
    // The hour before the current one: closed, so evaluated; its month is the billing period.
    const hour = new Date(Math.floor(Date.now() / HOUR) * HOUR - HOUR);
    const metersDir = await mkdtemp(join(tmpdir(), 'bm-alert-meters-'));
    dirs.push(metersDir);
    await writeFile(
      join(metersDir, 'calls.yaml'),
      alertMeterYaml({ routes: ['/v1/score'], effectiveFrom: periodStart(hour) }),
    );

    let hangFirst: () => void = () => undefined;
    const firstArrived = new Promise<void>((resolve) => (hangFirst = resolve));
    const receiver = await alertReceiver(SECRET, {
      answer: (n) => {
        if (n !== 1) return 200;
        hangFirst();
        return 'hang';
      },
    });
    const env = await testEnv(engine, {
      METERS_DIR: metersDir,
      ALERT_WEBHOOK_URL: receiver.url,
      ALERT_WEBHOOK_SECRET: SECRET,
      ALERT_WEBHOOK_TIMEOUT_MS: '60000',
      ALERT_DELIVERY_INTERVAL_MS: '200',
      ALERT_RETRY_BASE_MS: '200',
    });
    dirs.push(env.DATA_DIR!);
    const port = String(await closedPort());
    env.PORT = port;
    const url = `http://127.0.0.1:${port}`;
    const created = await runCli(['keys', 'create', '--name', 'alerts'], env);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim().split('\n').at(-1)!;

    const start = async () => {
      const child = spawn(process.execPath, [BIN, 'serve'], {
        env: { ...process.env, ...env },
        stdio: 'ignore',
      });
      children.push(child);
      const ready = await waitFor(
        () =>
          fetch(`${url}/readyz`).then(
            (r) => r.ok,
            () => false,
          ),
        (ok) => ok,
        { timeoutMs: 30_000 },
      );
      expect(ready, 'the service to be ready').toBe(true);
      return child;
    };
    const admin = (path: string, body?: object) =>
      fetch(`${url}${path}`, {
        method: body ? 'POST' : 'GET',
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
      });
    let sent = 0;
    const calls = async (n: number) => {
      const events = Array.from({ length: n }, (_, i) => ({
        id: `call-${sent + i}`,
        timestamp: new Date(hour.getTime() + (sent + i) * 1000).toISOString(),
        company_id: 'acme',
        method: 'GET',
        path: '/v1/score',
        status: 200,
      }));
      sent += n;
      const res = await fetch(`${url}/v1/logs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(events),
      });
      expect(res.status, await res.text()).toBe(202);
      expect((await admin('/v1/admin/flush', {})).status).toBeLessThan(300);
    };
    const evaluate = async () => expect((await admin('/v1/admin/meters/evaluate', {})).status).toBe(200);

    let child = await start();
    await calls(79);
    await evaluate();
    await calls(6); // 85: 80% of the quota of 100
    await evaluate();
    await firstArrived;
    // The crossing is recorded and its delivery is in flight, unanswered: kill the service there.
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    child = await start();
    await evaluate(); // the same usage again: nothing new
    await waitFor(
      () => receiver.acknowledged.length,
      (n) => n >= 1,
      { timeoutMs: 20_000 },
    );
    await calls(35); // 120: into the second tier
    await evaluate();
    await waitFor(
      () => receiver.acknowledged.length,
      (n) => n >= 2,
      { timeoutMs: 20_000 },
    );
    await evaluate();

    const listed = await waitFor(
      async () =>
        (await (await admin('/v1/alerts')).json()) as {
          data: { threshold: { id: string }; deliveries: { state: string }[] }[];
        },
      (a) => a.data.every((d) => d.deliveries[0]?.state === 'delivered'),
    );
    expect(listed.data.map((a) => [a.threshold.id, a.deliveries.map((d) => d.state)])).toEqual([
      ['next_tier:100', ['delivered']],
      ['quota:80%', ['delivered']],
    ]);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    expect(receiver.rejected).toEqual([]);
    // Two alerts, each acknowledged once; the one cut off by the kill arrived twice with the same id.
    expect(receiver.acknowledged).toHaveLength(2);
    expect(new Set(receiver.acknowledged).size).toBe(2);
    expect(
      receiver.verified.map((r) => (r.event.data as { threshold: { id: string } }).threshold.id),
    ).toEqual(['quota:80%', 'quota:80%', 'next_tier:100']);
    expect(receiver.verified.map((r) => (r.event.data as { quantity: string }).quantity)).toEqual([
      '85',
      '85',
      '120',
    ]);

    // The CLI reads the same list.
    const cli = await runCli(['alerts', 'list', '--json', '--customer', 'acme'], env);
    expect(cli.code, cli.stderr).toBe(0);
    const rows = JSON.parse(cli.stdout) as {
      threshold: { id: string };
      deliveries: { state: string; attempts: number }[];
    }[];
    expect(rows.map((r) => [r.threshold.id, r.deliveries[0]!.state])).toEqual([
      ['next_tier:100', 'delivered'],
      ['quota:80%', 'delivered'],
    ]);
    await receiver.close();
  });
});
