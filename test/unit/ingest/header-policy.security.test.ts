// The one header-secrecy policy (ingest/header-policy.ts), and the two places that apply it: the forwarder
// refuses to send a credential header, the collector refuses to store one (and to boot with one allow-listed).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createForwarder } from '../../../ingest/forwarder.ts';
import { isSensitiveHeader, NEVER_STORED_HEADERS, SENSITIVE_HEADER_PATTERN } from '../../../ingest/index.ts';
import { headers } from '../../../src/collector/formats/headers.ts';
import { ConfigError, loadConfig } from '../../../src/config.ts';

const SENSITIVE = [
  'authorization',
  'Authorization',
  ' Authorization ',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'apikey',
  'api-key',
  'api_key',
  'x-moesif-application-id',
  'X-Moesif-Application-Id',
  'x-auth-token',
  'x-csrf-token',
  'x-amz-security-token',
  'x-session-id',
  'x-client-secret',
  'x-password',
  'passwd',
  'x-goog-api-key',
  'auth',
  // Before this policy was shared, only the forwarder refused these: the collector stored them.
  'stripe-signature',
  'x-hub-signature',
  'x-hub-signature-256',
  'x-signature',
  'signature',
];

const HARMLESS = [
  'content-type',
  'user-agent',
  'accept',
  'x-request-id',
  'x-api-version',
  'host',
  'via',
  // A credential word inside a longer word is not one: the forwarder used to refuse these.
  'x-author',
  'x-tokenizer',
  'x-signatures-enabled',
  'www-authenticate',
];

const CREDENTIAL_WORDS = [
  'auth',
  'authorization',
  'cookie',
  'token',
  'secret',
  'password',
  'passwd',
  'api-key',
  'api_key',
  'apikey',
  'session',
  'signature',
];

describe('the header-secrecy policy', () => {
  it.each(SENSITIVE)('%j is a credential header', (name) => {
    expect(isSensitiveHeader(name)).toBe(true);
  });

  it.each(HARMLESS)('%j is not', (name) => {
    expect(isSensitiveHeader(name)).toBe(false);
  });

  it('has a hard deny list for names the pattern cannot know', () => {
    expect([...NEVER_STORED_HEADERS].every(isSensitiveHeader)).toBe(true);
    expect(SENSITIVE_HEADER_PATTERN.test('x-moesif-application-id')).toBe(false);
  });

  it('refuses any name with a credential word as one of its dash or underscore parts, in any case', () => {
    const part = fc.stringMatching(/^[a-z0-9]{1,12}$/);
    fc.assert(
      fc.property(
        fc.array(part, { maxLength: 3 }),
        fc.constantFrom(...CREDENTIAL_WORDS),
        fc.array(part, { maxLength: 3 }),
        fc.constantFrom('-', '_'),
        fc.boolean(),
        (before, word, after, separator, upper) => {
          const name = [...before, word, ...after].join(separator);
          expect(isSensitiveHeader(upper ? name.toUpperCase() : name)).toBe(true);
        },
      ),
    );
  });

  it('lets through names none of whose parts is a credential word', () => {
    const words = new Set(CREDENTIAL_WORDS.flatMap((w) => w.split(/[-_]/)));
    const part = fc.stringMatching(/^[a-z0-9]{1,12}$/).filter((p) => !words.has(p));
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), (parts) => {
        const name = parts.join('-');
        fc.pre(!NEVER_STORED_HEADERS.has(name));
        expect(isSensitiveHeader(name)).toBe(false);
      }),
    );
  });
});

describe('the forwarder and the collector apply it alike', () => {
  const forwarderOptions = (headerAllowList: string[]) => ({
    baseUrl: 'http://127.0.0.1:9',
    apiKey: 'k'.repeat(50),
    headerAllowList,
  });

  it.each(['stripe-signature', 'x-moesif-application-id', 'X-Session-Id'])(
    'the forwarder refuses to be created with %s allow-listed',
    (name) => {
      expect(() => createForwarder(forwarderOptions(['user-agent', name]))).toThrow(
        new RegExp(`never forwarded: ${name.toLowerCase()}`),
      );
    },
  );

  it.each(['x-author', 'x-tokenizer'])('the forwarder forwards %s when allow-listed', async (name) => {
    const forwarder = createForwarder(forwarderOptions([name]));
    await forwarder.close();
  });

  it.each(['stripe-signature', 'x-moesif-application-id', 'X-Session-Id'])(
    'the collector refuses to boot with %s in HEADER_ALLOW_LIST',
    (name) => {
      const load = () => loadConfig({ HEADER_ALLOW_LIST: `user-agent,${name}` });
      expect(load).toThrow(ConfigError);
      expect(load).toThrow(
        `HEADER_ALLOW_LIST: credential headers are never stored and may not be allow-listed: ${name.toLowerCase()}`,
      );
    },
  );

  it('the collector drops every credential header of an event, even allow-listed, and keeps the others', () => {
    const names = [...SENSITIVE.map((n) => n.trim()), ...HARMLESS];
    const allow = new Set(names.map((n) => n.toLowerCase()));
    const event = Object.fromEntries(names.map((name) => [name, `value of ${name}`]));
    const [keys, values] = headers(event, 'header.', allow);
    const kept = [...new Set(HARMLESS)];
    expect(keys).toEqual(kept.map((name) => `header.${name}`));
    expect(values).toEqual(kept.map((name) => `value of ${name}`));
  });
});
