import { z } from 'zod';
import {
  createDocument,
  type ZodOpenApiOperationObject,
  type ZodOpenApiPathsObject,
  type ZodOpenApiResponsesObject,
} from 'zod-openapi';
import { createKeyBody, recentLogsQuery } from '../routes/admin-routes.ts';
import { customerUsageQuery, evaluateBody, usageQuery } from '../routes/meter-routes.ts';
import { customerListQuery, mapBody, mappingListQuery } from '../routes/stripe-routes.ts';
import { alertQuery } from '../routes/alert-routes.ts';
import { checkoutBody } from '../routes/onboarding-routes.ts';
import {
  customerLedgerQuery,
  discrepancyQuery,
  reconcileQuery,
  syncRunsQuery,
} from '../routes/sync-routes.ts';
import { accessQuery } from '../routes/governance-routes.ts';
import {
  explorerQuery,
  histogramQuery,
  loginBody,
  portalLinkBody,
  previewBody,
} from '../routes/web-routes.ts';
import {
  explorerPageSchema,
  histogramSchema,
  portalLinkSchema,
  portalUsageSchema,
  previewSchema,
  sessionSchema,
} from './web-schemas.ts';
import {
  accessDecisionSchema,
  acceptedSchema,
  alertListSchema,
  checkoutSessionSchema,
  anyJson,
  createdKeySchema,
  csvContent,
  customerPageSchema,
  customerStatusSchema,
  customerUsageSchema,
  customerLedgerSchema,
  discrepanciesSchema,
  evaluationAnswerSchema,
  evaluationStatusSchema,
  eventRejectionSchema,
  heldListSchema,
  ingestFormatsSchema,
  keyListSchema,
  mappedSchema,
  mappingPageSchema,
  mappingSchema,
  meterListSchema,
  meterSchemaView,
  nativeRecordSchema,
  problemSchema,
  pushPlanSchema,
  reconcileSchema,
  readinessSchema,
  recentLogsSchema,
  syncReportSchema,
  syncRunsSchema,
  usageAnswerSchema,
  webhookAnswerSchema,
} from './schemas.ts';

/**
 * The OpenAPI 3.1 document of the whole public API, built by zod-openapi from the zod schemas that
 * validate each request (imported from the routes) and the answers' schemas (./schemas.ts). Served at
 * GET /openapi.json and committed as openapi.json (`npm run openapi` writes it; a test checks that it is
 * current, valid, and lists exactly the routes the routers serve).
 */

type Security = 'admin' | 'ingest' | 'portal' | 'none';

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: problemSchema } },
});

const json = (description: string, schema: z.ZodType) => ({
  description,
  content: { 'application/json': { schema } },
});

const COMMON_PROBLEMS: Record<Security, ZodOpenApiResponsesObject> = {
  admin: {
    '401': problem('Missing or wrong admin key.'),
    '403': problem('The admin API is disabled: ADMIN_API_KEY is not set.'),
  },
  ingest: { '401': problem('Missing, unknown or revoked ingest key.') },
  portal: { '401': problem('The portal token is expired, changed or missing.') },
  none: {},
};

const SECURITY: Record<Security, ZodOpenApiOperationObject['security']> = {
  // The dashboard's session cookie is the same admin authority; writes by cookie need X-CSRF-Token.
  admin: [{ adminKey: [] }, { adminSession: [] }],
  portal: [{ portalToken: [] }],
  ingest: [{ ingestKeyBearer: [] }, { ingestKeyHeader: [] }, { moesifApplicationId: [] }],
  none: [],
};

function op(
  tag: string,
  security: Security,
  summary: string,
  o: Omit<ZodOpenApiOperationObject, 'summary' | 'tags' | 'security'>,
): ZodOpenApiOperationObject {
  return {
    summary,
    tags: [tag],
    security: SECURITY[security],
    ...o,
    responses: {
      ...o.responses,
      ...COMMON_PROBLEMS[security],
      '500': problem('Our error: the log has it under the request_id.'),
    },
  };
}

const invalid = problem('A bad query or body field; `errors` names each.');
const pathParam = (name: string, description: string) =>
  z.object({ [name]: z.string().meta({ description }) });

const batchProblems = {
  '400': {
    description: 'Malformed body, or some events rejected (`accepted` of them were stored anyway).',
    content: {
      'application/problem+json': {
        schema: problemSchema.extend({ accepted: z.number().int(), rejected: z.array(eventRejectionSchema) }),
      },
    },
  },
  '413': problem('Over MAX_BODY_BYTES (nothing stored), or an event over MAX_EVENT_BYTES.'),
  '415': problem('A content type or encoding the endpoint does not take.'),
  '503': problem('ClickHouse unreachable and the spool full: retry after Retry-After.'),
};

const ingestBody = (types: string[], schema: z.ZodType) => ({
  content: Object.fromEntries(types.map((t) => [t, { schema }])),
});

const moesif = (summary: string, batch: boolean) =>
  op('ingest', 'ingest', summary, {
    requestBody: ingestBody(['application/json'], batch ? z.array(anyJson) : anyJson),
    responses: { '201': json('Accepted (header x-moesif-config-etag).', z.object({})), ...batchProblems },
  });

export const OPENAPI_PATHS: ZodOpenApiPathsObject = {
  '/openapi.json': {
    get: op('operations', 'none', 'This document', {
      responses: { '200': json('OpenAPI 3.1.', z.record(z.string(), z.unknown())) },
    }),
  },
  '/healthz': {
    get: op('operations', 'none', 'The process is up', {
      responses: { '200': json('Up.', z.object({ status: z.literal('ok') })) },
    }),
  },
  '/readyz': {
    get: op('operations', 'none', 'Events can be made durable (ClickHouse, or the spool with room)', {
      responses: { '200': json('Ready.', readinessSchema), '503': json('Not ready.', readinessSchema) },
    }),
  },
  '/metrics': {
    get: op('operations', 'none', 'Prometheus metrics', {
      responses: {
        '200': { description: 'Prometheus text format.', content: { 'text/plain': { schema: z.string() } } },
      },
    }),
  },

  // Ingest
  '/v1/logs': {
    post: op('ingest', 'ingest', 'Native request logs: a JSON array (or one object), or NDJSON', {
      requestBody: ingestBody(
        ['application/json', 'application/x-ndjson'],
        z.union([nativeRecordSchema, z.array(nativeRecordSchema)]),
      ),
      responses: { '202': json('Every event stored durably.', acceptedSchema), ...batchProblems },
    }),
  },
  '/v1/events': { post: moesif('Moesif: one event', false) },
  '/v1/events/batch': { post: moesif('Moesif: a batch of events', true) },
  '/v1/companies': { post: moesif('Moesif: one company profile', false) },
  '/v1/companies/batch': { post: moesif('Moesif: company profiles', true) },
  '/v1/users': { post: moesif('Moesif: one user profile', false) },
  '/v1/users/batch': { post: moesif('Moesif: user profiles', true) },
  '/v1/actions': { post: moesif('Moesif: one action', false) },
  '/v1/actions/batch': { post: moesif('Moesif: actions', true) },
  '/v1/config': {
    get: op('ingest', 'ingest', 'Moesif SDK configuration, with governance membership', {
      responses: {
        '200': json(
          'Sample everything; company_rules: the rules that apply to each company now, with merge-tag values. The x-moesif-config-etag header changes when they do.',
          z.object({
            sample_rate: z.number().int(),
            company_rules: z
              .record(
                z.string(),
                z.array(z.object({ rules: z.string(), values: z.record(z.string(), z.string()) })),
              )
              .optional(),
            user_rules: z.record(z.string(), z.unknown()).optional(),
          }),
        ),
      },
    }),
  },
  '/v1/rules': {
    get: op('ingest', 'ingest', 'Governance rules, as Moesif SDKs read them', {
      responses: { '200': json('The rules of governance/*.yaml, in priority order.', z.array(z.unknown())) },
    }),
  },
  '/api/v1/events': {
    post: op('ingest', 'ingest', 'CloudEvents / OpenMeter: one event or a batch', {
      requestBody: ingestBody(
        ['application/cloudevents+json', 'application/cloudevents-batch+json', 'application/json'],
        anyJson,
      ),
      responses: { '204': { description: 'Every event stored durably.' }, ...batchProblems },
    }),
  },
  '/v1/ingest/kong': {
    post: op('ingest', 'ingest', 'Kong http-log: one object, or an array', {
      requestBody: ingestBody(['application/json'], anyJson),
      responses: { '202': json('Every event stored durably.', acceptedSchema), ...batchProblems },
    }),
  },

  // Admin: keys, logs, flush
  '/v1/admin/keys': {
    post: op('admin', 'admin', 'Create an ingest key', {
      requestBody: { content: { 'application/json': { schema: createKeyBody } } },
      responses: { '201': json('The key, shown this once.', createdKeySchema), '400': invalid },
    }),
    get: op('admin', 'admin', 'List the ingest keys', {
      responses: { '200': json('Every key, revoked ones included.', keyListSchema) },
    }),
  },
  '/v1/admin/keys/{id}': {
    delete: op('admin', 'admin', 'Revoke an ingest key', {
      requestParams: { path: pathParam('id', 'The key_id.') },
      responses: { '204': { description: 'Revoked.' }, '404': problem('No such key.') },
    }),
  },
  '/v1/admin/logs': {
    get: op('admin', 'admin', 'The request logs that arrived last', {
      requestParams: { query: recentLogsQuery },
      responses: { '200': json('Newest first.', recentLogsSchema), '400': invalid },
    }),
  },
  '/v1/admin/ingest/formats': {
    get: op('admin', 'admin', 'Events accepted and rejected per source format, since the process started', {
      responses: {
        '200': json('From the collector’s counters (as /metrics).', ingestFormatsSchema),
        '400': invalid,
      },
    }),
  },
  '/v1/admin/flush': {
    post: op('admin', 'admin', 'Ship the spool into ClickHouse now', {
      responses: { '204': { description: 'Shipped.' } },
    }),
  },

  // Meters and usage
  '/v1/meters': {
    get: op('meters', 'admin', 'The meters and their versions', {
      responses: { '200': json('Every loaded meter.', meterListSchema) },
    }),
  },
  '/v1/meters/{name}': {
    get: op('meters', 'admin', 'One meter, with every version and its definition', {
      requestParams: { path: pathParam('name', 'The meter name.') },
      responses: { '200': json('The meter.', meterSchemaView), '404': problem('No such meter.') },
    }),
  },
  '/v1/usage': {
    get: op('meters', 'admin', 'Usage of a meter per hour, day or month', {
      requestParams: { query: usageQuery },
      responses: {
        '200': {
          description: 'JSON, or CSV with format=csv.',
          content: { 'application/json': { schema: usageAnswerSchema }, ...csvContent },
        },
        '400': invalid,
        '404': problem('No such meter.'),
      },
    }),
  },
  '/v1/customers/{id}/usage': {
    get: op('meters', 'admin', "A customer's usage in a billing period, priced by tier", {
      requestParams: { path: pathParam('id', 'The customer key.'), query: customerUsageQuery },
      responses: {
        '200': {
          description: 'JSON, or CSV with format=csv.',
          content: { 'application/json': { schema: customerUsageSchema }, ...csvContent },
        },
        '400': invalid,
      },
    }),
  },
  '/v1/admin/meters/evaluate': {
    post: op('meters', 'admin', 'Evaluate the meters now, or a range again', {
      requestBody: { content: { 'application/json': { schema: evaluateBody } } },
      responses: {
        '200': json('What was evaluated.', evaluationAnswerSchema),
        '400': invalid,
        '422': problem('No version of a meter covers the range: `meters` names them, `backfill` says how.'),
      },
    }),
  },
  '/v1/admin/meters/evaluation': {
    get: op('meters', 'admin', 'The last scheduled evaluation, with its late events', {
      responses: { '200': json('The last run, or null before the first.', evaluationStatusSchema) },
    }),
  },

  // Customers and Stripe
  '/v1/customers': {
    get: op('customers', 'admin', 'The known customers, with mapping, status and usage', {
      requestParams: { query: customerListQuery },
      responses: { '200': json('One page, by key.', customerPageSchema), '400': invalid },
    }),
  },
  '/v1/customers/{id}/status': {
    get: op('customers', 'admin', "A customer's billing status, for a gateway", {
      requestParams: { path: pathParam('id', 'The customer key.') },
      responses: {
        '200': json('Also for a key never seen (seen: false).', customerStatusSchema),
        '400': invalid,
      },
    }),
  },
  '/v1/customers/{id}/access': {
    get: op('customers', 'admin', 'Whether a call of a customer would be served, from memory', {
      requestParams: { path: pathParam('id', 'The customer key.'), query: accessQuery },
      responses: {
        '200': json(
          'Allowed, or blocked by a rule (its response filled in); quotas left.',
          accessDecisionSchema,
        ),
        '400': invalid,
        '404': problem('A customer billing-meter has never heard of.'),
      },
    }),
  },
  '/v1/admin/customers/mappings': {
    get: op('customers', 'admin', 'The explicit Stripe customer mappings', {
      requestParams: { query: mappingListQuery },
      responses: { '200': json('One page, by key.', mappingPageSchema), '400': invalid },
    }),
  },
  '/v1/admin/customers/{key}/stripe-customer': {
    get: op('customers', 'admin', 'The Stripe customer of a key', {
      requestParams: { path: pathParam('key', 'The customer key.') },
      responses: {
        '200': json('The mapping that applies.', mappingSchema),
        '404': problem('No Stripe customer.'),
      },
    }),
    put: op('customers', 'admin', 'Map a key to a Stripe customer', {
      requestParams: { path: pathParam('key', 'The customer key.') },
      requestBody: { content: { 'application/json': { schema: mapBody } } },
      responses: { '200': json('Mapped.', mappedSchema), '400': invalid },
    }),
    delete: op('customers', 'admin', 'Remove the explicit mapping of a key', {
      requestParams: { path: pathParam('key', 'The customer key.') },
      responses: { '204': { description: 'Removed.' }, '404': problem('No explicit mapping.') },
    }),
  },
  '/v1/webhooks/stripe': {
    post: op('stripe', 'none', "Stripe's webhook deliveries, verified by their signature", {
      requestParams: {
        header: z.object({ 'stripe-signature': z.string().meta({ description: 't=…,v1=…' }) }),
      },
      requestBody: { content: { 'application/json': { schema: anyJson } } },
      responses: {
        '200': json('Handled (or a duplicate, ignored, stale).', webhookAnswerSchema),
        '400': problem('A bad signature or body.'),
        '413': problem('Over 1 MiB.'),
        '503': problem('STRIPE_WEBHOOK_SECRET is not set: Stripe retries.'),
      },
    }),
  },

  // Sync
  '/v1/sync/discrepancies': {
    get: op('stripe', 'admin', 'Where Stripe and the usage disagree', {
      requestParams: { query: discrepancyQuery },
      responses: { '200': json('The discrepancies.', discrepanciesSchema), '400': invalid },
    }),
  },
  '/v1/sync/held': {
    get: op('stripe', 'admin', 'Usage held for customers with no Stripe customer', {
      responses: { '200': json('What waits.', heldListSchema) },
    }),
  },
  // The dashboard's endpoints (the pages use these and nothing else)
  '/v1/admin/session': {
    post: op('dashboard', 'none', 'Log in: the admin key for an httpOnly session cookie', {
      requestBody: { content: { 'application/json': { schema: loginBody } } },
      responses: {
        '201': json('Set-Cookie bm_session (httpOnly, SameSite=Strict); the CSRF token.', sessionSchema),
        '400': invalid,
        '401': problem('Not the admin key.'),
        '403': problem('The admin API is disabled: ADMIN_API_KEY is not set.'),
        '415': problem('Not application/json.'),
      },
    }),
    get: op('dashboard', 'admin', "The session's CSRF token and expiry", {
      responses: { '200': json('The session.', sessionSchema), '400': invalid },
    }),
    delete: op('dashboard', 'admin', 'Log out', { responses: { '204': { description: 'Cookie cleared.' } } }),
  },
  '/v1/admin/request-logs': {
    get: op('dashboard', 'admin', 'Request logs matching filters, newest first, a page at a time', {
      requestParams: { query: explorerQuery },
      responses: { '200': json('A page.', explorerPageSchema), '400': invalid },
    }),
  },
  '/v1/admin/request-logs/histogram': {
    get: op('dashboard', 'admin', 'Matching request logs counted per time bucket', {
      requestParams: { query: histogramQuery },
      responses: { '200': json('The buckets with calls.', histogramSchema), '400': invalid },
    }),
  },
  '/v1/admin/meters/preview': {
    post: op('dashboard', 'admin', 'What a meter definition would count per customer (read-only)', {
      requestBody: { content: { 'application/json': { schema: previewBody } } },
      responses: { '200': json('Per customer.', previewSchema), '400': invalid },
    }),
  },
  '/v1/admin/customers/{id}/portal-links': {
    post: op('dashboard', 'admin', "A signed, expiring link to one customer's usage page", {
      requestParams: { path: pathParam('id', 'The customer key.') },
      requestBody: { content: { 'application/json': { schema: portalLinkBody } } },
      responses: { '201': json('The link.', portalLinkSchema), '400': invalid },
    }),
  },
  '/v1/portal/usage': {
    get: op(
      'dashboard',
      'portal',
      "The portal token's customer: this period's usage, cost, days, next tier",
      {
        responses: {
          '200': json('That customer only.', portalUsageSchema),
          '403': problem('Portal links are off.'),
        },
      },
    ),
  },
  '/v1/admin/sync/run': {
    post: op('stripe', 'admin', 'One Stripe sync pass now', {
      responses: { '200': json('What the pass did.', syncReportSchema) },
    }),
  },

  '/v1/admin/sync/runs': {
    get: op('stripe', 'admin', 'The last sync passes of this process, with their result or error', {
      requestParams: { query: syncRunsQuery },
      responses: { '200': json('Newest first.', syncRunsSchema), '400': invalid },
    }),
  },
  '/v1/admin/customers/{id}/sync-ledger': {
    get: op('stripe', 'admin', "A customer's sync ledger: what was sent to Stripe, when, the outcome", {
      requestParams: { path: pathParam('id', 'The customer key.'), query: customerLedgerQuery },
      responses: { '200': json('Newest first.', customerLedgerSchema), '400': invalid },
    }),
  },
  '/v1/admin/stripe/reconcile': {
    get: op('stripe', 'admin', "Our totals against Stripe's meter event summaries over a range", {
      requestParams: { query: reconcileQuery },
      responses: {
        '200': json('One line per meter and customer with usage in the range.', reconcileSchema),
        '400': invalid,
        '503': problem('STRIPE_SECRET_KEY is not set: nothing to ask Stripe.'),
      },
    }),
  },
  '/v1/admin/stripe/push-plan': {
    get: op('stripe', 'admin', 'What `stripe push --apply` would change in Stripe (read-only)', {
      responses: {
        '200': json('The plan.', pushPlanSchema),
        '503': problem('STRIPE_SECRET_KEY is not set: nothing to ask Stripe.'),
      },
    }),
  },

  '/v1/admin/checkout-sessions': {
    post: op('customers', 'admin', 'A Stripe Checkout session subscribing a customer key', {
      requestBody: { content: { 'application/json': { schema: checkoutBody } } },
      responses: {
        '201': json('The session; checkout.session.completed maps the key.', checkoutSessionSchema),
        '400': invalid,
      },
    }),
  },

  // Alerts
  '/v1/alerts': {
    get: op('alerts', 'admin', 'Threshold crossings and their delivery', {
      requestParams: { query: alertQuery },
      responses: { '200': json('Crossings, newest first.', alertListSchema), '400': invalid },
    }),
  },
};

let built: ReturnType<typeof createDocument> | undefined;

/** The document (built once: it depends on the code only). */
export function openApiDocument(): ReturnType<typeof createDocument> {
  built ??= createDocument({
    openapi: '3.1.0',
    info: {
      title: 'billing-meter',
      version: '0.1.0',
      description: 'Turns API request logs into billed usage. Errors are application/problem+json.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    paths: OPENAPI_PATHS,
    components: {
      securitySchemes: {
        adminKey: { type: 'http', scheme: 'bearer', description: 'ADMIN_API_KEY.' },
        ingestKeyBearer: { type: 'http', scheme: 'bearer', description: 'An ingest key.' },
        ingestKeyHeader: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
        moesifApplicationId: { type: 'apiKey', in: 'header', name: 'X-Moesif-Application-Id' },
        adminSession: {
          type: 'apiKey',
          in: 'cookie',
          name: 'bm_session',
          description: 'From POST /v1/admin/session; writes also need the X-CSRF-Token header.',
        },
        portalToken: { type: 'http', scheme: 'bearer', description: 'The token of a portal link.' },
      },
    },
  });
  return built;
}
