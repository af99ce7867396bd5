// NDJSON is judged line by line, and a sender resends by the rejected indexes: each must point at the
// line that was rejected, and nothing but the good lines may be stored. A line that is not JSON used to
// be counted twice, so every index after it was one too high (good, good, bad answered index 3).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { prepareBatch, type PrepareInput } from '../../../src/collector/body-to-rows.ts';

const NOW = Date.parse('2026-11-21T12:00:00Z');

type Line =
  | { kind: 'good'; id: string }
  | { kind: 'not-json'; text: string }
  | { kind: 'bad-record' }
  | { kind: 'blank'; text: string };

const record = (id: string, status: number) =>
  JSON.stringify({ id, timestamp: NOW - 1000, company_id: 'acme', method: 'GET', path: '/v1/x', status });

const lineText = (line: Line): string => {
  switch (line.kind) {
    case 'good':
      return record(line.id, 200);
    case 'bad-record':
      return record('bad', 1e30);
    case 'not-json':
    case 'blank':
      return line.text;
  }
};

function prepare(body: string) {
  const input: PrepareInput = {
    format: 'native',
    kind: 'ndjson',
    shape: 'either',
    body: Buffer.from(body),
    app: 'app1',
    receivedAtMs: NOW,
    headerAllowList: [],
    limits: { maxEventBytes: 1_048_576, maxEventsPerRequest: 100_000, maxPastMs: 86_400_000, maxFutureMs: 0 },
  };
  const out = prepareBatch(input);
  if (!out.ok) throw new Error(out.message);
  // event_id is the first TabSeparated column; the generated ids need no escaping.
  const storedIds = Buffer.from(out.rows)
    .toString('utf8')
    .split('\n')
    .filter((row) => row !== '')
    .map((row) => row.slice(0, row.indexOf('\t')));
  return { ...out, storedIds };
}

const notJson = fc.oneof(
  fc.constant('{"id":'),
  fc.constant('not json'),
  fc.constant('{"a":1}}'),
  fc.string({ minLength: 1, maxLength: 12 }).filter((s) => {
    if (s.trim() === '' || s.includes('\n')) return false;
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  }),
);

const line: fc.Arbitrary<Line> = fc.oneof(
  fc.constant<Line>({ kind: 'good', id: '' }),
  notJson.map((text): Line => ({ kind: 'not-json', text })),
  fc.constant<Line>({ kind: 'bad-record' }),
  fc.constantFrom('', '   ', '\t', '\r').map((text): Line => ({ kind: 'blank', text })),
);

describe('NDJSON rejection indexes', () => {
  it('point at the line that was rejected: good, good, bad is index 2; bad, bad, good is 0 and 1', () => {
    const good = (id: string) => record(id, 200);
    expect(prepare([good('a'), good('b'), 'not json'].join('\n')).rejected.map((r) => r.index)).toEqual([2]);
    const out = prepare(['not json', '{"id":', good('c')].join('\n'));
    expect(out.rejected.map((r) => r.index)).toEqual([0, 1]);
    expect(out.storedIds).toEqual(['c']);
  });

  it('for any mix of good, bad and blank lines, every rejected index is a bad line and every stored event a good one', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 40 }), fc.boolean(), (drawn, finalNewline) => {
        // Good lines get ids by position, so a stored row names the line it came from.
        const lines = drawn.map((l, i): Line => (l.kind === 'good' ? { kind: 'good', id: `good-${i}` } : l));
        const body = lines.map(lineText).join('\n') + (finalNewline ? '\n' : '');
        const events = lines.filter((l) => l.kind !== 'blank');
        const out = prepare(body);

        for (const rejection of out.rejected) {
          const event = events[rejection.index];
          expect(event?.kind === 'not-json' || event?.kind === 'bad-record', JSON.stringify(rejection)).toBe(
            true,
          );
          if (event?.kind === 'not-json') expect(rejection.reason).toMatch(/^invalid JSON/);
          if (event?.kind === 'bad-record') expect(rejection.field).toBe('status');
        }
        const badIndexes = events.flatMap((e, i) => (e.kind === 'good' ? [] : [i]));
        expect(out.rejected.map((r) => r.index)).toEqual(badIndexes);
        expect(out.storedIds).toEqual(events.flatMap((e) => (e.kind === 'good' ? [e.id] : [])));
        expect(out.accepted).toBe(out.storedIds.length);
      }),
      { numRuns: 300 },
    );
  });
});
