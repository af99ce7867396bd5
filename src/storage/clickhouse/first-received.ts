/**
 * Which copies of one event do not count: the rule of migration 7 as a pure function.
 *
 * A copy is what request_logs holds under one sorting key (app, customer_key, request_time, event_id):
 * copies of an event differ in their customer or their request time (to the second). A copy is
 * superseded when another copy of the same event, received before it, lies within the horizon of its
 * request time. So the first received copy counts. The horizon bounds what is read to decide (the
 * copies within it of the hours that got rows), and a decision only looks as far: a copy further than
 * the horizon from every copy received before it is not superseded by them. Readers still read one
 * row per (app, event_id) of their range, so such copies count once in a range that holds both, once
 * each in ranges that hold one (the README says so).
 *
 * "Received before" is the order of (first received time, request time, customer key): total, so the
 * answer never depends on the order rows are read in. A copy's first received time never grows
 * (ClickHouse keeps the first received row of a sorting key when it merges), but it can fall: a row
 * received earlier may reach ClickHouse later (from a spool, after an outage). Decisions are therefore
 * made again whenever rows arrive near a copy, and the one made from the most holds (decisionBasis).
 */
export interface EventCopy {
  customerKey: string;
  /** Epoch seconds. */
  requestTime: number;
  /** Epoch seconds: the earliest `received_at` among the rows of this copy. */
  firstReceived: number;
}

export function receivedBefore(a: EventCopy, b: EventCopy): boolean {
  if (a.firstReceived !== b.firstReceived) return a.firstReceived < b.firstReceived;
  if (a.requestTime !== b.requestTime) return a.requestTime < b.requestTime;
  return a.customerKey < b.customerKey;
}

/** The copies of one event that do not count, given all its copies within the horizon of each. */
export function supersededCopies<C extends EventCopy>(copies: readonly C[], horizonSeconds: number): C[] {
  return copies.filter((copy) =>
    copies.some(
      (other) =>
        other !== copy &&
        receivedBefore(other, copy) &&
        Math.abs(other.requestTime - copy.requestTime) <= horizonSeconds,
    ),
  );
}

/**
 * What a copy's decision is made from, as one number that only grows as rows arrive: the copies within
 * the horizon of it (their number only grows) and their first received times (which only fall). Two
 * decisions with the same basis were made from the same copies, so they agree; of two with different
 * bases, the higher was made from more. Encoded for a UInt64 column: the count (at most 65,535) above
 * 48 bits of the complement of the sum of first received times (epoch seconds, below 2^31 each).
 */
export function decisionBasis(copy: EventCopy, copies: readonly EventCopy[], horizonSeconds: number): bigint {
  const near = copies.filter((c) => Math.abs(c.requestTime - copy.requestTime) <= horizonSeconds);
  const count = BigInt(Math.min(near.length, 0xffff));
  const received = near.reduce((sum, c) => sum + BigInt(c.firstReceived), 0n);
  const room = (1n << 48n) - 1n;
  return (count << 48n) | (room - (received < room ? received : room));
}
