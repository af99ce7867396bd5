import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino, type Logger } from 'pino';
import { BillingStatusService } from '../../../src/billing/stripe/billing-status.ts';
import { CustomerMappingService } from '../../../src/billing/stripe/customer-directory.ts';
import {
  InMemoryBillingStateStore,
  InMemoryCustomerIndex,
  InMemoryCustomerMappingStore,
  InMemoryWebhookEventStore,
} from '../../../src/billing/stripe/in-memory-billing-stores.ts';
import {
  computeSignature,
  parseSignatureHeader,
  StripeWebhookService,
  verifyStripeSignature,
} from '../../../src/billing/stripe/webhooks.ts';
import {
  customerObject,
  deliver,
  sdkSignature,
  startStripeApp,
  stripeEvent,
  WEBHOOK_SECRET,
} from '../../support/webhook-fixtures.ts';

const NOW = 1_793_000_000; // 2026-10-26
const TOLERANCE = 300;

function services(
  secret: string | null = WEBHOOK_SECRET,
  logger: Logger = pino({ level: 'silent' }),
  clock: () => Date = () => new Date(NOW * 1000),
) {
  const mappingStore = new InMemoryCustomerMappingStore();
  const events = new InMemoryWebhookEventStore();
  const states = new InMemoryBillingStateStore();
  const mappings = new CustomerMappingService(mappingStore, clock);
  const webhooks = new StripeWebhookService({
    events,
    states,
    mappings,
    secret: secret ?? undefined,
    toleranceSeconds: TOLERANCE,
    logger,
    now: clock,
  });
  const status = new BillingStatusService({
    directory: mappings,
    states,
    usage: {
      customersPeriod: async (customers) =>
        customers.map((customer) => ({ customer, period: { id: '', start: '', end: '' }, meters: [] })),
    },
    meters: [],
    customers: new InMemoryCustomerIndex(),
  });
  return { mappingStore, events, states, mappings, webhooks, status };
}

const mappingEvent = (created = NOW - 10) =>
  JSON.stringify(
    stripeEvent('customer.created', customerObject('cus_Sec1', { billing_meter_customer: 'acme' }), {
      created,
    }),
  );

async function expectRefused(res: Response, status = 400): Promise<Record<string, unknown>> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  return (await res.json()) as Record<string, unknown>;
}

describe('Stripe webhook signatures', () => {
  let s: ReturnType<typeof services>;
  let app: Awaited<ReturnType<typeof startStripeApp>>;

  beforeEach(async () => {
    s = services();
    app = await startStripeApp({ mappings: s.mappings, webhooks: s.webhooks, status: s.status });
  });
  afterEach(async () => {
    await app.close();
  });

  it('accepts what the official SDK signs, with no admin key', async () => {
    const body = mappingEvent();
    const res = await deliver(app.url, body, sdkSignature(body, NOW - 5));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ received: true, type: 'customer.created', outcome: 'handled' });
    expect(await s.mappings.get('acme')).toEqual({ stripeCustomerId: 'cus_Sec1', source: 'webhook' });
  });

  it('matches any of several v1 signatures (a secret being rolled), ignoring v0', async () => {
    const body = mappingEvent();
    const good = sdkSignature(body, NOW).split(',v1=')[1]!;
    const header = `t=${NOW},v1=${'0'.repeat(64)},v1=${good},v0=${'f'.repeat(64)}`;
    expect((await deliver(app.url, body, header)).status).toBe(200);
  });

  it('refuses a signature made with another secret', async () => {
    const body = mappingEvent();
    const problem = await expectRefused(
      await deliver(app.url, body, sdkSignature(body, NOW, 'whsec_forged')),
    );
    expect(problem).toMatchObject({
      type: 'https://billing-meter.dev/problems/invalid-signature',
      status: 400,
    });
    expect(s.mappingStore.explicit.size).toBe(0);
    expect(s.events.events.size).toBe(0);
  });

  it('refuses a tampered body', async () => {
    const body = mappingEvent();
    const signature = sdkSignature(body, NOW);
    await expectRefused(await deliver(app.url, body.replace('acme', 'evil'), signature));
    await expectRefused(await deliver(app.url, `${body} `, signature));
    expect(s.mappingStore.explicit.size).toBe(0);
  });

  it('refuses a stale timestamp and a far-future one, even when correctly signed', async () => {
    const body = mappingEvent();
    const stale = await expectRefused(await deliver(app.url, body, sdkSignature(body, NOW - TOLERANCE - 1)));
    expect(String(stale.detail)).toContain('300s');
    await expectRefused(await deliver(app.url, body, sdkSignature(body, NOW + TOLERANCE + 1)));
    expect((await deliver(app.url, body, sdkSignature(body, NOW - TOLERANCE))).status).toBe(200);
  });

  it('refuses a replay of an old delivery, and answers a redelivery of a handled event with 200 doing nothing', async () => {
    const body = mappingEvent(NOW - 3600);
    const captured = sdkSignature(body, NOW - 3600);
    await expectRefused(await deliver(app.url, body, captured));
    expect(s.mappingStore.explicit.size).toBe(0);

    // Stripe's own retry of an hour-old event is signed afresh: accepted once, then a no-op.
    expect((await (await deliver(app.url, body, sdkSignature(body, NOW))).json()) as object).toMatchObject({
      outcome: 'handled',
    });
    const writes = s.mappingStore.writes;
    const again = await deliver(app.url, body, sdkSignature(body, NOW));
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ outcome: 'duplicate' });
    expect(s.mappingStore.writes).toBe(writes);
  });

  it('refuses a missing or malformed Stripe-Signature with 400, never 5xx', async () => {
    const body = mappingEvent();
    const good = sdkSignature(body, NOW);
    for (const header of [
      undefined,
      '',
      'garbage',
      `v1=${good.split(',v1=')[1]}`,
      `t=${NOW}`,
      `t=${NOW},v1=zz`,
      `t=abc,v1=${'0'.repeat(64)}`,
      `t=${NOW},t=${NOW},v1=${'0'.repeat(64)}`,
      'x'.repeat(5000),
    ]) {
      await expectRefused(await deliver(app.url, body, header));
    }
  });

  it('answers 400 for a correctly signed body that is not JSON, or not an event, and 200 for an unknown type', async () => {
    const notJson = '{"id": "evt_1", ';
    const p1 = await expectRefused(await deliver(app.url, notJson, sdkSignature(notJson, NOW)));
    expect(p1.type).toBe('https://billing-meter.dev/problems/malformed-body');
    const notEvent = JSON.stringify({ hello: 'world' });
    await expectRefused(await deliver(app.url, notEvent, sdkSignature(notEvent, NOW)));
    const unknown = JSON.stringify(
      stripeEvent('charge.refunded', { id: 'ch_1', object: 'charge' }, { created: NOW }),
    );
    const res = await deliver(app.url, unknown, sdkSignature(unknown, NOW));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ outcome: 'ignored' });
  });

  it('refuses a body over 1 MiB with 413', async () => {
    const body = JSON.stringify({
      ...stripeEvent('charge.refunded', { id: 'ch_1' }, { created: NOW }),
      pad: 'x'.repeat(1024 * 1024),
    });
    const res = await deliver(app.url, body, sdkSignature(body, NOW));
    await expectRefused(res, 413);
  });
});

describe('Stripe webhooks without a secret', () => {
  it('answer 503 webhooks_disabled, so Stripe keeps retrying until the secret is set', async () => {
    const s = services(null);
    const app = await startStripeApp({ mappings: s.mappings, webhooks: s.webhooks, status: s.status });
    try {
      const body = mappingEvent();
      const res = await deliver(app.url, body, sdkSignature(body, NOW));
      const problem = await expectRefused(res, 503);
      expect(problem).toMatchObject({
        type: 'https://billing-meter.dev/problems/webhooks-disabled',
        title: expect.stringContaining('STRIPE_WEBHOOK_SECRET'),
      });
      expect(s.mappingStore.explicit.size).toBe(0);
    } finally {
      await app.close();
    }
  });
});

describe('Stripe webhooks without a secret, in the log', () => {
  it('say so at most once a minute, as a warning with a count, never as an error with a stack', async () => {
    const lines: { level: number; msg: string; refused?: number; err?: unknown }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) },
    );
    let now = NOW * 1000;
    const s = services(null, logger, () => new Date(now));
    const app = await startStripeApp(
      { mappings: s.mappings, webhooks: s.webhooks, status: s.status },
      logger,
    );
    try {
      const body = mappingEvent();
      for (let i = 0; i < 5; i++) {
        const problem = await expectRefused(await deliver(app.url, body, sdkSignature(body, NOW)), 503);
        expect(problem.detail).toContain('set it to the signing secret of this endpoint');
      }
      now += 61_000;
      await expectRefused(await deliver(app.url, body, sdkSignature(body, NOW)), 503);
      expect(lines.map((l) => [l.level, l.refused])).toEqual([
        [40, 1],
        [40, 5],
      ]);
      expect(lines.every((l) => l.msg.includes('STRIPE_WEBHOOK_SECRET') && l.err === undefined)).toBe(true);
    } finally {
      await app.close();
    }
  });
});

describe('signature verification (pure)', () => {
  const payload = Buffer.from('{"id":"evt_1","object":"event"}');

  it('computes what the SDK computes', () => {
    const header = sdkSignature(payload.toString(), 1_700_000_000);
    expect(parseSignatureHeader(header)).toEqual({
      timestamp: 1_700_000_000,
      v1: [computeSignature(payload, 1_700_000_000, WEBHOOK_SECRET)],
    });
    expect(
      verifyStripeSignature({
        payload,
        header,
        secret: WEBHOOK_SECRET,
        toleranceSeconds: 300,
        nowSeconds: 1_700_000_100,
      }).timestamp,
    ).toBe(1_700_000_000);
  });

  it('accepts upper-case hex and spaces around parts', () => {
    const sig = computeSignature(payload, 1_700_000_000, WEBHOOK_SECRET).toUpperCase();
    expect(
      verifyStripeSignature({
        payload,
        header: ` t=1700000000 , v1=${sig}`,
        secret: WEBHOOK_SECRET,
        toleranceSeconds: 300,
        nowSeconds: 1_700_000_000,
      }),
    ).toEqual({ timestamp: 1_700_000_000, v1: [sig.toLowerCase()] });
  });

  it('reports a forged signature as forged, whatever its timestamp', () => {
    expect(() =>
      verifyStripeSignature({
        payload,
        header: `t=1,v1=${'0'.repeat(64)}`,
        secret: WEBHOOK_SECRET,
        toleranceSeconds: 300,
        nowSeconds: 1_700_000_000,
      }),
    ).toThrow(/no v1 signature matches/);
  });
});
