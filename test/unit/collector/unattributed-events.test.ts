// An event that names no customer is a real log, so it is stored, but no meter can bill it. Nothing said
// so: the batch now counts it (unattributed), and with REQUIRE_CUSTOMER it is refused instead, per
// event, naming the field a sender of that format should fill; the other events are still stored.
import { describe, expect, it } from 'vitest';
import { prepareBatch, type PrepareInput } from '../../../src/collector/body-to-rows.ts';
import type { SourceFormat } from '../../../src/collector/request-log.ts';
import { bodyOf, readWire } from './wire-fixtures.ts';

const NOW = Date.parse('2026-11-21T12:00:00.000Z');

const native = { timestamp: NOW - 1000, method: 'GET', path: '/v1/x', status: 200 };
const moesifCaptured = (
  bodyOf(readWire('moesif-nodejs-3.11-batched.json'), '/v1/events/batch') as object[]
)[0]!;
const moesif = {
  ...moesifCaptured,
  request: { ...(moesifCaptured as { request: object }).request, time: NOW - 1000 },
};
const kong: Record<string, unknown> = {
  ...readWire<Record<string, unknown>>('kong-http-log-3.8.json'),
  started_at: NOW - 1000,
};
const cloudevent = { specversion: '1.0', id: 'e1', source: 's', type: 't', subject: 'acme', data: {} };

/** Each format's event with a customer, and the same event with none. */
const FORMATS: Record<SourceFormat, { named: object; anonymous: object; field: string }> = {
  native: {
    named: { ...native, id: 'n1', customer: 'acme' },
    anonymous: { ...native, id: 'n2' },
    field: 'customer',
  },
  moesif: {
    named: moesif,
    anonymous: { ...moesif, company_id: undefined, user_id: undefined, transaction_id: 'other' },
    field: 'company_id',
  },
  kong: {
    named: kong,
    anonymous: { ...kong, consumer: undefined, request: { ...(kong.request as object), id: 'kong-2' } },
    field: 'consumer',
  },
  // A CloudEvent's subject is required: it always names its customer.
  cloudevents: { named: cloudevent, anonymous: { ...cloudevent, id: 'e2' }, field: 'subject' },
};

function prepare(format: SourceFormat, events: object[], requireCustomer?: boolean) {
  const input: PrepareInput = {
    format,
    kind: 'json',
    shape: 'many',
    body: Buffer.from(JSON.stringify(events)),
    app: 'app1',
    receivedAtMs: NOW,
    headerAllowList: [],
    limits: { maxEventBytes: 1_048_576, maxEventsPerRequest: 1000, maxPastMs: 86_400_000, maxFutureMs: 0 },
    ...(requireCustomer === undefined ? {} : { requireCustomer }),
  };
  const out = prepareBatch(input);
  if (!out.ok) throw new Error(out.message);
  return out;
}

describe('events without a customer', () => {
  it.each(['native', 'moesif', 'kong'] as const)('%s: are stored and counted as unattributed', (format) => {
    const { named, anonymous } = FORMATS[format];
    const out = prepare(format, [named, anonymous, anonymous]);
    expect(out).toMatchObject({ accepted: 3, unattributed: 2, rejected: [] });
    // Without the option nothing changes but the count: REQUIRE_CUSTOMER=false is the same.
    expect(prepare(format, [named, anonymous], false)).toMatchObject({
      accepted: 2,
      unattributed: 1,
      rejected: [],
    });
  });

  it('cloudevents: always name a customer (subject is required)', () => {
    const { named, anonymous } = FORMATS.cloudevents;
    expect(prepare('cloudevents', [named, anonymous])).toMatchObject({ accepted: 2, unattributed: 0 });
  });

  it('native: a customer, company_id or user_id each attributes the event', () => {
    const events = [{ customer: 'a' }, { company_id: 'b' }, { user_id: 7 }, { customer: '' }].map(
      (who, i) => ({
        ...native,
        id: `w${i}`,
        ...who,
      }),
    );
    expect(prepare('native', events)).toMatchObject({ accepted: 4, unattributed: 1 });
  });

  it.each(['native', 'moesif', 'kong'] as const)(
    '%s with REQUIRE_CUSTOMER: are rejected one by one, naming the field; the others are stored',
    (format) => {
      const { named, anonymous, field } = FORMATS[format];
      const out = prepare(format, [anonymous, named], true);
      expect(out).toMatchObject({ accepted: 1, unattributed: 0 });
      expect(out.rejected).toEqual([
        { index: 0, field, reason: expect.stringMatching(/^is required \(REQUIRE_CUSTOMER is true\): /) },
      ]);
      expect(out.rejected[0]!.reason).toMatch(/the event names no customer$/);
    },
  );

  it('names in each format how a sender names a customer', () => {
    const reason = (format: SourceFormat) =>
      prepare(format, [FORMATS[format].anonymous], true).rejected[0]!.reason;
    expect(reason('native')).toContain('send customer, company_id or user_id');
    expect(reason('moesif')).toContain('identifyCompany or identifyUser');
    expect(reason('kong')).toContain('authentication plugin');
  });
});
