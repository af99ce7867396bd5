import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../../src/errors.ts';
import { InMemorySyncStore } from '../../../src/billing/stripe/in-memory-sync-store.ts';
import {
  StripeCallError,
  type CancelOutcome,
  type MeterEventCall,
  type MeterEventSender,
} from '../../../src/billing/stripe/ports.ts';
import {
  StripeKeepsFailing,
  SyncExecutor,
  type SyncExecutorDeps,
} from '../../../src/billing/stripe/sync-executor.ts';
import { sequencer, type Discrepancy, type OpState } from '../../../src/billing/stripe/sync-ledger.ts';
import type { SyncAction, SyncItem } from '../../../src/billing/stripe/sync-plan.ts';
import { syncStrategyFor } from '../../../src/billing/stripe/sync-strategies.ts';
import { countMeter, quietLogger } from '../../support/sync-fakes.ts';

const NOW = new Date(Date.UTC(2026, 10, 10, 12, 5));
const H1 = new Date(Date.UTC(2026, 10, 10, 10));

const item: SyncItem = {
  meter: 'calls',
  eventName: 'api_calls',
  strategy: syncStrategyFor(countMeter),
  version: 'v1',
  customer: 'acme',
  hour: H1,
  target: 10n,
  stripeCustomerId: 'cus_acme',
  sendable: true,
  earliestEventTime: H1,
};
const send = (revision = 1, value = 10n): Extract<SyncAction, { kind: 'send' }> => ({
  kind: 'send',
  stripeCustomerId: 'cus_acme',
  revision,
  value,
  eventTime: H1,
});

/** Stripe as a list of calls, answering what it is told to. */
class ScriptedSender implements MeterEventSender {
  readonly sends: MeterEventCall[] = [];
  readonly cancels: string[] = [];
  sendFails: unknown;
  cancelAnswer: CancelOutcome = 'cancelled';
  constructor(private readonly onSend: () => void = () => undefined) {}
  async send(event: MeterEventCall) {
    this.onSend();
    this.sends.push(event);
    if (this.sendFails) throw this.sendFails;
    return 'applied' as const;
  }
  async cancel(_eventName: string, identifier: string) {
    this.cancels.push(identifier);
    return this.cancelAnswer;
  }
}

function executor(store: InMemorySyncStore, overrides: Partial<SyncExecutorDeps> = {}): SyncExecutor {
  return new SyncExecutor({
    store,
    call: (fn) => fn(),
    logger: quietLogger,
    now: () => NOW,
    seq: sequencer(),
    runAt: NOW,
    ...overrides,
  });
}

const states = (store: InMemorySyncStore) => store.ledger.map((op) => op.state);

describe('the sync executor', () => {
  it('stores the intent before the call and the outcome after it', async () => {
    const store = new InMemorySyncStore();
    let storedAtCall: OpState[] = [];
    const sender = new ScriptedSender(() => (storedAtCall = states(store)));
    const x = executor(store, { sender });
    const op = await x.execute(send(), item, []);
    await x.settled();
    expect(storedAtCall).toEqual(['intent']);
    expect(states(store)).toEqual(['intent', 'applied']);
    expect(op).toMatchObject({ state: 'applied', value: 10n, revision: 1, stripeCustomerId: 'cus_acme' });
    expect(sender.sends).toEqual([
      {
        eventName: 'api_calls',
        identifier: op!.opId,
        timestamp: H1,
        stripeCustomerId: 'cus_acme',
        value: 10n,
      },
    ]);
    expect(x.counts).toMatchObject({ sent: 1, duplicates: 0, rejected: 0 });
  });

  it('resumes an intent under its own identifier and value, without storing it again', async () => {
    const store = new InMemorySyncStore();
    const sender = new ScriptedSender();
    const down = new ScriptedSender();
    down.sendFails = new UpstreamError('stripe', 'down', true);
    const first = executor(store, { sender: down });
    await expect(first.execute(send(1, 7n), item, [])).rejects.toBeInstanceOf(StripeKeepsFailing);
    const [intent] = store.ledger;
    const again = executor(store, { sender });
    const op = await again.execute({ kind: 'resume', op: intent! }, item, []);
    await again.settled();
    expect(sender.sends.map((e) => [e.identifier, e.value])).toEqual([[intent!.opId, 7n]]);
    expect(states(store)).toEqual(['intent', 'applied']);
    expect(op?.state).toBe('applied');
  });

  it('settles a send Stripe refuses for good as rejected, with one discrepancy unless it is open', async () => {
    const store = new InMemorySyncStore();
    const sender = new ScriptedSender();
    sender.sendFails = new StripeCallError('No such customer', false, {
      kind: 'invalid_request',
      status: 400,
    });
    const x = executor(store, { sender });
    expect((await x.execute(send(), item, []))?.state).toBe('rejected');
    const [recorded] = store.discrepancyRows;
    expect(recorded).toMatchObject({ kind: 'rejected', expected: 10n, sent: 10n, resolved: false });
    const open: Discrepancy[] = [recorded!];
    await x.execute(send(2), item, open);
    expect(store.discrepancyRows).toHaveLength(1);
    expect(x.counts).toMatchObject({ rejected: 2, discrepancies: 1 });
  });

  it('fails with StripeKeepsFailing when Stripe still fails, and passes any other error as it came', async () => {
    const store = new InMemorySyncStore();
    const down = new ScriptedSender();
    down.sendFails = new UpstreamError('stripe', 'down', true);
    await expect(executor(store, { sender: down }).execute(send(), item, [])).rejects.toBeInstanceOf(
      StripeKeepsFailing,
    );
    const broken = new ScriptedSender();
    broken.sendFails = new RangeError('a bug');
    await expect(executor(store, { sender: broken }).execute(send(2), item, [])).rejects.toThrow(RangeError);
    expect(states(store)).toEqual(['intent', 'intent']); // both wait for the next run
  });

  it('in dry run calls nothing and settles as dry_run, without an intent', async () => {
    const store = new InMemorySyncStore();
    const x = executor(store);
    expect(x.dryRun).toBe(true);
    await x.execute(send(), item, []);
    await x.settled();
    expect(states(store)).toEqual(['dry_run']);
  });

  it.each([
    { answer: 'cancelled', state: 'applied', cancelled: 1, rejected: 0, discrepancies: 0 },
    { answer: 'already_cancelled', state: 'applied', cancelled: 1, rejected: 0, discrepancies: 0 },
    { answer: 'window_passed', state: 'not_cancellable', cancelled: 0, rejected: 0, discrepancies: 0 },
    { answer: 'not_found', state: 'rejected', cancelled: 0, rejected: 1, discrepancies: 1 },
  ] satisfies { answer: CancelOutcome; state: OpState; [k: string]: unknown }[])(
    'settles a cancel Stripe answers $answer as $state',
    async ({ answer, state, cancelled, rejected, discrepancies }) => {
      const store = new InMemorySyncStore();
      const sender = new ScriptedSender();
      const x = executor(store, { sender });
      const target = (await x.execute(send(), item, []))!;
      sender.cancelAnswer = answer;
      const cancel = await x.execute({ kind: 'cancel', send: target, detail: 'down' }, item, []);
      expect(cancel).toMatchObject({
        kind: 'cancel',
        opId: `cancel:${target.opId}`,
        targetOpId: target.opId,
        state,
      });
      expect(sender.cancels).toEqual([target.opId]);
      expect(x.counts).toMatchObject({ cancelled, rejected, discrepancies });
    },
  );

  it('batches the stream sends of several keys into one request, and fails them together', async () => {
    const store = new InMemorySyncStore();
    const batches: string[][] = [];
    let fail = false;
    const stream = {
      maxBatch: 10,
      sendBatch: async (events: readonly MeterEventCall[]) => {
        if (fail) throw new UpstreamError('stripe', 'stream down', true);
        batches.push(events.map((e) => e.identifier));
      },
    };
    const x = executor(store, { sender: new ScriptedSender(), stream });
    const keys = ['a', 'b', 'c'].map((customer) => ({ ...item, customer }));
    const ops = await Promise.all(keys.map((k) => x.execute(send(), k, [])));
    expect(batches).toEqual([ops.map((op) => op!.opId)]);
    fail = true;
    const failed = await Promise.allSettled(keys.map((k) => x.execute(send(2), k, [])));
    expect(failed.map((r) => r.status === 'rejected' && r.reason instanceof StripeKeepsFailing)).toEqual([
      true,
      true,
      true,
    ]);
  });
});
