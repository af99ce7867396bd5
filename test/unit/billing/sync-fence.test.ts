import { describe, expect, it } from 'vitest';
import { FencedOffError, type SyncFence } from '../../../src/billing/stripe/ports.ts';
import { countMeter, Harness } from '../../support/sync-fakes.ts';

const T0 = Date.UTC(2026, 10, 10, 12, 5);
const hour = (h: number) => new Date(Date.UTC(2026, 10, 10, h));

/** A fence that holds for the first `checks` checks, then is lost (a lease that ran out mid-run). */
function fenceLostAfter(checks: number, token = 7n): SyncFence & { checked: number } {
  return {
    token,
    checked: 0,
    assertHeld() {
      this.checked += 1;
      if (this.checked > checks) throw new FencedOffError('lease lost');
    },
  };
}

describe('the sync under a lease (fencing)', () => {
  it('writes the lease token on every intent, and sends as before while it holds', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    for (const hr of [8, 9, 10])
      h.store.setUsage(countMeter.name, {
        version: 'v1',
        customer: 'acme',
        hour: hour(hr),
        value: 5n,
        periodValue: 0n,
      });
    const report = await h.service().run([countMeter], fenceLostAfter(Infinity, 42n));
    expect(report.sent).toBe(3);
    const ops = await h.store.ops(countMeter.name, hour(0), hour(23));
    expect(ops.map((o) => o.fencingToken)).toEqual([42n, 42n, 42n]);
  });

  it('writes no intent and sends nothing once the lease is lost, and fails the run', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    for (const hr of [8, 9, 10])
      h.store.setUsage(countMeter.name, {
        version: 'v1',
        customer: 'acme',
        hour: hour(hr),
        value: 5n,
        periodValue: 0n,
      });
    // Two checks per call (before the intent, and before the call): the second hour's first check fails.
    await expect(h.service({ concurrency: 1 }).run([countMeter], fenceLostAfter(2))).rejects.toThrow(
      FencedOffError,
    );
    expect(h.stripe.calls).toHaveLength(1);
    const ops = await h.store.ops(countMeter.name, hour(0), hour(23));
    expect(new Set(ops.map((o) => o.opId)).size).toBe(1);
  });

  it('does not call Stripe for an intent it wrote while the lease ran out', async () => {
    const h = new Harness(T0);
    h.mapping.set('acme', 'cus_acme');
    h.store.setUsage(countMeter.name, {
      version: 'v1',
      customer: 'acme',
      hour: hour(8),
      value: 5n,
      periodValue: 0n,
    });
    await expect(h.service().run([countMeter], fenceLostAfter(1))).rejects.toThrow(FencedOffError);
    expect(h.stripe.calls).toHaveLength(0);
    // The intent stays pending: the next holder resumes it under the same identifier and value.
    const [op] = await h.store.ops(countMeter.name, hour(0), hour(23));
    expect(op).toMatchObject({ state: 'intent', value: 5n });
    await h.service().run([countMeter], fenceLostAfter(Infinity, 8n));
    expect(h.stripe.sum('cus_acme')).toBe(5n);
  });
});
