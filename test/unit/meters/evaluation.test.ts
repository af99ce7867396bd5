import { describe, expect, it } from 'vitest';
import {
  EvaluationService,
  HOUR_MS,
  type HourlyValue,
  type UsageSource,
} from '../../../src/meters/evaluation.ts';
import { InMemoryUsageStore } from '../../../src/meters/in-memory-usage-store.ts';
import { meterSchema, type MeterDefinition } from '../../../src/meters/meter-schema.ts';

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
  async hourlyAdditive(meters: readonly MeterDefinition[], from: Date, to: Date): Promise<HourlyValue[][]> {
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
});
