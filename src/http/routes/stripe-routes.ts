import Router from '@koa/router';
import { z } from 'zod';
import { parseJson } from '../../collector/parse-body.ts';
import type { BillingStatusService } from '../../billing/stripe/billing-status.ts';
import type { CustomerMappingService, MappingView } from '../../billing/stripe/customer-directory.ts';
import { MAX_WEBHOOK_BODY_BYTES, type StripeWebhookService } from '../../billing/stripe/webhooks.ts';
import { DomainError } from '../../errors.ts';
import { requireAdminKey } from '../auth.ts';
import { readBody } from '../body.ts';
import type {
  customerPageSchema,
  customerStatusSchema,
  mappedSchema,
  mappingPageSchema,
  mappingSchema,
  webhookAnswerSchema,
} from '../openapi/schemas.ts';
import { parseOr400 } from '../query-fields.ts';

export interface StripeRouteDeps {
  adminApiKey: string | undefined;
  mappings: CustomerMappingService;
  webhooks: Pick<StripeWebhookService, 'assertEnabled' | 'receive'>;
  status: BillingStatusService;
}

export const mapBody = z.object({ stripe_customer_id: z.string() }).strict();
const pageLimit = z.coerce.number().int().min(1).max(1000).default(100);
const cursor = z
  .string()
  .min(1)
  .max(1024)
  .optional()
  .meta({ description: 'The next_after of the previous page.' });
export const mappingListQuery = z.object({ limit: pageLimit, after: cursor }).strict();
export const customerListQuery = z
  .object({
    limit: pageLimit,
    after: cursor,
    prefix: z.string().min(1).max(1024).optional().meta({ description: 'Only keys that start with it.' }),
  })
  .strict();

const mappingView = (m: MappingView) => ({
  customer_key: m.customerKey,
  stripe_customer_id: m.stripeCustomerId,
  source: m.source,
  updated_at: m.updatedAt.toISOString(),
});

/**
 * The Stripe side's HTTP API:
 * - POST /v1/webhooks/stripe: Stripe's deliveries, authenticated by their signature (no admin key). The
 *   body is read raw here (no body parser runs before the routes), at most 1 MiB.
 * - GET /v1/customers (the list), GET /v1/customers/:id/status, and the mapping admin API under
 *   /v1/admin/customers: the admin key.
 */
export function stripeRoutes(deps: StripeRouteDeps): Router {
  const router = new Router();
  // Per route, not router.use: the webhook route must not require the admin key.
  const admin = requireAdminKey(deps.adminApiKey);

  router.post('/v1/webhooks/stripe', async (ctx) => {
    // Before the body is read: a refused delivery costs nothing.
    deps.webhooks.assertEnabled();
    const raw = await readBody(ctx.req, MAX_WEBHOOK_BODY_BYTES);
    const result = await deps.webhooks.receive(raw, ctx.get('stripe-signature') || undefined);
    ctx.body = {
      received: true,
      id: result.id,
      type: result.type,
      outcome: result.outcome,
    } satisfies z.input<typeof webhookAnswerSchema>;
  });

  router.get('/v1/customers/:id/status', admin, async (ctx) => {
    ctx.body = (await deps.status.status(ctx.params.id ?? '')) satisfies z.input<typeof customerStatusSchema>;
  });

  // The customers billing-meter knows (usage, a mapping, a Moesif company with a Stripe id), by key.
  router.get('/v1/customers', admin, async (ctx) => {
    const q = parseOr400(
      customerListQuery,
      ctx.query,
      'query: limit (1-1000, default 100), after (next_after of the previous page), prefix',
    );
    const page = await deps.status.list(q);
    ctx.body = { customers: page.customers, next_after: page.next_after } satisfies z.input<
      typeof customerPageSchema
    >;
  });

  router.get('/v1/admin/customers/mappings', admin, async (ctx) => {
    const { limit, after } = parseOr400(
      mappingListQuery,
      ctx.query,
      'query: limit (1-1000, default 100), after (the last customer_key of the previous page)',
    );
    const page = await deps.mappings.list(after === undefined ? { limit } : { limit, after });
    ctx.body = {
      mappings: page.map(mappingView),
      // Another page may follow when this one is full.
      next_after: page.length === limit ? page[page.length - 1]!.customerKey : null,
    } satisfies z.input<typeof mappingPageSchema>;
  });

  router.get('/v1/admin/customers/:key/stripe-customer', admin, async (ctx) => {
    const key = ctx.params.key ?? '';
    const resolved = await deps.mappings.get(key);
    if (!resolved)
      throw new DomainError('not_found', `no Stripe customer for customer key ${JSON.stringify(key)}`);
    ctx.body = {
      customer_key: key,
      stripe_customer_id: resolved.stripeCustomerId,
      source: resolved.source,
    } satisfies z.input<typeof mappingSchema>;
  });

  router.put('/v1/admin/customers/:key/stripe-customer', admin, async (ctx) => {
    const key = ctx.params.key ?? '';
    const body = parseOr400(
      mapBody,
      parseJson(await readBody(ctx.req, 64 * 1024)),
      'send {"stripe_customer_id": "cus_…"}',
    );
    const outcome = await deps.mappings.map(key, body.stripe_customer_id, 'admin');
    ctx.body = {
      customer_key: key,
      stripe_customer_id: body.stripe_customer_id,
      source: 'admin',
      changed: outcome === 'mapped',
    } satisfies z.input<typeof mappedSchema>;
  });

  router.delete('/v1/admin/customers/:key/stripe-customer', admin, async (ctx) => {
    const key = ctx.params.key ?? '';
    if (!(await deps.mappings.unmap(key))) {
      throw new DomainError(
        'not_found',
        `customer key ${JSON.stringify(key)} has no explicit mapping (a Moesif or cus_ key mapping cannot be removed here)`,
      );
    }
    ctx.status = 204;
  });

  return router;
}
