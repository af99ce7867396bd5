import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadRules, parseRuleText } from '../../../src/governance/load-rules.ts';
import type { MeterDefinition } from '../../../src/meters/meter-schema.ts';

const meters = [
  { name: 'credit-score-calls', quota: 1000 },
  { name: 'response-bytes' },
] as unknown as MeterDefinition[];

const errorsOf = (text: string) => {
  const r = parseRuleText(text, 'governance/x.yaml', meters);
  return 'errors' in r ? r.errors.map((e) => e.message) : [];
};

describe('governance rule files: every problem as file:line:col', () => {
  it('a YAML syntax error', () => {
    expect(errorsOf('name: a\napplies_to: [\n')[0]).toMatch(/^governance\/x\.yaml:\d+:\d+: YAML: /);
  });

  it('an empty file', () => {
    expect(errorsOf('')).toEqual([
      'governance/x.yaml:1:1: the file is empty: a rule is a map with name, applies_to and response',
    ]);
  });

  it('an unknown key, at the key, naming the allowed ones', () => {
    expect(errorsOf('name: a\napplies_to: {status: unpaid}\nrespnse: {}\n')).toEqual([
      "governance/x.yaml:3:1: unknown key(s) 'respnse'; allowed: name, description, applies_to, when, response",
    ]);
  });

  it('an applies_to that is none of the forms', () => {
    expect(errorsOf('name: a\napplies_to:\n  status: late\n')).toEqual([
      'governance/x.yaml:3:3: applies_to: applies_to must be {status: unpaid}, {status: over_quota, meter?: <name>}, {status: unmapped} or {customers: [...]}',
    ]);
  });

  it('an over_quota rule naming a meter without a quota, or no meter', () => {
    expect(errorsOf('name: a\napplies_to:\n  status: over_quota\n  meter: response-bytes\n')).toEqual([
      "governance/x.yaml:4:10: applies_to.meter: meter 'response-bytes' has no quota; meters with a quota: credit-score-calls",
    ]);
    expect(errorsOf('name: a\napplies_to: {status: over_quota, meter: nope}\n')[0]).toMatch(
      /^governance\/x\.yaml:2:\d+: applies_to\.meter: no meter 'nope'/,
    );
  });

  it('request conditions: the meters vocabulary, but only what a request carries', () => {
    expect(
      errorsOf(
        [
          'name: a',
          'applies_to: {status: unpaid}',
          'when:',
          '  routes: [v1/x]',
          '  status: 2xx',
          '  where:',
          '    - {field: company_id, op: eq, value: x}',
          '    - {field: header.x-plan, op: ne, value: x}',
          'response: {status: 200}',
        ].join('\n'),
      ),
    ).toEqual([
      "governance/x.yaml:4:12: when.routes[0]: route 'v1/x' must start with '/'",
      "governance/x.yaml:5:11: when.status: a rule decides before the response exists: 'status' is not a request condition",
      "governance/x.yaml:7:15: when.where[0].field: a rule's where takes request headers (header.<name>), not 'company_id'",
      "governance/x.yaml:8:34: when.where[1].op: a rule's where takes the ops eq, in, prefix, matches, not 'ne'",
      'governance/x.yaml:9:20: response.status: a blocking status is 4xx or 5xx',
    ]);
  });
});

describe('a directory of rules', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bm-rules-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a name used twice is refused at the later file, naming the first', async () => {
    await writeFile(join(dir, 'a.yaml'), 'name: block\napplies_to: {status: unpaid}\n');
    await writeFile(join(dir, 'b.yaml'), 'name: block\napplies_to: {status: unmapped}\n');
    const { rules, errors } = await loadRules(dir, meters);
    expect(rules.map((r) => r.file)).toEqual([join(dir, 'a.yaml')]);
    expect(errors.map((e) => e.message)).toEqual([
      `${join(dir, 'b.yaml')}:1:7: duplicate rule name 'block': also defined in ${join(dir, 'a.yaml')}:1:7`,
    ]);
  });

  it('a missing directory is no rules', async () => {
    expect(await loadRules(join(dir, 'none'), meters)).toEqual({ rules: [], errors: [] });
  });
});
