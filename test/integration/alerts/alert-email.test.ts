// Alert emails through SMTP (nodemailer), caught by a local SMTP server (smtp-server) in the test;
// crossings and attempts in ClickHouse on both engines. A refused message is retried like a webhook.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { emailChannel } from '../../../src/adapters/alerts/email-channel.ts';
import { AlertDeliveryService } from '../../../src/alerts/alert-delivery.ts';
import { AlertEngine } from '../../../src/alerts/alert-engine.ts';
import { parseMeterText } from '../../../src/meters/load-meters.ts';
import type { ClickHouse } from '../../../src/storage/clickhouse/clickhouse.ts';
import {
  ClickHouseCrossingStore,
  ClickHouseDeliveryStore,
} from '../../../src/storage/clickhouse/alert-store.ts';
import { ENGINES, openMigratedDatabase } from '../../support/clickhouse.ts';

const T0 = Date.UTC(2026, 10, 10, 12, 5);
const PERIOD = new Date(Date.UTC(2026, 10, 1));

interface Caught {
  from: string;
  to: string[];
  data: string;
}

async function smtpCatcher(refuseFirst: number) {
  const caught: Caught[] = [];
  let refused = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (refused < refuseFirst) {
          refused++;
          const err = Object.assign(new Error('mailbox busy, try later'), { responseCode: 451 });
          callback(err);
          return;
        }
        caught.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const { port } = server.server.address() as AddressInfo;
  return {
    caught,
    url: `smtp://127.0.0.1:${port}`,
    close: () => new Promise((r) => server.close(() => r(undefined))),
  };
}

describe.each(ENGINES)('alert emails on %s ClickHouse', (engine) => {
  let ch: ClickHouse;
  let catcher: Awaited<ReturnType<typeof smtpCatcher>>;
  let clock = T0;
  const now = () => new Date(clock);

  beforeEach(async () => {
    ch = await openMigratedDatabase(engine, 'alert_mail');
    clock = T0;
  });
  afterEach(async () => {
    await catcher.close();
    await ch.close();
  });

  it('mails a crossing once, after SMTP refused the first try', async () => {
    catcher = await smtpCatcher(1);
    const parsed = parseMeterText(
      'name: calls\ndescription: d\naggregation: {type: count}\nunit: calls\nalerts: [{at: 1000 calls}]\n',
      'calls.yaml',
    );
    if (!('meter' in parsed)) throw new Error('invalid meter');
    const crossings = new ClickHouseCrossingStore(ch);
    const delivery = new AlertDeliveryService({
      crossings,
      deliveries: new ClickHouseDeliveryStore(ch),
      channels: [emailChannel({ smtpUrl: catcher.url, to: 'ops@example.com', from: 'meter@example.com' })],
      units: new Map([['calls', 'calls']]),
      maxAttempts: 3,
      backoffBaseMs: 1000,
      backoffMaxMs: 1000,
      lookbackMs: 86_400_000,
      now,
    });
    const alerts = new AlertEngine(crossings, [parsed.meter.definition], now);
    await alerts.observe([
      { customer: 'acme', meter: 'calls', periodStart: PERIOD, quantity: 1200n, observedAt: now() },
    ]);
    expect(await delivery.deliverDue()).toEqual({ delivered: 0, failed: 1 });
    clock += 1000;
    expect(await delivery.deliverDue()).toEqual({ delivered: 1, failed: 0 });
    clock += 60_000;
    expect(await delivery.deliverDue()).toEqual({ delivered: 0, failed: 0 });

    expect(catcher.caught).toHaveLength(1);
    const [mail] = catcher.caught;
    expect(mail!.from).toBe('meter@example.com');
    expect(mail!.to).toEqual(['ops@example.com']);
    expect(mail!.data).toContain('Subject: [billing-meter] acme reached 1000 calls on calls');
    expect(mail!.data).toContain('acme used 1200 calls of calls in 2026-11');
    const [described] = await delivery.describe(await crossings.list({ limit: 1 }));
    expect(described!.deliveries.map((d) => [d.channel, d.state, d.attempts.length])).toEqual([
      ['email', 'delivered', 2],
    ]);
    expect(described!.deliveries[0]!.attempts[0]!.error).toContain('mailbox busy');
  });
});
