import { describe, expect, it } from 'vitest';
import {
  EvaluationService,
  MeterRangeNotCoveredError,
  uncoveredRanges,
  type HourlyValue,
  type UsageSource,
} from '../../../src/meters/evaluation.ts';
import { InMemoryUsageStore } from '../../../src/meters/in-memory-usage-store.ts';
import { meterSchema, type MeterDefinition } from '../../../src/meters/meter-schema.ts';
import { HOUR_MS } from '../../../src/time/hours.ts';

const T0 = Date.parse('2026-11-10T00:00:00Z');
const at = (h: number, ms = 0) => new Date(T0 + h * HOUR_MS + ms);
const meter = (status: number | string): MeterDefinition =>
  meterSchema.parse({
    name: 'calls',
    description: '',
    unit: 'calls',
    filter: { status },
    aggregation: { type: 'count' },
  });

/** A source that counts one call per listed hour and remembers which ranges it was asked for. */
class FakeSource implements UsageSource {
  calls: number[] = [];
  asked: [number, number][] = [];
  async hourly(_m: MeterDefinition, from: Date, to: Date): Promise<HourlyValue[]> {
    this.asked.push([(from.getTime() - T0) / HOUR_MS, (to.getTime() - T0) / HOUR_MS]);
    return this.calls
      .filter((h) => at(h) >= from && at(h) < to)
      .map((h) => ({ customer: 'c', hour: at(h), value: 1n }));
  }
  async period(): Promise<Map<string, bigint>> {
    return new Map();
  }
  async hourlyCombined(meters: readonly MeterDefinition[], from: Date, to: Date): Promise<HourlyValue[][]> {
    return Promise.all(meters.map((m) => this.hourly(m, from, to)));
  }
  async firstSeen(): Promise<HourlyValue[]> {
    return [];
  }
  async lateEvents(): Promise<number> {
    return 0;
  }
}

describe('evaluation (in-memory store)', () => {
  it('evaluates from the watermark, then only the lateness window, never hours older than that', async () => {
    const source = new FakeSource();
    const store = new InMemoryUsageStore();
    let now = at(10, 60_000);
    const service = new EvaluationService(source, store, { latenessHours: 3, now: () => now });
    const m = meterSchema.parse({ ...meter(200), effective_from: '2026-11-10T00:00:00Z' });
    await service.run([m]);
    now = at(12, 60_000);
    await service.run([m]);
    expect(source.asked).toEqual([
      [0, 10], // first run: from the version's start
      [9, 12], // then: the 3-hour lateness window up to the closed hour
    ]);
  });

  it('gives each version its own hours, also when a definition is reverted', async () => {
    const source = new FakeSource();
    source.calls = [1, 3, 5, 7];
    const store = new InMemoryUsageStore();
    let now = at(0, 30 * 60_000);
    const service = new EvaluationService(source, store, { latenessHours: 1, now: () => now });
    const a = meterSchema.parse({ ...meter(200), effective_from: '2026-11-10T00:00:00Z' });
    const b = meter('2xx');
    await service.registerVersions([a]);
    now = at(2, 30 * 60_000);
    await service.registerVersions([b]); // B from 03:00
    now = at(4, 30 * 60_000);
    await service.registerVersions([{ ...a, effective_from: undefined }]); // back to A from 05:00
    now = at(8, 60_000);
    await service.run([{ ...a, effective_from: undefined }]);
    const byVersion = new Map<string, number[]>();
    for (const r of store.usage.values())
      byVersion.set(
        r.version,
        [...(byVersion.get(r.version) ?? []), (r.hour.getTime() - T0) / HOUR_MS].sort(),
      );
    const [versionA, versionB] = [store.versionRecords[0]!.version, store.versionRecords[1]!.version];
    expect(byVersion.get(versionA)).toEqual([1, 5, 7]);
    expect(byVersion.get(versionB)).toEqual([3]);
  });

  it('never moves a watermark back', async () => {
    const source = new FakeSource();
    const store = new InMemoryUsageStore();
    let now = at(10, 60_000);
    const service = new EvaluationService(source, store, { latenessHours: 2, now: () => now });
    const m = meterSchema.parse({ ...meter(200), effective_from: '2026-11-10T00:00:00Z' });
    await service.run([m]);
    now = at(5, 60_000); // a clock that went backwards
    await service.run([m]);
    expect([...store.watermarks.values()]).toEqual([at(10)]);
  });

  it('lets a re-evaluation win even when the clock has not moved on', async () => {
    const source = new FakeSource();
    const store = new InMemoryUsageStore();
    const now = at(3, 60_000);
    const service = new EvaluationService(source, store, { latenessHours: 2, now: () => now });
    const m = meterSchema.parse({ ...meter(200), effective_from: '2026-11-10T00:00:00Z' });
    await service.run([m]);
    for (let i = 0; i < 20; i++) {
      source.calls = i % 2 === 0 ? [2] : [];
      await service.run([m]);
      expect([...store.usage.values()].map((r) => r.value)).toEqual([i % 2 === 0 ? 1n : 0n]);
    }
  });

  it('refuses (422) a range that no version of a meter covers, naming it, its start and the backfill', async () => {
    const source = new FakeSource();
    const store = new InMemoryUsageStore();
    const service = new EvaluationService(source, store, { latenessHours: 2, now: () => at(48) });
    const m = meterSchema.parse({ ...meter(200), effective_from: '2026-11-10T00:00:00Z' });
    const error = await service.evaluateBetween([m], at(-48), at(-24)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MeterRangeNotCoveredError);
    const e = error as MeterRangeNotCoveredError;
    expect(e.code).toBe('range_not_covered');
    expect(e.message).toContain('calls starts at 2026-11-10T00:00:00.000Z');
    expect(e.message).toContain("set effective_from: '2026-11-08T00:00:00.000Z'");
    expect(e.details).toMatchObject({
      meters: [{ meter: 'calls', first_effective_from: '2026-11-10T00:00:00.000Z' }],
      backfill: { effective_from: '2026-11-08T00:00:00.000Z' },
    });
    expect(source.asked).toEqual([]);
    // Partly covered: the covered hours are evaluated, and the others can be named by uncoveredRanges.
    expect(await service.evaluateBetween([m], at(-2), at(3))).toMatchObject([{ from: at(0), to: at(3) }]);
    expect(uncoveredRanges(await store.versions(), ['calls'], at(-2), at(3))).toEqual([
      { meter: 'calls', from: at(-2), to: at(0), firstEffectiveFrom: at(0) },
    ]);
  });

  it('backfills: an earlier effective_from on the same rules extends the first version back', async () => {
    const source = new FakeSource();
    source.calls = [-30, -5, 2];
    const store = new InMemoryUsageStore();
    let now = at(4, 60_000);
    const service = new EvaluationService(source, store, { latenessHours: 2, now: () => now });
    const m = meterSchema.parse({ ...meter(200), effective_from: '2026-11-10T00:00:00Z' });
    await service.run([m]);
    const backfilled = { ...m, effective_from: '2026-11-08T00:00:00Z' };
    now = at(5, 60_000);
    const ranges = await service.evaluateBetween([backfilled], at(-48), at(5));
    // One version, from two records: the backfilled hours, then the hours it had.
    expect(new Set(ranges.map((r) => r.version)).size).toBe(1);
    expect(ranges.map((r) => [r.from, r.to])).toEqual([
      [at(-48), at(0)],
      [at(0), at(5)],
    ]);
    expect(
      [...store.usage.values()].map((r) => (r.hour.getTime() - T0) / HOUR_MS).sort((a, b) => a - b),
    ).toEqual([-30, -5, 2]);
    // Loading it again records nothing more; a later effective_from never moves the start forward.
    await service.registerVersions([backfilled]);
    await service.registerVersions([{ ...m, effective_from: '2026-11-12T00:00:00Z' }]);
    expect(store.versionRecords.map((v) => v.effectiveFrom)).toEqual([at(0), at(-48)]);
  });

  it('writes one watermark per version, the end of its latest interval, when a version has two', async () => {
    const source = new FakeSource();
    const store = new InMemoryUsageStore();
    const writes: Date[] = [];
    const setWatermark = store.setWatermark.bind(store);
    store.setWatermark = async (meter, version, through) => {
      writes.push(through);
      return setWatermark(meter, version, through);
    };
    const service = new EvaluationService(source, store, { latenessHours: 2, now: () => at(6, 60_000) });
    const m = meterSchema.parse({ ...meter(200), effective_from: '2026-11-10T00:00:00Z' });
    await service.registerVersions([m]);
    await service.registerVersions([{ ...m, effective_from: '2026-11-09T20:00:00Z' }]);
    await service.run([m]);
    expect(source.asked).toEqual([
      [-4, 0],
      [0, 6],
    ]);
    expect(writes).toEqual([at(6)]);
  });
});
