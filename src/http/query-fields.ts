import type { Context } from 'koa';
import { z } from 'zod';
import { DomainError } from '../errors.ts';
import { ACCEPTED_PERIOD_FORM, parsePeriod, type BillingPeriod } from '../time/billing-period.ts';
import { ACCEPTED_INSTANT_FORMS, parseInstant } from '../time/parse-instant.ts';

/**
 * Zod fields and helpers shared by the routes: times and periods read by the one parser of src/time
 * (so the API and the CLI accept the same forms), the invalid_request problem naming each field, and
 * CSV answers.
 */

const instantSchema = z.string().transform((text, ctx) => {
  const parsed = parseInstant(text);
  if (parsed instanceof Date) return parsed;
  ctx.addIssue({ code: 'custom', message: parsed.message });
  return z.NEVER;
});

/** A point in time, read by parseInstant; a bad one is an issue on the field naming the accepted forms. */
export const instantField = (description: string) =>
  instantSchema.meta({
    description: `${description} Accepted: ${ACCEPTED_INSTANT_FORMS}.`,
    examples: ['2026-11-01T00:00:00Z', '2026-11-01'],
  });

const periodSchema = z.string().transform((text, ctx): BillingPeriod => {
  const parsed = parsePeriod(text);
  if ('start' in parsed) return parsed;
  ctx.addIssue({ code: 'custom', message: parsed.message });
  return z.NEVER;
});

/** A billing period, 'YYYY-MM' (UTC). */
export const periodField = (description: string) =>
  periodSchema.meta({ description: `${description} ${ACCEPTED_PERIOD_FORM} (UTC).`, examples: ['2026-11'] });

/** `?format=`: the answer's form; CSV can also be asked for with `Accept: text/csv`. */
export const formatField = z
  .enum(['json', 'csv'])
  .optional()
  .meta({ description: 'json (default) or csv; `Accept: text/csv` asks for CSV too.' });

export interface FieldProblem {
  field: string;
  reason: string;
}

/** 400 invalid_request: `hint` says what the request takes, `errors` name each bad field. */
export function invalidRequest(hint: string, errors: FieldProblem[]): DomainError {
  return new DomainError('invalid_request', hint, { errors });
}

export function zodProblems(error: z.ZodError): FieldProblem[] {
  return error.issues.map((i) => ({ field: i.path.join('.'), reason: i.message }));
}

/** Parses with `schema`, or throws 400 naming each bad field. */
export function parseOr400<S extends z.ZodType>(schema: S, input: unknown, hint: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw invalidRequest(hint, zodProblems(parsed.error));
  return parsed.data;
}

/** Whether the caller asked for CSV: `?format=csv`, or (without `format`) `Accept: text/csv` first. */
export function wantsCsv(ctx: Context, format: 'json' | 'csv' | undefined): boolean {
  if (format !== undefined) return format === 'csv';
  return ctx.accepts('application/json', 'text/csv') === 'text/csv';
}

/**
 * A cell that a spreadsheet shows as text: quoted when it holds a separator or quote, and quoted when
 * it starts like a formula (= + - @), so that a customer key cannot run as one.
 */
export const csvCell = (v: string) =>
  /[",\n\r]/.test(v) || /^[=+\-@]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;

/** Answers CSV as a download named `filename` (made of slugs and digits by the callers). */
export function sendCsv(ctx: Context, filename: string, header: string[], rows: string[][]): void {
  ctx.type = 'text/csv; charset=utf-8';
  ctx.set('Content-Disposition', `attachment; filename="${filename}"`);
  ctx.body = [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

/** '2026-11-01T00:00:00.000Z' → '20261101T000000Z', for file names. */
export const compactInstant = (d: Date) => d.toISOString().replace(/[-:]|\.\d{3}/g, '');
