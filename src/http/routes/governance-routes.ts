import Router from '@koa/router';
import { z } from 'zod';
import type { Governance } from '../../governance/governance.ts';
import { requireAdminKey } from '../auth.ts';
import type { accessDecisionSchema } from '../openapi/schemas.ts';
import { parseOr400 } from '../query-fields.ts';

export interface GovernanceRouteDeps {
  adminApiKey: string | undefined;
  governance: Pick<Governance, 'access'>;
}

export const accessQuery = z
  .object({
    route: z
      .string()
      .startsWith('/', 'must be a path starting with /')
      .max(2048)
      .meta({ description: 'The path of the call to decide, as the API receives it.' }),
    method: z
      .string()
      .regex(/^[A-Za-z]{1,16}$/, 'a method is 1 to 16 letters, such as GET')
      .transform((m) => m.toUpperCase())
      .default('GET'),
  })
  .strict();

/**
 * GET /v1/customers/:id/access: the decision a gateway (or code about to do expensive work) needs,
 * from memory only (rules and membership snapshots): allowed or blocked, by which rule with its
 * response filled in, and what is left of each quota. The admin key, like the customer's status.
 */
export function governanceRoutes(deps: GovernanceRouteDeps): Router {
  const router = new Router();
  const admin = requireAdminKey(deps.adminApiKey);
  router.get('/v1/customers/:id/access', admin, (ctx) => {
    const q = parseOr400(accessQuery, ctx.query, 'query: route (a path, required), method (default GET)');
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(ctx.headers))
      if (typeof value === 'string') headers[name] = value;
    ctx.body = deps.governance.access(ctx.params.id ?? '', {
      route: q.route,
      method: q.method,
      headers,
    }) satisfies z.input<typeof accessDecisionSchema>;
  });
  return router;
}
