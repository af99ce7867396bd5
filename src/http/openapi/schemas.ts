import { z } from 'zod';

/**
 * The answers of the API as zod schemas, for the OpenAPI document. The requests' schemas are not here:
 * they live beside their routes and validate the requests (the document imports them, so it cannot
 * drift from what is checked). The routes' views declare `satisfies z.input<…>` of these, so an answer
 * that changes shape without its schema does not compile.
 *
 * Ingest bodies are the exception: the collector judges them event by event by hand (the hot path,
 * with per-event rejections), so their schemas here describe the native record; they validate nothing.
 */

const instant = z.iso
  .datetime()
  .meta({ description: 'UTC, ISO-8601.', examples: ['2026-11-01T00:00:00.000Z'] });
const decimalString = (description: string) =>
  z
    .string()
    .regex(/^-?\d+(\.\d+)?$/)
    .meta({ description });

// --------------------------------------------------------------------------------------------------
// Errors

export const problemSchema = z
  .looseObject({
    type: z
      .string()
      .meta({ description: 'A URI naming the problem: https://billing-meter.dev/problems/<code>.' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional().meta({ description: '4xx only: what was wrong and what is accepted.' }),
    instance: z.string().optional(),
    request_id: z.string().optional().meta({ description: 'The x-request-id of the answer, as logged.' }),
    errors: z
      .array(z.object({ field: z.string(), reason: z.string() }))
      .optional()
      .meta({ description: 'invalid_request: each bad field.' }),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details; other members per problem type.' });

export const eventRejectionSchema = z.object({
  index: z.number().int().meta({ description: '0-based position of the event in the batch.' }),
  id: z.string().optional(),
  field: z.string(),
  reason: z.string(),
});

// --------------------------------------------------------------------------------------------------
// Money and usage

export const costSchema = z
  .object({
    currency: z
      .string()
      .meta({ description: 'Lower-case ISO 4217, as in the meter pricing.', examples: ['usd'] }),
    amount: decimalString('Major units, exact, with the currency decimals: 4200.00 (usd), 1500 (jpy).'),
    amount_minor: z.number().int().meta({ description: 'Whole minor units as charged (cents): 420000.' }),
    display: z.string().meta({ examples: ['$4,200.00'] }),
  })
  .meta({ id: 'Cost', description: 'Money, one shape everywhere.' });

export const tierCostSchema = z
  .object({
    tier: z.number().int(),
    from: z.string(),
    up_to: z.string().meta({ description: "An integer, or 'inf'." }),
    quantity: z.string(),
    unit_amount_decimal: z.string(),
    flat_amount_decimal: z.string(),
    amount: z.string(),
    amount_minor: z.number().int(),
    display: z.string(),
  })
  .meta({ id: 'TierCost' });

export const usagePointSchema = z
  .object({
    meter: z.string(),
    customer: z.string(),
    window_start: instant,
    value: decimalString('An integer, as text (64-bit values do not fit a JSON number).'),
    cost: costSchema.optional().meta({ description: 'Month windows of a priced meter only.' }),
  })
  .meta({ id: 'UsagePoint' });

export const usageAnswerSchema = z.object({
  meter: z.string(),
  window: z.enum(['hour', 'day', 'month']),
  from: instant,
  to: instant,
  usage: z.array(usagePointSchema),
});

const periodSchema = z
  .object({ id: z.string().meta({ examples: ['2026-11'] }), start: instant, end: instant })
  .meta({ id: 'BillingPeriod' });

export const customerUsageSchema = z
  .object({
    customer: z.string(),
    period: periodSchema,
    meters: z.array(
      z.object({
        meter: z.string(),
        unit: z.string(),
        quantity: z.string(),
        cost: costSchema.optional(),
        tiers: z.array(tierCostSchema).optional(),
      }),
    ),
  })
  .meta({ id: 'CustomerUsage' });

export const csvContent = {
  'text/csv': {
    schema: z.string().meta({ description: 'A download (Content-Disposition: attachment; filename=…).' }),
  },
};

// --------------------------------------------------------------------------------------------------
// Meters and evaluation

const definitionSchema = z
  .record(z.string(), z.unknown())
  .meta({ description: 'A meter definition, as parsed from its YAML file (README: Meters).' });

export const meterListSchema = z.object({
  meters: z.array(
    z.object({
      name: z.string(),
      description: z.string(),
      unit: z.string(),
      aggregation: z.record(z.string(), z.unknown()),
      version: z.string(),
      versions: z.array(z.object({ version: z.string(), effective_from: instant })),
    }),
  ),
});

export const meterSchemaView = z.object({
  name: z.string(),
  version: z.string(),
  definition: definitionSchema,
  versions: z.array(z.object({ version: z.string(), effective_from: instant, definition: definitionSchema })),
});

export const runSchema = z
  .object({
    run_at: instant,
    closed_through: instant,
    window_start: instant,
    late_outside_window: z.number().int().meta({
      description: 'Events that arrived after their hour left the lateness window: stored, not billed.',
    }),
  })
  .meta({ id: 'EvaluationRun' });

export const evaluationAnswerSchema = z
  .object({
    mode: z.enum(['scheduled', 'range']),
    ranges: z.array(
      z.object({
        meter: z.string(),
        version: z.string(),
        from: instant,
        to: instant,
        rows: z.number().int(),
      }),
    ),
    not_covered: z
      .array(
        z.object({ meter: z.string(), from: instant, to: instant, first_effective_from: instant.nullable() }),
      )
      .meta({ description: 'Hours of the range before a meter’s first version (range mode).' }),
    run: runSchema.nullable().meta({ description: 'The scheduled run’s record; null for a range.' }),
  })
  .meta({ id: 'Evaluation' });

export const evaluationStatusSchema = z.object({
  lateness_hours: z.number().int(),
  last_run: runSchema.nullable(),
});

// --------------------------------------------------------------------------------------------------
// Customers and Stripe

export const customerStatusSchema = z
  .object({
    customer: z.string(),
    seen: z.boolean().meta({ description: 'Whether billing-meter has ever heard of the key.' }),
    status: z.enum(['ok', 'unpaid', 'over_quota', 'unmapped']),
    stripe_customer_id: z.string().optional(),
    mapping_source: z.enum(['admin', 'webhook', 'moesif', 'customer_id']).optional(),
    reasons: z.array(
      z.object({
        code: z.enum(['unpaid', 'over_quota', 'unmapped']),
        detail: z.string(),
        meter: z.string().optional(),
        usage: z.string().optional(),
        quota: z.number().optional(),
        invoice: z.string().optional(),
      }),
    ),
    meters: z.array(
      z.object({
        meter: z.string(),
        usage: z.string(),
        quota: z.number().optional(),
        cost: costSchema.optional(),
      }),
    ),
    subscription: z
      .object({
        id: z.string(),
        status: z.string(),
        current_period_start: instant.optional(),
        current_period_end: instant.optional(),
      })
      .optional(),
    period: periodSchema,
  })
  .meta({ id: 'CustomerStatus' });

export const customerPageSchema = z.object({
  customers: z.array(customerStatusSchema),
  next_after: z.string().nullable().meta({ description: 'The cursor of the next page; null on the last.' }),
});

const mappingSourceSchema = z.enum(['admin', 'webhook', 'moesif', 'customer_id']);

export const mappingPageSchema = z.object({
  mappings: z.array(
    z.object({
      customer_key: z.string(),
      stripe_customer_id: z.string(),
      source: z.enum(['admin', 'webhook']),
      updated_at: instant,
    }),
  ),
  next_after: z.string().nullable(),
});

export const mappingSchema = z.object({
  customer_key: z.string(),
  stripe_customer_id: z.string(),
  source: mappingSourceSchema,
});

export const mappedSchema = mappingSchema.extend({ changed: z.boolean() });

export const webhookAnswerSchema = z.object({
  received: z.literal(true),
  id: z.string(),
  type: z.string(),
  outcome: z.enum(['handled', 'duplicate', 'ignored', 'stale', 'unchanged']),
});

export const discrepanciesSchema = z.object({
  data: z.array(
    z.object({
      meter: z.string(),
      version: z.string(),
      customer: z.string(),
      hour: instant,
      kind: z.enum(['decrease_after_24h', 'outside_stripe_window', 'unknown_outcome', 'rejected']),
      expected: z.string(),
      sent: z.string(),
      difference: z.string(),
      detail: z.string(),
      resolved: z.boolean(),
      recorded_at: instant,
    }),
  ),
});

const heldSchema = z.object({
  meter: z.string(),
  customer: z.string(),
  hours: z.number().int(),
  value: z.string(),
  oldestHour: instant,
  sendableUntil: instant,
});

export const heldListSchema = z.object({ data: z.array(heldSchema) });

export const syncReportSchema = z.object({
  run_at: instant,
  dry_run: z.boolean(),
  keys_checked: z.number().int(),
  sent: z.number().int(),
  duplicates: z.number().int(),
  cancelled: z.number().int(),
  rejected: z.number().int(),
  pending: z.number().int(),
  held: z.array(heldSchema),
  discrepancies: z.number().int(),
  aborted: z.boolean(),
});

export const syncRunsSchema = z.object({
  data: z
    .array(
      z.object({
        trigger: z.enum(['scheduled', 'on_demand']),
        started_at: instant,
        finished_at: instant,
        outcome: z.enum(['ok', 'dry_run', 'aborted', 'failed']),
        report: syncReportSchema.nullable().meta({ description: 'null when the pass failed.' }),
        error: z.string().nullable().meta({ description: 'Why the pass failed; null otherwise.' }),
      }),
    )
    .meta({ description: 'Newest first; the last 200 passes of this process (a restart forgets them).' }),
});

export const customerLedgerSchema = z.object({
  customer: z.string(),
  data: z
    .array(
      z.object({
        op_id: z.string().meta({ description: 'The meter event identifier (sends), cancel:… (cancels).' }),
        kind: z.enum(['send', 'cancel']),
        meter: z.string(),
        version: z.string(),
        stripe_customer_id: z.string(),
        event_name: z.string(),
        hour: instant,
        revision: z.number().int(),
        value: z.string().meta({ description: 'What a send adds; a cancel, the value it takes back.' }),
        event_time: instant,
        target_op_id: z.string().nullable().meta({ description: 'A cancel: the send it cancels.' }),
        state: z.enum([
          'intent',
          'applied',
          'duplicate',
          'dry_run',
          'rejected',
          'unknown_outcome',
          'not_cancellable',
        ]),
        detail: z.string(),
        intent_at: instant,
        recorded_at: instant,
      }),
    )
    .meta({ description: 'Newest intent first, at most limit.' }),
});

export const reconcileSchema = z.object({
  from: instant,
  to: instant,
  mismatches: z.number().int().meta({ description: 'Lines whose status is not ok.' }),
  lines: z.array(
    z.object({
      meter: z.string(),
      customer: z.string(),
      stripe_customer_id: z.string().nullable(),
      ours: z.string(),
      stripe: z.string().nullable(),
      difference: z.string().nullable().meta({ description: 'ours - stripe.' }),
      status: z.enum(['ok', 'mismatch', 'unmapped', 'no_stripe_meter']),
    }),
  ),
});

export const pushPlanSchema = z.object({
  meters: z.array(
    z.object({
      name: z.string(),
      steps: z.array(
        z.object({
          object: z.enum(['meter', 'product', 'price']),
          action: z.enum(['create', 'update', 'unchanged', 'conflict']),
          line: z.string().meta({ description: 'As `billing-meter stripe push` prints it.' }),
        }),
      ),
    }),
  ),
  skipped: z.array(z.string()).meta({ description: 'Meters without a stripe block: not pushed.' }),
  counts: z.object({
    create: z.number().int(),
    update: z.number().int(),
    unchanged: z.number().int(),
    conflict: z.number().int(),
  }),
  has_changes: z.boolean(),
});

export const ingestFormatsSchema = z.object({
  since: instant.meta({ description: 'When this process started counting.' }),
  formats: z.array(
    z.object({
      format: z.string(),
      accepted: z.number().int(),
      rejected: z.number().int(),
      unattributed: z.number().int().meta({ description: 'Accepted without a customer: never billed.' }),
    }),
  ),
});

// --------------------------------------------------------------------------------------------------
// Keys, logs, operations

export const keySchema = z
  .object({ key_id: z.string(), name: z.string(), created_at: instant, revoked_at: instant.nullable() })
  .meta({ id: 'IngestKey' });

export const createdKeySchema = keySchema.extend({
  key: z.string().meta({ description: 'The key itself: shown once, stored only as a hash.' }),
});

export const keyListSchema = z.object({ keys: z.array(keySchema) });

export const recentLogsSchema = z.object({
  logs: z.array(z.record(z.string(), z.unknown()).meta({ description: 'A request_logs row.' })),
});

export const readinessSchema = z.object({
  status: z.enum(['ready', 'unavailable']),
  clickhouse: z.enum(['reachable', 'unreachable']),
  spool: z.object({ has_room: z.boolean(), bytes: z.number().int() }),
});

// --------------------------------------------------------------------------------------------------
// Ingest (descriptive: see the file comment)

export const nativeRecordSchema = z
  .looseObject({
    id: z.string().max(256).optional().meta({ description: 'Dedupe key; default: a hash of the record.' }),
    timestamp: z
      .union([z.string(), z.number()])
      .meta({ description: 'ISO-8601 with a zone, or epoch milliseconds.' }),
    customer: z.string().max(256).optional(),
    company_id: z.union([z.string(), z.number().int()]).optional(),
    user_id: z.union([z.string(), z.number().int()]).optional(),
    method: z.string(),
    path: z.string().max(2048).optional().meta({ description: 'path or url: one is required.' }),
    url: z.string().max(2048).optional(),
    host: z.string().max(512).optional(),
    status: z.number().int().min(100).max(599),
    latency_ms: z.number().min(0).optional(),
    request_bytes: z.number().int().min(0).optional(),
    response_bytes: z.number().int().min(0).optional(),
    api_version: z.string().max(256).optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    response_headers: z.record(z.string(), z.string()).optional(),
    weight: z.number().int().min(1).max(1_000_000).optional(),
  })
  .meta({ id: 'NativeRecord', description: 'One API call (README: Native). Unknown fields are ignored.' });

export const acceptedSchema = z.looseObject({ accepted: z.number().int() });

export const anyJson = z.unknown().meta({ description: 'JSON as the sender’s SDK or gateway writes it.' });

export const accessDecisionSchema = z
  .object({
    customer: z.string(),
    allowed: z.boolean(),
    status: z.enum(['ok', 'unpaid', 'over_quota', 'unmapped']),
    rule: z
      .object({
        name: z.string(),
        file: z.string(),
        response: z.object({
          status: z.number().int(),
          headers: z.record(z.string(), z.string()),
          body: z.unknown(),
        }),
      })
      .optional()
      .meta({
        description: 'The rule that blocks, with its response (merge tags filled in); absent when allowed.',
      }),
    quotas: z.array(
      z.object({ meter: z.string(), quota: z.number().int(), usage: z.string(), remaining: z.string() }),
    ),
  })
  .meta({ id: 'AccessDecision' });
export const alertListSchema = z.object({
  data: z.array(
    z.object({
      id: z.string().meta({ description: 'The event id of the webhook; receivers dedupe on it.' }),
      customer: z.string(),
      meter: z.string(),
      period: z.string().meta({ description: 'YYYY-MM' }),
      threshold: z.object({ id: z.string(), label: z.string(), value: z.string() }),
      quantity: z.string().meta({ description: 'The period-to-date usage that crossed the threshold.' }),
      observed_at: instant,
      recorded_at: instant,
      deliveries: z.array(
        z.object({
          channel: z.enum(['webhook', 'email']),
          state: z.enum(['pending', 'delivered', 'retrying', 'failed', 'no_channel']),
          attempts: z.number().int(),
          last_attempt_at: instant.nullable(),
          last_error: z.string().nullable(),
          next_attempt_at: instant.nullable(),
        }),
      ),
    }),
  ),
});

export const checkoutSessionSchema = z.object({
  id: z.string().meta({ description: 'The Checkout session (cs_…).' }),
  url: z.string().meta({ description: "Stripe's hosted page: send the customer there." }),
  customer: z.string(),
  billing_cycle_anchor: instant,
});
