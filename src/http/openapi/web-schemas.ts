import { z } from 'zod';
import { customerUsageSchema } from './schemas.ts';

// The answers of the dashboard's endpoints (routes/web-routes.ts): public API like the rest.

export const sessionSchema = z.object({
  csrf_token: z
    .string()
    .meta({ description: 'Send it as X-CSRF-Token on every write made with the cookie.' }),
  expires_at: z.string(),
});

export const explorerPageSchema = z.object({
  from: z.string(),
  to: z.string(),
  logs: z.array(
    z.object({
      event_id: z.string(),
      app: z.string(),
      request_time: z.string().meta({ description: "'YYYY-MM-DD hh:mm:ss' UTC." }),
      customer: z.string(),
      method: z.string(),
      route: z.string(),
      status: z.number().int(),
      latency_ms: z.number().int(),
      metadata: z.record(z.string(), z.string()),
    }),
  ),
  next: z
    .string()
    .nullable()
    .meta({ description: 'Send as `before` for the next (older) page; null: the last.' }),
});

export const histogramSchema = z.object({
  from: z.string(),
  to: z.string(),
  bucket_seconds: z.number().int(),
  total: z.number().int(),
  buckets: z.array(z.object({ start: z.string(), calls: z.number().int() })),
});

export const previewSchema = z.object({
  meter: z.string(),
  from: z.string(),
  to: z.string(),
  total: z.string(),
  customers: z.array(z.object({ customer: z.string(), value: z.string() })).meta({
    description: 'Largest first, at most 1000.',
  }),
});

export const portalLinkSchema = z.object({
  customer: z.string(),
  expires_at: z.string(),
  token: z.string(),
  url: z.string().meta({ description: 'The customer page; the token rides in the fragment.' }),
});

export const portalUsageSchema = customerUsageSchema.extend({
  link_expires_at: z.string(),
  daily: z.array(
    z.object({ meter: z.string(), days: z.array(z.object({ day: z.string(), value: z.string() })) }),
  ),
  next_tier: z.array(z.object({ meter: z.string(), at: z.string(), to_go: z.string() })),
});
