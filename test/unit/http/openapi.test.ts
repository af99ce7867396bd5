import { readFile } from 'node:fs/promises';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { apiRouters } from '../../../src/http/app.ts';
import { openApiDocument } from '../../../src/http/openapi/document.ts';
import { OPENAPI_FILE, openApiText } from '../../../src/http/openapi/write-document.ts';
import { inMemoryStripeSide, startStripeApp, stubAppDeps } from '../../support/webhook-fixtures.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const;

/** `GET /v1/customers/{id}/status` for every route of every router the app mounts (all optional parts in). */
function routedOperations(): string[] {
  const deps = {
    ...stubAppDeps(inMemoryStripeSide()),
    sync: {
      discrepancies: async () => [],
      held: async () => [],
      run: () => Promise.reject(new Error('unused')),
      runs: () => [],
      customerLedger: async () => [],
      reconcile: undefined,
      pushPlan: undefined,
    },
    governance: {
      access: () => {
        throw new Error('unused');
      },
      moesifRules: () => [],
      moesifConfig: () => ({ body: {}, etag: '' }),
      etag: () => '',
    },
    alerts: { list: async () => [] },
    onboarding: { checkout: () => Promise.reject(new Error('unused')) },
    web: {
      portalSecret: undefined,
      explorer: { histogram: async () => [], page: async () => ({ rows: [] }) },
      usage: stubAppDeps(inMemoryStripeSide()).meters.usage,
      meters: [],
      previewPeriod: async () => new Map(),
    },
  };
  const out = new Set<string>();
  for (const router of apiRouters(deps)) {
    for (const layer of router.stack) {
      // Middleware (router.use) has no methods; HEAD comes with every GET.
      for (const method of layer.methods.filter((m) => m !== 'HEAD'))
        out.add(`${method} ${String(layer.path).replace(/:(\w+)/g, '{$1}')}`);
    }
  }
  return [...out].sort();
}

function documentedOperations(): string[] {
  const out: string[] = [];
  for (const [path, item] of Object.entries(openApiDocument().paths ?? {}))
    for (const method of METHODS) if (item?.[method]) out.push(`${method.toUpperCase()} ${path}`);
  return out.sort();
}

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(
      structuredClone(openApiDocument()) as unknown as Record<string, unknown>,
    );
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('documents every route the routers serve, and nothing they do not', () => {
    const routed = routedOperations();
    const documented = documentedOperations();
    expect(routed.length).toBeGreaterThan(30);
    expect(documented.filter((o) => !routed.includes(o))).toEqual([]);
    expect(routed.filter((o) => !documented.includes(o))).toEqual([]);
  });

  it('documents the query and body of a route with the schemas that validate them', () => {
    const usage = openApiDocument().paths?.['/v1/usage']?.get;
    const from = usage?.parameters?.find((p) => 'name' in p && p.name === 'from');
    expect(from).toMatchObject({ in: 'query', schema: { type: 'string' } });
    expect(JSON.stringify(from)).toContain('or a date (2026-12-01, read as 00:00 UTC)');
    const evaluate = openApiDocument().paths?.['/v1/admin/meters/evaluate']?.post;
    expect(Object.keys(evaluate?.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '422']));
  });

  it('is committed as openapi.json, as `npm run openapi` writes it', async () => {
    expect(await readFile(OPENAPI_FILE, 'utf8')).toBe(openApiText());
  });

  it('is served at GET /openapi.json, with the version of package.json', async () => {
    const app = await startStripeApp(inMemoryStripeSide());
    try {
      const res = await fetch(`${app.url}/openapi.json`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(JSON.parse(openApiText()));
    } finally {
      await app.close();
    }
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(openApiDocument().info.version).toBe(pkg.version);
  });
});
