import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Governance } from '../../../src/governance/governance.ts';
import type { Membership } from '../../../src/governance/membership.ts';
import { definitionsReloader } from '../../../src/lifecycle/definitions-reload.ts';
import type { MeterDefinition } from '../../../src/meters/meter-schema.ts';

const METER = (quota: number) =>
  ['name: calls', 'description: d', 'aggregation: {type: count}', 'unit: calls', `quota: ${quota}`].join(
    '\n',
  );
const RULE = (name: string) => `name: ${name}\napplies_to: {status: over_quota, meter: calls}\n`;

describe('hot reload of meters and rules', () => {
  let dir: string;
  const logged: string[] = [];
  const logger = {
    info: () => undefined,
    warn: () => undefined,
    error: (_o: object, message?: string) => void logged.push(message ?? ''),
  };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bm-reload-'));
    await mkdir(join(dir, 'meters'));
    await mkdir(join(dir, 'governance'));
    logged.length = 0;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const setUp = () => {
    const meters: MeterDefinition[] = [];
    const held = meters; // what the rest of the service holds
    const governance = new Governance({ all: () => new Map(), version: () => '' } as unknown as Membership);
    const reloaded: number[] = [];
    const reloader = definitionsReloader({
      metersDir: join(dir, 'meters'),
      governanceDir: join(dir, 'governance'),
      meters,
      governance,
      onMetersReloaded: async (m) => void reloaded.push(m.length),
      logger,
    });
    return { held, governance, reloader, reloaded };
  };

  it('good files replace the definitions in the array the service holds', async () => {
    const { held, governance, reloader, reloaded } = setUp();
    await writeFile(join(dir, 'meters', 'calls.yaml'), METER(10));
    await writeFile(join(dir, 'governance', 'a.yaml'), RULE('first'));
    expect(await reloader.reload()).toEqual({ meters: 'reloaded', rules: 'reloaded', errors: [] });
    expect(held.map((m) => m.quota)).toEqual([10]);
    expect(governance.rules().map((r) => r.definition.name)).toEqual(['first']);
    expect(reloaded).toEqual([1]);
    expect((await reloader.reload()).meters).toBe('unchanged');
  });

  it('a broken rule file is refused with file:line:col and the old rules keep serving', async () => {
    const { governance, reloader } = setUp();
    await writeFile(join(dir, 'meters', 'calls.yaml'), METER(10));
    await writeFile(join(dir, 'governance', 'a.yaml'), RULE('first'));
    await reloader.reload();
    const etag = governance.etag();
    await writeFile(join(dir, 'governance', 'a.yaml'), RULE('second'));
    await writeFile(join(dir, 'governance', 'b.yaml'), 'name: broken\napplies_to: {status: nope}\n');
    const outcome = await reloader.reload();
    expect(outcome.rules).toBe('refused');
    const bad = join(dir, 'governance', 'b.yaml');
    expect(outcome.errors.map((e) => e.message)).toEqual([
      `${bad}:2:13: applies_to: applies_to must be {status: unpaid}, {status: over_quota, meter?: <name>}, {status: unmapped} or {customers: [...]}`,
    ]);
    expect(logged).toEqual([`refused: ${outcome.errors[0]!.message}`]);
    expect(governance.rules().map((r) => r.definition.name)).toEqual(['first']);
    expect(governance.etag()).toBe(etag);
  });

  it('a broken meter file is refused and the old meters keep serving', async () => {
    const { held, reloader } = setUp();
    await writeFile(join(dir, 'meters', 'calls.yaml'), METER(10));
    await reloader.reload();
    await writeFile(join(dir, 'meters', 'calls.yaml'), METER(20).replace('count', 'countt'));
    const outcome = await reloader.reload();
    expect(outcome.meters).toBe('refused');
    expect(outcome.errors[0]!.message).toMatch(/calls\.yaml:3:21: aggregation\.type: must be one of/);
    expect(held.map((m) => m.quota)).toEqual([10]);
  });

  it('a change of a file reloads without a signal (the watch)', async () => {
    const { governance, reloader } = setUp();
    await writeFile(join(dir, 'meters', 'calls.yaml'), METER(10));
    await reloader.reload();
    reloader.start();
    try {
      await writeFile(join(dir, 'governance', 'a.yaml'), RULE('watched'));
      for (let i = 0; i < 100 && governance.rules().length === 0; i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(governance.rules().map((r) => r.definition.name)).toEqual(['watched']);
    } finally {
      reloader.stop();
    }
  });
});
