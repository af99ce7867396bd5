import { describe, expect, it } from 'vitest';
import { syncStrategyFor } from '../../../src/billing/stripe/sync-strategies.ts';
import { meterSchema } from '../../../src/meters/meter-schema.ts';

const meter = (type: string, value?: string) =>
  meterSchema.parse({
    name: `m-${type}`,
    description: type,
    aggregation: value ? { type, value } : { type },
    unit: 'x',
    stripe: { event_name: `e_${type}` },
  });

const hourly = syncStrategyFor(meter('count'));
const periodToDate = syncStrategyFor(meter('unique_count', 'user_id'));
const SENDABLE_FROM = new Date(Date.UTC(2026, 9, 6, 13));
const at = (iso: string) => new Date(iso);

describe('the strategy a meter syncs by', () => {
  it.each([
    { type: 'count', value: undefined, additive: true },
    { type: 'sum', value: 'response_bytes', additive: true },
    { type: 'unique_count', value: 'user_id', additive: false },
    { type: 'min', value: 'latency_ms', additive: false },
    { type: 'max', value: 'latency_ms', additive: false },
    { type: 'latest', value: 'latency_ms', additive: false },
  ])('$type: additive $additive', ({ type, value, additive }) => {
    expect(syncStrategyFor(meter(type, value)).additive).toBe(additive);
  });
});

describe('hourly deltas', () => {
  it.each([
    { hour: '2026-11-10T10:00:00Z', sendable: true },
    { hour: '2026-10-06T13:00:00Z', sendable: true },
    { hour: '2026-10-06T12:00:00Z', sendable: false },
  ])('an hour at $hour is sendable: $sendable', ({ hour, sendable }) => {
    expect(hourly.window(at(hour), SENDABLE_FROM)).toEqual({ sendable, earliestEventTime: at(hour) });
  });

  it.each([
    { target: 15n, sent: 10n, change: { kind: 'send', value: 5n, closesDiscrepancies: true } },
    { target: 8n, sent: 10n, change: { kind: 'take_back', value: -2n, closesDiscrepancies: true } },
  ])('from $sent to $target', ({ target, sent, change }) => {
    expect(hourly.change(target, sent)).toEqual(change);
  });

  it('stamps every revision with its hour', () => {
    const hour = at('2026-11-10T10:00:00Z');
    expect(hourly.eventTime(hour, hourly.window(hour, SENDABLE_FROM), 7)).toEqual(hour);
  });
});

describe('period-to-date', () => {
  it.each([
    { hour: '2026-11-10T10:00:00Z', period: '2026-11-01T00:00:00Z', sendable: true },
    // October's period still takes events (its last hours are inside the window).
    { hour: '2026-10-02T10:00:00Z', period: '2026-10-01T00:00:00Z', sendable: true },
    { hour: '2026-09-30T10:00:00Z', period: '2026-09-01T00:00:00Z', sendable: false },
  ])('a period whose latest hour is $hour is sendable: $sendable', ({ hour, period, sendable }) => {
    expect(periodToDate.window(at(hour), SENDABLE_FROM)).toEqual({
      period: at(period),
      sendable,
      earliestEventTime: SENDABLE_FROM,
    });
  });

  it.each([
    { target: 4n, sent: 5n },
    { target: 6n, sent: 5n },
  ])('from $sent to $target: a new event of the target', ({ target, sent }) => {
    expect(periodToDate.change(target, sent)).toEqual({
      kind: 'send',
      value: target,
      closesDiscrepancies: false,
    });
  });

  it.each([
    {
      name: 'the hour plus the revision in seconds',
      hour: '2026-11-10T10:00:00Z',
      revision: 2,
      expected: '2026-11-10T10:00:02Z',
    },
    {
      name: 'capped inside the hour',
      hour: '2026-11-10T10:00:00Z',
      revision: 5000,
      expected: '2026-11-10T10:59:59Z',
    },
    // Only a period the window has passed (never sent: a discrepancy) would run past its end.
    {
      name: 'capped inside the period',
      hour: '2026-09-30T10:00:00Z',
      revision: 1,
      expected: '2026-09-30T23:59:59Z',
    },
    // Its latest hour is before the window: the event goes at the window's first hour.
    {
      name: 'never before the sendable window',
      hour: '2026-10-02T10:00:00Z',
      revision: 1,
      expected: '2026-10-06T13:00:01Z',
    },
  ])('event time: $name', ({ hour, revision, expected }) => {
    const window = periodToDate.window(at(hour), SENDABLE_FROM);
    expect(periodToDate.eventTime(at(hour), window, revision)).toEqual(at(expected));
  });
});
