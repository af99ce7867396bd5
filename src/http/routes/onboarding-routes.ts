import Router from '@koa/router';
import { z } from 'zod';
import { parseJson } from '../../collector/parse-body.ts';
import { requireAdminKey } from '../auth.ts';
import { readBody } from '../body.ts';
import type { checkoutSessionSchema } from '../openapi/schemas.ts';
import { parseOr400 } from '../query-fields.ts';

export interface OnboardingRouteDeps {
  adminApiKey: string | undefined;
  checkout(
    customerKey: string,
    o: { email?: string; successUrl: string; cancelUrl?: string },
  ): Promise<{ id: string; url: string; billingCycleAnchor: string }>;
}

const httpUrl = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' });

export const checkoutBody = z
  .object({
    customer: z.string().min(1).max(1024).meta({ description: 'The customer key to map.' }),
    email: z
      .email()
      .optional()
      .meta({ description: 'Prefilled on the page when the key has no Stripe customer.' }),
    success_url: httpUrl,
    cancel_url: httpUrl.optional(),
  })
  .strict();

export function onboardingRoutes(deps: OnboardingRouteDeps): Router {
  const router = new Router();
  router.post('/v1/admin/checkout-sessions', requireAdminKey(deps.adminApiKey), async (ctx) => {
    const body = parseOr400(
      checkoutBody,
      parseJson(await readBody(ctx.req, 64 * 1024)),
      'send {"customer": KEY, "success_url": URL, "email"?, "cancel_url"?}',
    );
    const session = await deps.checkout(body.customer, {
      email: body.email,
      successUrl: body.success_url,
      cancelUrl: body.cancel_url,
    });
    ctx.status = 201;
    ctx.body = {
      id: session.id,
      url: session.url,
      customer: body.customer,
      billing_cycle_anchor: session.billingCycleAnchor,
    } satisfies z.input<typeof checkoutSessionSchema>;
  });
  return router;
}
