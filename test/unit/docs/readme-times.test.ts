// The README's shell examples must work on the day they are read: a fixed date in a request body stops
// working 35 days later (the collector refuses older request times), and a fixed range goes stale. So
// they say `$(date -u …)`; this checks that none has a literal date left, and that every `curl … -d`
// body, expanded by bash as a reader's shell would, is JSON whose times are now.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
/** The commands of the shell blocks, continuation lines joined. */
const commands = blocks.flatMap((block) => block.replace(/\\\n/g, ' ').split('\n')).filter((c) => c.trim());
// A literal calendar date; Stripe's API version (`2026-10-28.endive`) is a name, not a time.
const LITERAL_DATE = /\b\d{4}-\d{2}-\d{2}(?!\.[a-z])/;

describe("the README's shell examples", () => {
  it('have shell blocks to check', () => {
    expect(blocks.length).toBeGreaterThan(5);
    expect(commands.some((c) => c.includes('$(date -u'))).toBe(true);
  });

  it('name no fixed date', () => {
    expect(commands.filter((c) => LITERAL_DATE.test(c))).toEqual([]);
  });

  it('send bodies that are JSON with times of now, once the shell has expanded them', async () => {
    // Blocks of curl commands only (every line a curl or the continuation of one): nothing else may run.
    const posts = blocks.filter(
      (block) => block.includes(" -d '") && block.split('\n').every((line) => /^(curl |\s|$)/.test(line)),
    );
    expect(posts.length).toBeGreaterThanOrEqual(2);
    // A curl that prints its -d arguments, each ended by a NUL: what the real one would send.
    const script = [
      `curl() { while [ $# -gt 0 ]; do [ "$1" = -d ] && printf '%s\\0' "$2"; shift; done; }`,
      ...posts,
    ].join('\n');
    const before = Math.floor(Date.now() / 1000) * 1000;
    const { stdout } = await promisify(execFile)('bash', ['--norc', '--noprofile', '-c', script], {
      env: { PATH: process.env.PATH, KEY: 'key', ADMIN: 'admin' },
    });
    let timed = 0;
    for (const body of stdout.split('\0').slice(0, -1)) {
      const parsed = JSON.parse(body) as unknown;
      const events = (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, unknown>[];
      for (const event of events) {
        if (event.timestamp === undefined && event.time === undefined) continue; // not a log
        const time = Date.parse(String(event.timestamp ?? event.time));
        expect(time, body).toBeGreaterThanOrEqual(before);
        expect(time, body).toBeLessThanOrEqual(Date.now());
        timed++;
      }
    }
    expect(timed).toBeGreaterThanOrEqual(2); // the native and the CloudEvents examples
  });
});
