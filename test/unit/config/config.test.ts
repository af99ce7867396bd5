import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config.ts';

describe('config', () => {
  it('has working defaults: embedded ClickHouse under ./data, port 8080, 50 MB bodies, 1 MB events', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.clickhouse).toMatchObject({ kind: 'embedded', database: 'billing_meter' });
    expect(c.clickhouse.kind === 'embedded' && c.clickhouse.path.endsWith('/data/clickhouse')).toBe(true);
    expect(c.spoolDir.endsWith('/data/spool')).toBe(true);
    expect(c.limits.maxBodyBytes).toBe(50 * 1024 * 1024);
    expect(c.limits.maxEventBytes).toBe(1024 * 1024);
    expect(c.limits.maxPastMs).toBe(35 * 86_400_000);
    expect(c.limits.maxFutureMs).toBe(300_000);
    expect(c.adminApiKey).toBeUndefined();
  });

  it('puts the tables on a cluster with CLICKHOUSE_CLUSTER, which needs a server', () => {
    expect(
      loadConfig({ CLICKHOUSE_URL: 'http://ch:8123', CLICKHOUSE_CLUSTER: 'billing' }).clickhouse,
    ).toMatchObject({ kind: 'server', cluster: 'billing' });
    expect(() => loadConfig({ CLICKHOUSE_CLUSTER: 'billing' })).toThrow(
      /CLICKHOUSE_CLUSTER: needs CLICKHOUSE_URL/,
    );
    expect(() => loadConfig({ CLICKHOUSE_URL: 'http://ch:8123', CLICKHOUSE_CLUSTER: 'a-b' })).toThrow(
      /CLICKHOUSE_CLUSTER: must be a plain identifier/,
    );
  });

  it('takes the lease in ZooKeeper with COORDINATION_URL, else keeps the file lock', () => {
    expect(loadConfig({}).coordination).toBeUndefined();
    expect(loadConfig({ COORDINATION_URL: 'zk://zk1:2181,zk2:2181/billing-meter' }).coordination).toEqual({
      hosts: 'zk1:2181,zk2:2181',
      root: '/billing-meter',
      sessionTimeoutMs: 10_000,
    });
    expect(loadConfig({ COORDINATION_URL: 'zk://127.0.0.1:2181' }).coordination?.root).toBe('/billing-meter');
    expect(() => loadConfig({ COORDINATION_URL: 'http://zk:2181' })).toThrow(/COORDINATION_URL: must be zk:/);
  });

  it('uses a ClickHouse server when CLICKHOUSE_URL is set', () => {
    const c = loadConfig({
      CLICKHOUSE_URL: 'http://ch:8123',
      CLICKHOUSE_USER: 'u',
      CLICKHOUSE_PASSWORD: 'p',
      CLICKHOUSE_DATABASE: 'bm',
    });
    expect(c.clickhouse).toEqual({
      kind: 'server',
      url: 'http://ch:8123',
      username: 'u',
      password: 'p',
      database: 'bm',
    });
  });

  it('names every bad variable in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        CLICKHOUSE_URL: 'ftp://x',
        CLICKHOUSE_DATABASE: 'db; DROP TABLE x',
        MAX_BODY_BYTES: 'lots',
        ADMIN_API_KEY: 'short',
        TRUST_PROXY: 'maybe',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of [
      'PORT',
      'CLICKHOUSE_URL',
      'CLICKHOUSE_DATABASE',
      'MAX_BODY_BYTES',
      'ADMIN_API_KEY',
      'TRUST_PROXY',
    ]) {
      expect(problems).toContain(name);
    }
  });

  it('parses booleans explicitly ("false" is false) and sizes with units', () => {
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ MAX_EVENT_BYTES: '512kb' }).limits.maxEventBytes).toBe(512 * 1024);
    expect(loadConfig({ MAX_BODY_BYTES: '1048576' }).limits.maxBodyBytes).toBe(1048576);
  });

  it('takes REQUIRE_CUSTOMER as an explicit boolean, off by default', () => {
    expect(loadConfig({}).requireCustomer).toBe(false);
    expect(loadConfig({ REQUIRE_CUSTOMER: 'false' }).requireCustomer).toBe(false);
    expect(loadConfig({ REQUIRE_CUSTOMER: '0' }).requireCustomer).toBe(false);
    expect(loadConfig({ REQUIRE_CUSTOMER: 'true' }).requireCustomer).toBe(true);
    expect(() => loadConfig({ REQUIRE_CUSTOMER: 'on' })).toThrow(/REQUIRE_CUSTOMER: must be true or false/);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', CLICKHOUSE_URL: '' }).clickhouse.kind).toBe('embedded');
  });

  it('takes a header allow-list but refuses credential headers in it', () => {
    expect([...loadConfig({ HEADER_ALLOW_LIST: 'X-Plan, content-type' }).headerAllowList]).toEqual([
      'x-plan',
      'content-type',
    ]);
    for (const h of ['authorization', 'cookie', 'x-api-key', 'set-cookie', 'x-auth-token', 'apikey']) {
      expect(() => loadConfig({ HEADER_ALLOW_LIST: `content-type,${h}` })).toThrow(
        /HEADER_ALLOW_LIST.*never stored/s,
      );
    }
  });

  it('alerts: a webhook needs its secret, email needs to and from; none configured is no channel', () => {
    expect(loadConfig({}).alerts).toMatchObject({ webhook: undefined, email: undefined, maxAttempts: 10 });
    expect(() => loadConfig({ ALERT_WEBHOOK_URL: 'https://hooks.example.com/a' })).toThrow(
      /ALERT_WEBHOOK_SECRET: is required with ALERT_WEBHOOK_URL/,
    );
    expect(() => loadConfig({ SMTP_URL: 'smtp://mail.example.com:25' })).toThrow(/ALERT_EMAIL_TO/);
    expect(() => loadConfig({ SMTP_URL: 'http://mail.example.com' })).toThrow(/SMTP_URL: must be an smtp/);
    const c = loadConfig({
      ALERT_WEBHOOK_URL: 'https://hooks.example.com/a',
      ALERT_WEBHOOK_SECRET: 'x'.repeat(32),
      SMTP_URL: 'smtps://u:p@mail.example.com:465',
      ALERT_EMAIL_TO: 'ops@example.com',
      ALERT_EMAIL_FROM: 'meter@example.com',
    });
    expect(c.alerts.webhook).toEqual({
      url: 'https://hooks.example.com/a',
      secret: 'x'.repeat(32),
      timeoutMs: 10_000,
    });
    expect(c.alerts.email).toEqual({
      smtpUrl: 'smtps://u:p@mail.example.com:465',
      to: 'ops@example.com',
      from: 'meter@example.com',
    });
  });
});
