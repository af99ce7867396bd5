import Router from '@koa/router';
import type { Context } from 'koa';
import type { IngestOutcome } from '../../collector/ingest-service.ts';
import { parseEntries, type BatchShape, type BodyKind } from '../../collector/parse-body.ts';
import type { SourceFormat } from '../../collector/request-log.ts';
import type { IngestKeysPort, IngestPort, MoesifRecordsPort } from '../ports.ts';
import { requireIngestKey } from '../auth.ts';
import { bodyKind, readBody } from '../body.ts';

export interface IngestRouteDeps {
  ingest: IngestPort;
  keys: IngestKeysPort;
  limits: { maxBodyBytes: number; maxEventBytes: number };
  moesifRecords: MoesifRecordsPort;
  /** The governance rules as Moesif SDKs read them; without it, no rules. */
  moesifGovernance?: MoesifGovernancePort;
}

export interface MoesifGovernancePort {
  moesifRules(): object[];
  moesifConfig(): { body: object; etag: string };
  etag(): string;
}

/** Moesif SDKs re-fetch /v1/config when this changes; without governance it never does. */
export const MOESIF_CONFIG_ETAG = 'billing-meter-config-v1';

/**
 * On every accepted ingest request: how many of its events name no customer (stored, never billed).
 * A header because two of the formats' answers are not ours to extend: OpenMeter's 204 has no body,
 * and Moesif's 201 `{}` is what a dozen Moesif SDKs and plugins expect (we test one of them). Our own
 * answers (native, and Kong's, whose plugin never reads the body) also carry it as `unattributed`.
 */
export const UNATTRIBUTED_HEADER = 'x-billing-meter-unattributed';

/**
 * Every ingest endpoint: the native one, and the Moesif, CloudEvents/OpenMeter and Kong compatible
 * ones, so existing SDKs and gateways work unchanged once pointed here.
 */
export function ingestRoutes(deps: IngestRouteDeps): Router {
  const router = new Router();
  router.use(requireIngestKey(deps.keys));

  const logs =
    (
      format: SourceFormat,
      kinds: readonly BodyKind[],
      shape: BatchShape,
      respond: (ctx: Context, outcome: IngestOutcome) => void,
    ) =>
    async (ctx: Context) => {
      const kind = bodyKind(ctx.get('content-type'), kinds);
      const body = await readBody(ctx.req, deps.limits.maxBodyBytes);
      const outcome = await deps.ingest.ingestBody(format, kind, shape, body, ctx.state.app as string);
      ctx.set(UNATTRIBUTED_HEADER, String(outcome.unattributed));
      respond(ctx, outcome);
    };

  const accepted202 = (ctx: Context, { accepted, unattributed }: IngestOutcome) => {
    ctx.status = 202;
    ctx.body = { accepted, unattributed };
  };
  const moesifAccepted = (ctx: Context) => {
    ctx.status = 201;
    // The SDKs compare it with their config's on every answer, and fetch /v1/config when it differs.
    ctx.set('x-moesif-config-etag', deps.moesifGovernance?.etag() ?? MOESIF_CONFIG_ETAG);
    ctx.body = {};
  };

  // Native: a JSON array (or one object) or NDJSON.
  router.post('/v1/logs', logs('native', ['json', 'ndjson'], 'either', accepted202));

  // Moesif-compatible.
  router.post('/v1/events', logs('moesif', ['json'], 'one', moesifAccepted));
  router.post('/v1/events/batch', logs('moesif', ['json'], 'many', moesifAccepted));
  router.get('/v1/config', (ctx) => {
    const config = deps.moesifGovernance?.moesifConfig() ?? {
      body: { sample_rate: 100 },
      etag: MOESIF_CONFIG_ETAG,
    };
    ctx.set('x-moesif-config-etag', config.etag);
    ctx.body = config.body;
  });
  router.get('/v1/rules', (ctx) => {
    if (deps.moesifGovernance) ctx.set('x-moesif-config-etag', deps.moesifGovernance.etag());
    ctx.body = deps.moesifGovernance?.moesifRules() ?? [];
  });
  for (const kind of ['companies', 'users', 'actions'] as const) {
    for (const batch of [false, true]) {
      router.post(`/v1/${kind}${batch ? '/batch' : ''}`, async (ctx) => {
        const type = bodyKind(ctx.get('content-type'), ['json']);
        const entries = parseEntries(
          type,
          batch ? 'many' : 'one',
          await readBody(ctx.req, deps.limits.maxBodyBytes),
          deps.limits.maxEventBytes,
        );
        await deps.moesifRecords.ingestRecords(kind, entries, ctx.state.app as string);
        moesifAccepted(ctx);
      });
    }
  }

  // CloudEvents / OpenMeter-compatible: answers 204 like OpenMeter.
  router.post(
    '/api/v1/events',
    logs('cloudevents', ['cloudevent', 'cloudevents-batch', 'json'], 'either', (ctx) => {
      ctx.status = 204;
    }),
  );

  // Kong http-log plugin: one object, or an array when Kong's queue batches.
  router.post('/v1/ingest/kong', logs('kong', ['json'], 'either', accepted202));

  return router;
}
