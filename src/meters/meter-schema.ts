import { z } from 'zod';
import { columnsExposedAs, type ColumnsExposedAs } from '../collector/request-log.ts';
import { alertSchema, checkAlerts } from './alert-thresholds.ts';
import { pricingSchema } from './tiers.ts';

/**
 * The schema of one meter YAML file (see README, "Meter YAML reference"). Strict everywhere: an
 * unknown key is an error, because a misspelt key silently ignored changes what is billed.
 *
 * Fields are named as text in YAML and resolved here, once, into a closed set of references
 * (parseField): a canonical column of request_logs from the lists below, or a key of the
 * meta_keys/meta_values pairs. The compiler only ever turns such a reference into SQL, so no name
 * from a YAML file reaches SQL other than through this whitelist or as an escaped string literal.
 */

/**
 * The columns of request_logs a meter may name, from the schema of record (collector/request-log.ts):
 * text columns (filters, customers, unique counts), integer columns (filters), and the integer columns
 * `sum`, `min`, `max` and `latest` may aggregate (besides numeric metadata and headers). Left out on
 * purpose: `request_time` and `received_at` (the time range is the evaluation's, not the meter's) and
 * `meta_keys`/`meta_values` (use `metadata.<key>`, `header.<name>` or `response_header.<name>`).
 */
export const TEXT_COLUMNS = columnsExposedAs('text');
export const INTEGER_COLUMNS = columnsExposedAs('integer', 'integer-value');
export const NUMERIC_VALUE_COLUMNS = columnsExposedAs('integer-value');

export type TextColumn = ColumnsExposedAs<'text'>;
export type IntegerColumn = ColumnsExposedAs<'integer' | 'integer-value'>;

/** Prefixes of the keys stored in meta_keys (see collector/formats/metadata.ts and headers.ts). */
export const META_PREFIXES = ['metadata.', 'header.', 'response_header.'] as const;

export type FieldRef =
  | { kind: 'column'; type: 'text'; column: TextColumn }
  | { kind: 'column'; type: 'integer'; column: IntegerColumn }
  /** `key` exactly as stored in meta_keys, e.g. `metadata.plan` or `header.x-plan`. */
  | { kind: 'meta'; type: 'text'; key: string };

/** The collector stores metadata keys of at most 256 characters. */
const MAX_META_KEY_CHARS = 256;
/** An HTTP header name (RFC 9110 token). The collector stores header names lower-cased. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const isTextColumn = (name: string): name is TextColumn => (TEXT_COLUMNS as readonly string[]).includes(name);
const isIntegerColumn = (name: string): name is IntegerColumn =>
  (INTEGER_COLUMNS as readonly string[]).includes(name);

/** Header names are case-insensitive and stored lower-cased: `header.X-Plan` means `header.x-plan`. */
export function normalizeFieldName(name: string): string {
  for (const prefix of ['header.', 'response_header.']) {
    if (name.startsWith(prefix)) return prefix + name.slice(prefix.length).toLowerCase();
  }
  return name;
}

/** What a field name refers to, or why it refers to nothing. */
export function parseField(name: string): FieldRef | { error: string } {
  if (isTextColumn(name)) return { kind: 'column', type: 'text', column: name };
  if (isIntegerColumn(name)) return { kind: 'column', type: 'integer', column: name };
  const prefix = META_PREFIXES.find((p) => name.startsWith(p));
  if (prefix === undefined) {
    return {
      error:
        `unknown field '${name}': use a request_logs column (${[...TEXT_COLUMNS, ...INTEGER_COLUMNS].join(', ')}), ` +
        'metadata.<key>, header.<name> or response_header.<name>',
    };
  }
  const rest = name.slice(prefix.length);
  if (rest === '') return { error: `'${name}' needs a name after '${prefix}'` };
  if (prefix === 'metadata.') {
    if ([...name].length > MAX_META_KEY_CHARS) {
      return { error: `metadata key '${name}' is longer than ${MAX_META_KEY_CHARS} characters` };
    }
  } else if (!HEADER_NAME.test(rest) || rest.length > MAX_META_KEY_CHARS) {
    return { error: `'${rest}' in '${name}' is not an HTTP header name` };
  }
  return { kind: 'meta', type: 'text', key: normalizeFieldName(name) };
}

/** Unknown keys are refused, not dropped, with the keys that are allowed (same wording as tiers.ts). */
function strict<Shape extends z.ZodRawShape>(shape: Shape) {
  const allowed = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}; allowed: ${allowed.join(', ')}`
        : undefined,
  });
}

const fieldSchema = z
  .string({ error: 'must be a field name such as company_id, metadata.plan or header.x-plan' })
  .transform(normalizeFieldName)
  .superRefine((name, ctx) => {
    const ref = parseField(name);
    if ('error' in ref) ctx.addIssue({ code: 'custom', message: ref.error });
  });

// ---------------------------------------------------------------------------------------------------
// Routes

export type RoutePattern =
  | { kind: 'exact'; path: string }
  /** An RE2 regex anchored at both ends, for match(route, regex). */
  | { kind: 'pattern'; regex: string };

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_ROUTE_CHARS = 2048;

const escapeRegex = (text: string): string => text.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');

/**
 * A route as written in a meter: an exact path (`/RetrieveCreditScore`), a template whose `:name`
 * segments match one non-empty segment (`/users/:id`), or a glob where `*` matches within one
 * segment and a `**` segment matches any number of segments, none included (`/v1/**` matches `/v1`,
 * `/v1/` and `/v1/a/b`). Paths are compared as stored: without query string, not percent-decoded.
 */
export function parseRoute(route: string): RoutePattern | { error: string } {
  if (!route.startsWith('/')) return { error: `route '${route}' must start with '/'` };
  if (route.length > MAX_ROUTE_CHARS) return { error: `route is longer than ${MAX_ROUTE_CHARS} characters` };
  if (/[?#]/.test(route)) {
    return { error: `route '${route}' must not contain '?' or '#': routes are stored without query string` };
  }
  const segments = route.slice(1).split('/');
  if (!segments.some((s) => s.startsWith(':') || s.includes('*'))) return { kind: 'exact', path: route };
  let regex = '^';
  for (const segment of segments) {
    if (segment === '**') {
      regex += '(/.*)?';
    } else if (segment.includes('**')) {
      return { error: `'**' must be a whole segment, as in /v1/**, not '${segment}'` };
    } else if (segment.startsWith(':')) {
      if (!PARAM_NAME.test(segment.slice(1))) {
        return { error: `template segment '${segment}' must be ':' and a name such as :id` };
      }
      regex += '/[^/]+';
    } else {
      regex += '/' + segment.split('*').map(escapeRegex).join('[^/]*');
    }
  }
  return { kind: 'pattern', regex: `${regex}$` };
}

const routeSchema = z
  .string({ error: 'a route must be a string such as /v1/widgets' })
  .superRefine((r, ctx) => {
    const parsed = parseRoute(r);
    if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
  });

// ---------------------------------------------------------------------------------------------------
// Status

const STATUS_CLASS = /^([1-5])xx$/;
const STATUS_RANGE = /^(\d{3})-(\d{3})$/;

/** The inclusive range of codes a status spec means: 200 → 200..200, '2xx' → 200..299. */
export function parseStatusSpec(spec: number | string): { from: number; to: number } | { error: string } {
  const expectation = "a status must be a code (200), a class ('2xx') or a range ('200-299')";
  if (typeof spec === 'number') {
    return Number.isInteger(spec) && spec >= 100 && spec <= 599
      ? { from: spec, to: spec }
      : { error: `status ${spec} must be an integer from 100 to 599` };
  }
  const cls = STATUS_CLASS.exec(spec);
  if (cls) return { from: Number(cls[1]) * 100, to: Number(cls[1]) * 100 + 99 };
  const range = STATUS_RANGE.exec(spec);
  if (!range) return { error: `${expectation}, got '${spec}'` };
  const from = Number(range[1]);
  const to = Number(range[2]);
  if (from < 100 || to > 599 || from > to) {
    return { error: `status range '${spec}' must go up, from 100 to 599` };
  }
  return { from, to };
}

const statusSpecSchema = z
  .union([z.number(), z.string()], {
    error: "a status must be a code (200), a class ('2xx') or a range ('200-299')",
  })
  .superRefine((spec, ctx) => {
    const parsed = parseStatusSpec(spec);
    if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
  });

// ---------------------------------------------------------------------------------------------------
// Where conditions

/**
 * Where operators. Text fields are the text columns, `metadata.<key>` and headers; a missing metadata
 * key or header reads as '' (so `ne`/`not_in` match it), and numbers or true/false given for a text
 * field are compared as the collector stores them, String(value). Integer columns take integers ≥ 0.
 * - eq ne in not_in: equality, or membership in a non-empty list;
 * - gt gte lt lte: integer columns numerically; a text field with an integer value numerically too,
 *   where it holds a whole integer (other rows do not match), and with a string value as text (bytes);
 * - exists (no value): the metadata key or header is present; a text column is not empty;
 * - prefix: starts with the string; matches: RE2 regex, unanchored (write ^…$ to anchor).
 */
export const OPS = [
  'eq',
  'ne',
  'in',
  'not_in',
  'gt',
  'gte',
  'lt',
  'lte',
  'exists',
  'prefix',
  'matches',
] as const;
export type Op = (typeof OPS)[number];
export type Scalar = string | number | boolean;

/** ClickHouse's RE2 works on bytes; 256 characters keeps a pattern readable and cheap to compile. */
export const MAX_REGEX_CHARS = 256;

/**
 * Why RE2 (as in ClickHouse 18.16 and later) would refuse `re`, as far as can be told without RE2
 * itself: unbalanced groups or classes, and Perl constructs RE2 lacks (backreferences, lookaround,
 * atomic groups, possessive quantifiers, `(?<name>…)`, which 18.16 refuses; `(?P<name>…)` works).
 * Anything this misses fails the evaluation query with ClickHouse's message, never silently.
 */
export function re2Problem(re: string): string | undefined {
  let depth = 0;
  for (let i = 0; i < re.length; i++) {
    const c = re[i];
    if (c === '\\') {
      const next = re[i + 1];
      if (next === undefined) return 'ends with a lone backslash';
      if (next === 'Q') {
        const end = re.indexOf('\\E', i + 2);
        if (end < 0) return undefined; // \Q without \E quotes the rest
        i = end + 1;
        continue;
      }
      if (/[1-9]/.test(next)) return `backreference \\${next} is not supported by RE2`;
      if (next === 'k') return 'named backreferences (\\k) are not supported by RE2';
      if (next === 'Z' || next === 'G') return `\\${next} is not supported by RE2 (use \\z or $)`;
      i++;
    } else if (c === '[') {
      let j = i + 1;
      if (re[j] === '^') j++;
      if (re[j] === ']') j++;
      for (; j < re.length && re[j] !== ']'; j++) {
        if (re[j] === '\\') j++;
        else if (re.startsWith('[:', j)) {
          const end = re.indexOf(':]', j + 2);
          if (end > 0) j = end + 1;
        }
      }
      if (j >= re.length) return "unterminated character class '['";
      i = j;
    } else if (c === '(') {
      depth++;
      if (re[i + 1] !== '?') continue;
      const rest = re.slice(i + 2);
      if (/^(=|!|<=|<!)/.test(rest)) return 'lookahead and lookbehind are not supported by RE2';
      if (rest.startsWith('>')) return 'atomic groups (?>…) are not supported by RE2';
      if (rest.startsWith('<'))
        return 'write named groups as (?P<name>…): ClickHouse 18.16 refuses (?<name>…)';
      if (!/^(P<[A-Za-z_][A-Za-z0-9_]*>|[imsU]*(-[imsU]+)?[:)])/.test(rest))
        return 'unknown group syntax (?…';
    } else if (c === ')') {
      depth--;
      if (depth < 0) return "unbalanced ')'";
    } else if ((c === '*' || c === '+' || c === '?' || c === '}') && re[i + 1] === '+') {
      return 'possessive quantifiers (such as a++) are not supported by RE2';
    }
  }
  return depth === 0 ? undefined : "unbalanced '('";
}

const scalarSchema = z.union([z.string(), z.number(), z.boolean()]);

export interface WhereCondition {
  field: string;
  op: Op;
  /** Absent for `exists`; a list for `in`/`not_in`; one value otherwise. */
  value?: Scalar | Scalar[];
}

function checkCondition(cond: WhereCondition, ctx: z.RefinementCtx): void {
  const ref = parseField(cond.field);
  if ('error' in ref) return; // reported by the field's own schema
  const problem = (message: string, path: (string | number)[] = ['value']) =>
    ctx.addIssue({ code: 'custom', path, message });
  const { op, value } = cond;
  const isInteger = ref.type === 'integer';
  const integerOk = (v: Scalar) => typeof v === 'number' && Number.isSafeInteger(v);
  // The integer columns are all unsigned; 18.16 refuses `status IN (-1)` rather than matching nothing.
  const unsignedOk = (v: Scalar) => integerOk(v) && (v as number) >= 0;
  const integerMessage = `'${cond.field}' is an unsigned integer column: op '${op}' needs an integer ≥ 0`;

  if (op === 'exists') {
    if (value !== undefined) problem("op 'exists' takes no value");
    if (isInteger)
      problem(`op 'exists' applies to text columns, metadata and headers, not '${cond.field}'`, ['op']);
    return;
  }
  if (value === undefined) {
    problem(`op '${op}' needs a value${op === 'in' || op === 'not_in' ? ' (a list)' : ''}`, []);
    return;
  }
  if (op === 'in' || op === 'not_in') {
    if (!Array.isArray(value) || value.length === 0) {
      problem(`op '${op}' needs a non-empty list of values`);
    } else if (isInteger) {
      value.forEach((v, i) => {
        if (!unsignedOk(v)) problem(integerMessage, ['value', i]);
      });
    }
    return;
  }
  if (Array.isArray(value)) {
    problem(`op '${op}' needs a single value, not a list (use 'in' for a list)`);
    return;
  }
  switch (op) {
    case 'eq':
    case 'ne':
      if (isInteger && !unsignedOk(value)) problem(integerMessage);
      return;
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      if (
        isInteger
          ? !unsignedOk(value)
          : typeof value === 'boolean' || (typeof value === 'number' && !integerOk(value))
      ) {
        problem(
          isInteger
            ? integerMessage
            : `op '${op}' needs an integer (compares numerically) or a string (compares as text)`,
        );
      }
      return;
    case 'prefix':
    case 'matches':
      if (isInteger) {
        problem(`op '${op}' applies to text columns, metadata and headers, not '${cond.field}'`, ['op']);
      } else if (typeof value !== 'string' || value === '') {
        problem(`op '${op}' needs a non-empty string`);
      } else if (op === 'matches') {
        if ([...value].length > MAX_REGEX_CHARS) {
          problem(`the regex is longer than ${MAX_REGEX_CHARS} characters`);
        } else {
          const why = re2Problem(value);
          if (why !== undefined) problem(`invalid RE2 regex: ${why}`);
        }
      }
      return;
  }
}

const whereConditionSchema = strict({
  field: fieldSchema,
  op: z.enum(OPS, { error: `must be one of ${OPS.join(', ')}` }),
  value: z
    .union([scalarSchema, z.array(scalarSchema)], {
      error: 'must be a string, a number, true/false or a list of them',
    })
    .optional(),
}).superRefine(checkCondition);

// ---------------------------------------------------------------------------------------------------
// Aggregation and customer

export const AGGREGATION_TYPES = ['count', 'sum', 'min', 'max', 'unique_count', 'latest'] as const;
export type AggregationType = (typeof AGGREGATION_TYPES)[number];

// What each type means for evaluation, usage and Stripe: aggregations.ts.

const aggregationSchema = strict({
  type: z.enum(AGGREGATION_TYPES, { error: `must be one of ${AGGREGATION_TYPES.join(', ')}` }),
  value: fieldSchema.optional(),
}).superRefine((agg, ctx) => {
  if (agg.type === 'count') {
    if (agg.value !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: "'count' counts calls and takes no value" });
    }
    return;
  }
  if (agg.value === undefined) {
    ctx.addIssue({ code: 'custom', path: [], message: `'${agg.type}' needs a value field` });
    return;
  }
  const ref = parseField(agg.value);
  if ('error' in ref || agg.type === 'unique_count') return;
  const numeric = ref.kind === 'meta' || (NUMERIC_VALUE_COLUMNS as readonly string[]).includes(ref.column);
  if (!numeric) {
    ctx.addIssue({
      code: 'custom',
      path: ['value'],
      message:
        `'${agg.type}' needs a numeric field: ${NUMERIC_VALUE_COLUMNS.join(', ')}, ` +
        `or metadata.<key>/header.<name> holding integers; '${agg.value}' is not one`,
    });
  }
});

/** Who a call is billed to. `customer_key` is the collector's resolved key (explicit, else company, else user). */
const customerSchema = z
  .string({ error: 'must be company_id, user_id, customer_key, metadata.<key> or header.<name>' })
  .transform(normalizeFieldName)
  .superRefine((name, ctx) => {
    const ok =
      name === 'company_id' ||
      name === 'user_id' ||
      name === 'customer_key' ||
      ((name.startsWith('metadata.') || name.startsWith('header.')) && !('error' in parseField(name)));
    if (!ok) {
      ctx.addIssue({
        code: 'custom',
        message: `must be company_id, user_id, customer_key, metadata.<key> or header.<name>, got '${name}'`,
      });
    }
  });

// ---------------------------------------------------------------------------------------------------
// The meter

const nonEmptyList = <T extends z.ZodType>(item: T, what: string) =>
  z.array(item).min(1, `${what} must list at least one; leave the key out to match any`);

export const filterSchema = strict({
  routes: nonEmptyList(routeSchema, 'routes').optional(),
  methods: nonEmptyList(
    z
      .string()
      .regex(/^[A-Za-z]{1,16}$/, 'a method is 1 to 16 letters, such as GET')
      .transform((m) => m.toUpperCase()),
    'methods',
  ).optional(),
  status: z
    .union([statusSpecSchema, nonEmptyList(statusSpecSchema, 'status')])
    .transform((s) => (Array.isArray(s) ? s : [s]))
    .optional(),
  where: nonEmptyList(whereConditionSchema, 'where').optional(),
});

const ISO_WITH_OFFSET = z.iso.datetime({ offset: true });

export const meterSchema = strict({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,62}$/, 'must be a slug: a lower-case letter, then up to 62 of a-z 0-9 _ -'),
  description: z.string(),
  filter: filterSchema.default({}),
  aggregation: aggregationSchema,
  customer: customerSchema.default('company_id'),
  unit: z.string().min(1, 'must not be empty'),
  stripe: strict({
    event_name: z
      .string()
      .regex(/^[a-zA-Z0-9_-]{1,100}$/, 'must be 1 to 100 of a-z A-Z 0-9 _ - (a Stripe meter event name)'),
  }).optional(),
  pricing: pricingSchema.optional(),
  /** For governance (alerts, limits): not used to count or price. */
  quota: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  /** Thresholds that send an alert once per customer and period (alert-thresholds.ts). */
  alerts: z.array(alertSchema).optional(),
  effective_from: z
    .string()
    .superRefine((s, ctx) => {
      if (!ISO_WITH_OFFSET.safeParse(s).success) {
        ctx.addIssue({
          code: 'custom',
          message: 'must be an ISO time with a zone, such as 2025-01-01T00:00:00Z',
        });
      } else if (new Date(s).getTime() % 3_600_000 !== 0) {
        ctx.addIssue({ code: 'custom', message: 'must be a whole hour: usage is computed per hour' });
      }
    })
    .transform((s) => new Date(s).toISOString())
    .optional(),
}).superRefine(checkAlerts);

/** A validated meter, with defaults applied, methods upper-cased and header names lower-cased. */
export type MeterDefinition = z.output<typeof meterSchema>;
/** A meter as written (before defaults). */
export type MeterInput = z.input<typeof meterSchema>;
export type MeterFilter = MeterDefinition['filter'];
export type MeterAggregation = MeterDefinition['aggregation'];
