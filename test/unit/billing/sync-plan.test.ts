import { describe, expect, it } from 'vitest';
import {
  cancelOpId,
  eventIdentifier,
  type Discrepancy,
  type DiscrepancyKind,
  type LedgerOp,
  type OpState,
} from '../../../src/billing/stripe/sync-ledger.ts';
import {
  decide,
  decidesAgain,
  type SyncAction,
  type SyncItem,
} from '../../../src/billing/stripe/sync-plan.ts';
import { syncStrategyFor } from '../../../src/billing/stripe/sync-strategies.ts';
import { countMeter, uniqueMeter } from '../../support/sync-fakes.ts';

const HOUR = 3_600_000;
const NOW = new Date(Date.UTC(2026, 10, 10, 12, 5));
const H1 = new Date(Date.UTC(2026, 10, 10, 10));
/** What the run computes for NOW: the first hour Stripe still accepts, with an hour of margin. */
const SENDABLE_FROM = new Date(Date.UTC(2026, 9, 6, 13));
const ago = (ms: number) => new Date(NOW.getTime() - ms);

const hourly = syncStrategyFor(countMeter);
const periodToDate = syncStrategyFor(uniqueMeter);

function item(overrides: Partial<SyncItem> & { periodToDate?: boolean } = {}): SyncItem {
  const { periodToDate: ptd, ...rest } = overrides;
  const strategy = ptd ? periodToDate : hourly;
  const hour = rest.hour ?? H1;
  return {
    meter: ptd ? 'users' : 'calls',
    eventName: ptd ? 'active_users' : 'api_calls',
    strategy,
    version: 'v1',
    customer: 'acme',
    hour,
    target: 10n,
    stripeCustomerId: 'cus_acme',
    ...strategy.window(hour, SENDABLE_FROM),
    ...rest,
  };
}

let seq = 0n;
function send(revision: number, value: number, state: OpState, intentAt = ago(HOUR)): LedgerOp {
  seq += 1n;
  return {
    opId: eventIdentifier('calls', 'v1', 'acme', H1, revision),
    kind: 'send',
    meter: 'calls',
    version: 'v1',
    customerKey: 'acme',
    stripeCustomerId: 'cus_acme',
    eventName: 'api_calls',
    hour: H1,
    revision,
    value: BigInt(value),
    eventTime: H1,
    targetOpId: '',
    state,
    detail: '',
    intentAt,
    recordedAt: intentAt,
    seq,
  };
}

const cancelOf = (target: LedgerOp, state: OpState): LedgerOp => ({
  ...target,
  opId: cancelOpId(target.opId),
  kind: 'cancel',
  targetOpId: target.opId,
  state,
  intentAt: NOW,
  seq: (seq += 1n),
});

const discrepancy = (kind: DiscrepancyKind, expected: number, sent: number): Discrepancy => ({
  meter: 'calls',
  version: 'v1',
  customerKey: 'acme',
  hour: H1,
  kind,
  expected: BigInt(expected),
  sent: BigInt(sent),
  detail: 'earlier',
  resolved: false,
  recordedAt: ago(2 * HOUR),
});

interface Row {
  name: string;
  item: SyncItem;
  ops?: LedgerOp[];
  open?: Discrepancy[];
  dryRun?: boolean;
  cancelsTried?: LedgerOp[];
  expected: SyncAction[];
}

const sendAction = (revision: number, value: number, eventTime = H1): SyncAction => ({
  kind: 'send',
  stripeCustomerId: 'cus_acme',
  revision,
  value: BigInt(value),
  eventTime,
});

const decreaseAfter24h = (expected: number, sent: number): SyncAction => ({
  kind: 'discrepancy',
  of: 'decrease_after_24h',
  expected: BigInt(expected),
  sent: BigInt(sent),
  detail: "usage went down after Stripe's 24 h cancel window: Stripe holds more than was used",
});

const r1 = send(1, 10, 'applied');
const r2 = send(2, 5, 'applied');
const rejectedOpen = discrepancy('rejected', 10, 10);
const unknownOpen = discrepancy('unknown_outcome', 4, 4);
const fresh = send(1, 10, 'intent', ago(HOUR));
const stale = send(1, 10, 'intent', ago(24 * HOUR));
const staleFirst = { ...send(1, 4, 'intent', ago(30 * HOUR)), seq: 1n };
const freshSecond = { ...send(2, 6, 'intent', ago(HOUR)), seq: 2n };
const old = send(1, 12, 'applied', ago(25 * HOUR));
const lost = send(1, 12, 'unknown_outcome', ago(2 * HOUR));

const rows: Row[] = [
  // Hourly deltas (sum meters)
  { name: 'a new hour: its first revision', item: item(), expected: [sendAction(1, 10)] },
  { name: 'unchanged: nothing', item: item(), ops: [r1], expected: [] },
  {
    name: 'unchanged with an open discrepancy about amounts: resolve it',
    item: item(),
    ops: [r1],
    open: [rejectedOpen, unknownOpen],
    expected: [{ kind: 'resolve', sent: 10n, discrepancies: [rejectedOpen] }],
  },
  {
    name: 'unchanged with only an unknown outcome open: it stays for the operator',
    item: item(),
    ops: [r1],
    open: [unknownOpen],
    expected: [],
  },
  {
    name: 'an increase: the difference as a new revision',
    item: item({ target: 15n }),
    ops: [r1],
    expected: [sendAction(2, 5)],
  },
  {
    name: 'an increase with an open discrepancy: send, then resolve with the target',
    item: item({ target: 15n }),
    ops: [r1],
    open: [rejectedOpen],
    expected: [sendAction(2, 5), { kind: 'resolve', sent: 15n, discrepancies: [rejectedOpen] }],
  },
  {
    name: 'a rejected send does not count: the usage again, as the next revision',
    item: item({ target: 3n }),
    ops: [send(1, 3, 'rejected')],
    expected: [sendAction(2, 3)],
  },
  {
    name: 'a decrease within 24 h: cancel every live send',
    item: item({ target: 12n }),
    ops: [r1, r2],
    expected: [
      { kind: 'cancel', send: r1, detail: 'usage went down from 15 to 12' },
      { kind: 'cancel', send: r2, detail: 'usage went down from 15 to 12' },
    ],
  },
  {
    name: 'after the cancels applied: the usage again, as the next revision',
    item: item({ target: 12n }),
    ops: [r1, r2, cancelOf(r1, 'applied'), cancelOf(r2, 'applied')],
    cancelsTried: [r1, r2],
    expected: [sendAction(3, 12)],
  },
  {
    name: 'after one cancel applied and one refused: what the refused one leaves missing',
    item: item({ target: 12n }),
    ops: [r1, r2, cancelOf(r1, 'applied'), cancelOf(r2, 'not_cancellable')],
    cancelsTried: [r1, r2],
    expected: [sendAction(3, 7)],
  },
  {
    name: 'after the cancels were refused: a discrepancy, not a second try',
    item: item({ target: 12n }),
    ops: [r1, r2, cancelOf(r1, 'not_cancellable'), cancelOf(r2, 'rejected')],
    cancelsTried: [r1, r2],
    expected: [decreaseAfter24h(12, 15)],
  },
  {
    name: 'a cancel refused by an earlier run is tried again',
    item: item({ target: 8n }),
    ops: [r1, { ...cancelOf(r1, 'not_cancellable'), intentAt: ago(HOUR) }],
    expected: [{ kind: 'cancel', send: r1, detail: 'usage went down from 10 to 8' }],
  },
  {
    name: 'a decrease after 24 h: a discrepancy',
    item: item({ target: 8n }),
    ops: [old],
    expected: [decreaseAfter24h(8, 12)],
  },
  {
    name: 'a decrease below a send never heard back: not cancelled (it may not exist), a discrepancy',
    item: item({ target: 8n }),
    ops: [lost],
    expected: [decreaseAfter24h(8, 12)],
  },
  {
    name: 'a pending intent: resume it first',
    item: item({ target: 14n }),
    ops: [fresh],
    expected: [{ kind: 'resume', op: fresh }],
  },
  {
    name: 'a pending intent older than Stripe keeps identifiers: give it up',
    item: item(),
    ops: [stale],
    expected: [{ kind: 'give_up', op: stale }],
  },
  {
    name: 'several pending intents: in the order they were made',
    item: item(),
    ops: [freshSecond, staleFirst],
    expected: [
      { kind: 'give_up', op: staleFirst },
      { kind: 'resume', op: freshSecond },
    ],
  },
  {
    name: 'an unmapped customer: hold the usage',
    item: item({ stripeCustomerId: undefined, target: 11n }),
    expected: [{ kind: 'hold', value: 11n }],
  },
  {
    name: 'an unmapped customer whose usage went down: hold the difference',
    item: item({ stripeCustomerId: undefined, target: 7n }),
    ops: [r1],
    expected: [{ kind: 'hold', value: -3n }],
  },
  {
    name: 'an hour older than Stripe accepts: a discrepancy',
    item: item({ hour: new Date(Date.UTC(2026, 9, 5, 10)), target: 9n }),
    expected: [
      {
        kind: 'discrepancy',
        of: 'outside_stripe_window',
        expected: 9n,
        sent: 0n,
        detail: 'usage changed after Stripe stopped accepting events for this hour (35 days)',
      },
    ],
  },
  {
    name: 'an hour older than Stripe accepts, unchanged: nothing',
    item: item({ hour: new Date(Date.UTC(2026, 9, 5, 10)), target: 10n }),
    ops: [r1],
    expected: [],
  },
  {
    name: 'dry run: its own dry-run rows count as sent',
    item: item(),
    ops: [send(1, 10, 'dry_run')],
    dryRun: true,
    expected: [],
  },
  {
    name: 'live: dry-run rows do not count as sent',
    item: item(),
    ops: [send(1, 10, 'dry_run')],
    expected: [sendAction(2, 10)],
  },

  // Period-to-date (last meters)
  {
    name: 'period-to-date, first value: the hour plus one second',
    item: item({ periodToDate: true, target: 3n }),
    expected: [sendAction(1, 3, new Date(H1.getTime() + 1000))],
  },
  {
    name: 'period-to-date, a decrease: a later event, never a cancel; an open discrepancy waits for the next run',
    item: item({ periodToDate: true, target: 4n }),
    ops: [send(1, 5, 'applied')],
    open: [rejectedOpen],
    expected: [sendAction(2, 4, new Date(H1.getTime() + 2000))],
  },
  {
    name: 'period-to-date, unchanged with an open discrepancy: resolve it',
    item: item({ periodToDate: true, target: 5n }),
    ops: [send(1, 3, 'applied'), send(2, 5, 'applied')],
    open: [rejectedOpen],
    expected: [{ kind: 'resolve', sent: 5n, discrepancies: [rejectedOpen] }],
  },
  {
    name: 'period-to-date, unmapped: hold the period-to-date value',
    item: item({ periodToDate: true, stripeCustomerId: undefined, target: 4n }),
    ops: [send(1, 5, 'applied')],
    expected: [{ kind: 'hold', value: 4n }],
  },
];

describe('decide', () => {
  it.each(rows)('$name', (row) => {
    const ledger = {
      ops: row.ops ?? [],
      open: row.open ?? [],
      dryRun: row.dryRun ?? false,
      cancelsTried: new Set((row.cancelsTried ?? []).map((op) => op.opId)),
    };
    expect(decide(row.item, ledger, NOW)).toEqual(row.expected);
  });
});

describe('decidesAgain', () => {
  const hold: SyncAction = { kind: 'hold', value: 1n };
  it.each([
    { name: 'nothing to do', actions: [], expected: false },
    {
      name: 'resumed and gave up: what Stripe holds changed',
      actions: [
        { kind: 'resume', op: fresh },
        { kind: 'give_up', op: stale },
      ],
      expected: true,
    },
    {
      name: 'cancelled: send what the cancels took back',
      actions: [{ kind: 'cancel', send: r1, detail: '' }],
      expected: true,
    },
    { name: 'sent: the key is done for this run', actions: [sendAction(1, 1)], expected: false },
    { name: 'held', actions: [hold], expected: false },
  ] satisfies { name: string; actions: SyncAction[]; expected: boolean }[])(
    '$name',
    ({ actions, expected }) => {
      expect(decidesAgain(actions)).toBe(expected);
    },
  );
});
