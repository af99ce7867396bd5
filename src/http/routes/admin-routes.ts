import Router from '@koa/router';
import { z } from 'zod';
import { DomainError } from '../../errors.ts';
import type { IngestKeyRecord } from '../../keys/ingest-keys.ts';
import type { IngestKeysPort } from '../ports.ts';
import { requireAdminKey } from '../auth.ts';
import { parseJson } from '../../collector/parse-body.ts';
import { readBody } from '../body.ts';
import type { createdKeySchema, ingestFormatsSchema, keyListSchema } from '../openapi/schemas.ts';
import { parseOr400 } from '../query-fields.ts';

export interface AdminRouteDeps {
  keys: IngestKeysPort;
  adminApiKey: string | undefined;
  /** Ships the spool into ClickHouse now. */
  flush(): Promise<void>;
  recentLogs(q: { limit: number; app?: string; customer?: string }): Promise<object[]>;
  /** Events accepted and rejected per source format since the process started (its metrics). */
  ingestFormats(): Promise<{
    since: Date;
    formats: { format: string; accepted: number; rejected: number; unattributed: number }[];
  }>;
}

export const recentLogsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).default(20),
    app: z.string().max(64).optional(),
    customer: z.string().max(256).optional(),
  })
  .strict();

export const createKeyBody = z.object({ name: z.string().trim().min(1).max(200) }).strict();

export function keyView(r: IngestKeyRecord) {
  return {
    key_id: r.keyId,
    name: r.name,
    created_at: r.createdAt.toISOString(),
    revoked_at: r.revokedAt?.toISOString() ?? null,
  };
}

/** Admin API, behind ADMIN_API_KEY. */
export function adminRoutes(deps: AdminRouteDeps): Router {
  const router = new Router({ prefix: '/v1/admin' });
  router.use(requireAdminKey(deps.adminApiKey));

  router.post('/keys', async (ctx) => {
    const body = parseOr400(
      createKeyBody,
      parseJson(await readBody(ctx.req, 64 * 1024)),
      'send {"name": "<what the key is for>"}',
    );
    const { record, key } = await deps.keys.create(body.name);
    ctx.status = 201;
    // The only time the key is ever shown: it is stored as a hash.
    ctx.body = { ...keyView(record), key } satisfies z.input<typeof createdKeySchema>;
  });

  router.get('/keys', async (ctx) => {
    await deps.keys.refresh();
    ctx.body = { keys: deps.keys.list().map(keyView) } satisfies z.input<typeof keyListSchema>;
  });

  router.delete('/keys/:id', async (ctx) => {
    if (!(await deps.keys.revoke(ctx.params.id ?? '')))
      throw new DomainError('not_found', `no key ${ctx.params.id}`);
    ctx.status = 204;
  });

  // What arrived most recently: the quick way to see that logs are going in.
  router.get('/logs', async (ctx) => {
    const q = parseOr400(recentLogsQuery, ctx.query, 'query: limit (1-1000), app, customer');
    ctx.body = { logs: await deps.recentLogs(q) };
  });

  // The collector's counters (what /metrics exports), as JSON for the dashboard's overview.
  router.get('/ingest/formats', async (ctx) => {
    parseOr400(z.object({}).strict(), ctx.query, 'this endpoint takes no query');
    const { since, formats } = await deps.ingestFormats();
    ctx.body = { since: since.toISOString(), formats } satisfies z.input<typeof ingestFormatsSchema>;
  });

  router.post('/flush', async (ctx) => {
    await deps.flush();
    ctx.status = 204;
  });

  return router;
}
