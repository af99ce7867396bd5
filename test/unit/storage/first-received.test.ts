import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decisionBasis,
  supersededCopies,
  type EventCopy,
} from '../../../src/storage/clickhouse/first-received.ts';

const H = 3600;
const DAY = 24 * H;
const c = (name: string, requestTime: number, firstReceived: number, customerKey = 'acme') => ({
  name,
  customerKey,
  requestTime,
  firstReceived,
});

describe('which copies of an event do not count', () => {
  it.each([
    ['one copy', [c('a', 10 * H, 10 * H)], []],
    [
      'the later received of two, whatever the request times',
      [c('a', 11 * H, 10 * H), c('b', 10 * H, 11 * H)],
      ['b'],
    ],
    [
      'all but the first received of three',
      [c('a', 5 * H, 7 * H), c('b', 6 * H, 6 * H), c('c', 7 * H, 8 * H)],
      ['a', 'c'],
    ],
    ['a copy further than the horizon from every earlier one', [c('a', 0, 1), c('b', DAY + 1, DAY + 2)], []],
    ['exactly the horizon apart: still the same event', [c('a', 0, 1), c('b', DAY, DAY + 2)], ['b']],
    [
      'received in the same second: the earlier request time counts',
      [c('a', 20, 100), c('b', 10, 100)],
      ['a'],
    ],
    [
      'same second, same time: the smaller customer key counts',
      [c('a', 10, 100, 'zeta'), c('b', 10, 100, 'alpha')],
      ['a'],
    ],
    // The middle copy is superseded by the first; the last is within the horizon of the middle one,
    // which was received before it, so it does not count either.
    [
      'a chain within the horizon',
      [c('a', 0, 0), c('b', 20 * H, 20 * H), c('c', 40 * H, 40 * H)],
      ['b', 'c'],
    ],
  ])('%s', (_case, copies, superseded) => {
    expect(supersededCopies(copies, DAY).map((x) => x.name)).toEqual(superseded);
  });

  it('does not depend on the order the copies are read in', () => {
    const copy = fc.record({
      customerKey: fc.constantFrom('a', 'b'),
      requestTime: fc.integer({ min: 0, max: 3 * DAY }),
      firstReceived: fc.integer({ min: 0, max: 3 * DAY }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(copy, { selector: (x) => `${x.customerKey}/${x.requestTime}`, maxLength: 8 }),
        (copies) => {
          const key = (x: EventCopy) => `${x.customerKey}/${x.requestTime}`;
          const forward = supersededCopies(copies, DAY).map(key).sort();
          const backward = supersededCopies([...copies].reverse(), DAY)
            .map(key)
            .sort();
          expect(backward).toEqual(forward);
          // At least one copy always counts.
          if (copies.length > 0) expect(forward.length).toBeLessThan(copies.length);
        },
      ),
    );
  });
});

describe('the basis of a decision', () => {
  const copy = fc.record({
    customerKey: fc.constantFrom('a', 'b', 'c'),
    requestTime: fc.integer({ min: 0, max: 3 * DAY }),
    firstReceived: fc.integer({ min: 1_700_000_000, max: 2_100_000_000 }),
  });

  it('grows when a copy arrives and when a copy turns out to have been received earlier', () => {
    fc.assert(
      fc.property(
        copy,
        fc.array(copy, { maxLength: 6 }),
        copy,
        fc.integer({ min: 1, max: 1000 }),
        (self, others, extra, earlier) => {
          const copies = [self, ...others];
          const before = decisionBasis(self, copies, DAY);
          // A new copy: the basis grows if it is within the horizon, else stays.
          const withExtra = decisionBasis(self, [...copies, extra], DAY);
          if (Math.abs(extra.requestTime - self.requestTime) <= DAY) expect(withExtra > before).toBe(true);
          else expect(withExtra).toBe(before);
          // A row of the copy itself received earlier (from a spool).
          const sooner = { ...self, firstReceived: self.firstReceived - earlier };
          expect(decisionBasis(sooner, [sooner, ...others], DAY) > before).toBe(true);
        },
      ),
    );
  });

  it('fits a UInt64', () => {
    const many = Array.from({ length: 70_000 }, (_, i) => c(String(i), 0, 2 ** 31 - 1));
    const basis = decisionBasis(many[0]!, many, DAY);
    expect(basis).toBeLessThan(2n ** 64n);
    expect(basis >> 48n).toBe(0xffffn);
  });
});
