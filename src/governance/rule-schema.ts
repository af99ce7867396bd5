import { z } from 'zod';
import { filterSchema, parseField } from '../meters/meter-schema.ts';

/**
 * The schema of one governance rule file (`governance/*.yaml`, one rule per file, beside `meters/`;
 * see README, "Governance"). A directory of its own rather than a block in each meter because a rule
 * is not about one meter: `unpaid`, `unmapped` and explicit customers concern every call, and an
 * `over_quota` rule may name any meter. Strict like meters: an unknown key is an error.
 *
 * `when` is the meters' own filter schema (routes, methods, where), so a route or a header condition
 * means here what it means in a meter. At request time only what the request carries is known, so
 * `status` (the response's) is refused, `where` takes request headers only (`header.<name>`), and of
 * the operators those a regex can express, because the Moesif SDKs match rules by regex:
 * eq, in, prefix, matches.
 */

export const MERGE_TAGS = ['customer', 'meter', 'quota', 'usage'] as const;
export type MergeTag = (typeof MERGE_TAGS)[number];

const REQUEST_OPS = ['eq', 'in', 'prefix', 'matches'] as const;

function strict<Shape extends z.ZodRawShape>(shape: Shape) {
  const allowed = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}; allowed: ${allowed.join(', ')}`
        : undefined,
  });
}

const requestConditionsSchema = filterSchema.superRefine((when, ctx) => {
  if (when.status !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['status'],
      message: "a rule decides before the response exists: 'status' is not a request condition",
    });
  }
  when.where?.forEach((cond, i) => {
    const ref = parseField(cond.field);
    if ('error' in ref) return;
    if (!(ref.kind === 'meta' && ref.key.startsWith('header.'))) {
      ctx.addIssue({
        code: 'custom',
        path: ['where', i, 'field'],
        message: `a rule's where takes request headers (header.<name>), not '${cond.field}'`,
      });
    }
    if (!(REQUEST_OPS as readonly string[]).includes(cond.op)) {
      ctx.addIssue({
        code: 'custom',
        path: ['where', i, 'op'],
        message: `a rule's where takes the ops ${REQUEST_OPS.join(', ')}, not '${cond.op}'`,
      });
    }
  });
});

const appliesToSchema = z.union(
  [
    strict({ status: z.literal('unpaid') }),
    strict({
      status: z.literal('over_quota'),
      /** Left out: over the quota of any meter. */
      meter: z.string().min(1).optional(),
    }),
    strict({ status: z.literal('unmapped') }),
    strict({ customers: z.array(z.string().min(1).max(1024)).min(1, 'customers must list at least one') }),
  ],
  {
    error:
      'applies_to must be {status: unpaid}, {status: over_quota, meter?: <name>}, {status: unmapped} or {customers: [...]}',
  },
);

/** JSON as YAML writes it: what a response body may hold. */
const jsonValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(jsonValue),
    z.record(z.string(), jsonValue),
  ]),
);

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const responseSchema = strict({
  /** Default: 402 for unpaid, 429 for over quota, 403 otherwise. */
  status: z.number().int().min(400, 'a blocking status is 4xx or 5xx').max(599).optional(),
  headers: z.record(z.string().regex(HEADER_NAME, 'must be an HTTP header name'), z.string()).default({}),
  body: z.record(z.string(), jsonValue).default({}),
});

export const ruleSchema = strict({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,62}$/, 'must be a slug: a lower-case letter, then up to 62 of a-z 0-9 _ -'),
  description: z.string().optional(),
  applies_to: appliesToSchema,
  when: requestConditionsSchema.optional(),
  response: responseSchema.default({ headers: {}, body: {} }),
});

export type RuleDefinition = z.output<typeof ruleSchema>;
export type AppliesTo = RuleDefinition['applies_to'];

/** The status a rule answers with: its own, else the default of what it applies to. */
export function responseStatus(rule: RuleDefinition): number {
  if (rule.response.status !== undefined) return rule.response.status;
  if ('status' in rule.applies_to) {
    if (rule.applies_to.status === 'unpaid') return 402;
    if (rule.applies_to.status === 'over_quota') return 429;
  }
  return 403;
}
