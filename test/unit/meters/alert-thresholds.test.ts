import { describe, expect, it } from 'vitest';
import { parseMeterText } from '../../../src/meters/load-meters.ts';
import { alertThresholds } from '../../../src/meters/alert-thresholds.ts';
import { meterVersion } from '../../../src/meters/meter-version.ts';

const base = `name: calls
description: d
aggregation:
  type: count
unit: calls
quota: 1000
pricing:
  currency: usd
  tiers_mode: graduated
  tiers:
    - up_to: 100
      unit_amount_decimal: '500'
    - up_to: 1000
      unit_amount_decimal: '300'
    - up_to: inf
      unit_amount_decimal: '200'
`;

function parse(text: string) {
  const result = parseMeterText(text, 'calls.yaml');
  return result;
}

describe('alert thresholds in the meter YAML', () => {
  it('resolves quota shares, tier boundaries and absolute quantities, lowest first', () => {
    const result = parse(
      base +
        `alerts:
  - {at: 80%, of: quota}
  - {at: next_tier}
  - {at: 90%, of: next_tier}
  - {at: 1500 calls}
  - {at: 7}
`,
    );
    if (!('meter' in result)) throw new Error(JSON.stringify(result.errors));
    expect(alertThresholds(result.meter.definition).map((t) => [t.id, t.value])).toEqual([
      ['usage:7', 7n],
      ['next_tier:100:90%', 90n],
      ['next_tier:100', 101n],
      ['quota:80%', 800n],
      ['next_tier:1000:90%', 900n],
      ['next_tier:1000', 1001n],
      ['usage:1500', 1500n],
    ]);
  });

  it('rounds a share up: 80% of a quota of 7 is reached at 6', () => {
    const result = parse(base.replace('quota: 1000', 'quota: 7') + 'alerts: [{at: 80%, of: quota}]\n');
    if (!('meter' in result)) throw new Error(JSON.stringify(result.errors));
    expect(alertThresholds(result.meter.definition)[0]!.value).toBe(6n);
  });

  it('does not change the meter version: alerts do not change what is counted', () => {
    const without = parse(base);
    const withAlerts = parse(base + 'alerts: [{at: next_tier}]\n');
    if (!('meter' in without) || !('meter' in withAlerts)) throw new Error('invalid');
    expect(meterVersion(withAlerts.meter.definition)).toBe(meterVersion(without.meter.definition));
  });

  it.each([
    ['alerts: [{at: 80%}]\n', 17, 15, "'80%' of what? add of: quota or of: next_tier"],
    ['alerts: [{at: 1000 bytes}]\n', 17, 15, "'1000 bytes' is in bytes, but this meter counts calls"],
    ['alerts: [{at: soon}]\n', 17, 15, "at 'soon' must be a quantity"],
    ['alerts: [{at: 0}]\n', 17, 15, 'at must be a positive integer quantity'],
    ['alerts: [{at: 2000%, of: quota}]\n', 17, 15, 'a percentage must be from 1% to 1000%'],
    ['alerts: [{at: 5, of: quota}]\n', 17, 22, 'of goes with a percentage only'],
    ['alerts: [{at: next_tier}, {at: next_tier}]\n', 17, 32, 'the same threshold'],
    ['alerts: [{at: 80%, of: quota, to: me}]\n', 17, 31, "unknown key(s) 'to'; allowed: at, of"],
  ])('refuses %s at its line and column', (alerts, line, col, reason) => {
    const result = parse(base + alerts);
    expect('errors' in result).toBe(true);
    const [error] = 'errors' in result ? result.errors : [];
    expect(error).toMatchObject({ file: 'calls.yaml', line, col });
    expect(error!.reason).toContain(reason);
  });

  it('refuses of: quota on a meter without a quota, and next_tier without tiers', () => {
    const noQuota = parse(base.replace('quota: 1000\n', '') + 'alerts: [{at: 80%, of: quota}]\n');
    expect('errors' in noQuota && noQuota.errors[0]!.message).toBe(
      'calls.yaml:16:24: alerts[0].of: this meter has no quota: add quota: <n> to the meter',
    );
    const noTiers = parse(base.slice(0, base.indexOf('pricing:')) + 'alerts: [{at: next_tier}]\n');
    expect('errors' in noTiers && noTiers.errors[0]!.reason).toContain('next_tier needs pricing with tiers');
  });
});
