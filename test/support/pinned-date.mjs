// Pins JavaScript's wall clock for a whole test run: `NODE_OPTIONS=--import=<this file>` with
// BILLING_METER_PINNED_NOW=<ISO instant> (.ci/pinned-clocks sets both). Every Node process of the run
// (vitest, its workers, the CLI and service processes the tests spawn) then starts its `Date` at that
// instant, and the clock moves on with real time, so timeouts, revisions and sequences still advance.
//
// Why not libfaketime: under it clickhouse-server 18.16 does not start (its jemalloc calls clock_gettime
// while libfaketime initialises), and chdb, which reads the real clock itself, spins on every timed wait
// that libfaketime shifts (the suite ran 40x slower). Both engines keep the real clock here; the SQL in
// src reads no server clock (.ci/pinned-clocks checks that), so the code under test sees only this date.
//
// Limits: `Date` and `Date.now` are pinned; `performance.timeOrigin`, file times and V8-internal uses
// of the clock (Intl formatting without a date) are not. The first process sets
// BILLING_METER_PINNED_AT (the real time at which the pinned instant held) and every process it starts
// inherits it, so all of them agree on the time.
const pinned = process.env.BILLING_METER_PINNED_NOW;
if (pinned !== undefined && pinned !== '' && pinned !== 'now') {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  const target = RealDate.parse(pinned);
  if (Number.isNaN(target)) throw new Error(`BILLING_METER_PINNED_NOW is not a date: ${pinned}`);
  const anchor = Number(process.env.BILLING_METER_PINNED_AT ?? realNow());
  process.env.BILLING_METER_PINNED_AT = String(anchor);
  const offset = target - anchor;
  const now = () => realNow() + offset;
  // A Proxy rather than a subclass: `x instanceof Date` stays true for dates made anywhere.
  RealDate.now = now;
  globalThis.Date = new Proxy(RealDate, {
    construct: (Target, args, newTarget) =>
      Reflect.construct(Target, args.length === 0 ? [now()] : args, newTarget),
    apply: () => new RealDate(now()).toString(),
  });
}
