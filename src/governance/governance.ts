import { createHash } from 'node:crypto';
import type { CustomerStatus, StatusReason } from '../billing/stripe/billing-status.ts';
import { DomainError } from '../errors.ts';
import type { LoadedRule } from './load-rules.ts';
import type { Membership } from './membership.ts';
import { matchesRegexConfig, regexConfig, type RegexGroup, type RequestFacts } from './request-conditions.ts';
import { MERGE_TAGS, responseStatus, type MergeTag, type RuleDefinition } from './rule-schema.ts';

/**
 * Decisions from memory: the loaded rules (replaced whole on a reload) and the membership snapshot.
 * Three views of the same decision: the Moesif SDK contract (`/v1/rules`, `/v1/config`), which our
 * ingest middleware reads too, and the access check. Rules are in priority order (file names): the
 * first that applies to a customer and matches the request decides.
 */

/** A rule as Moesif's SDKs read it (moesif-nodejs lib/governanceRulesManager.js). */
export interface MoesifRule {
  _id: string;
  name: string;
  type: 'company';
  block: true;
  applied_to: 'matching';
  applied_to_unidentified: false;
  regex_config: RegexGroup[];
  response: { status: number; headers: Record<string, string>; body: Record<string, unknown> };
  variables: { name: MergeTag; path: string }[];
}

export interface MoesifConfig {
  sample_rate: number;
  company_rules: Record<string, { rules: string; values: Record<string, string> }[]>;
  user_rules: Record<string, never>;
}

export type MergeValues = Partial<Record<MergeTag, string>>;

export interface AccessDecision {
  customer: string;
  allowed: boolean;
  status: CustomerStatus['status'];
  rule?: {
    name: string;
    file: string;
    response: { status: number; headers: Record<string, string>; body: unknown };
  };
  quotas: { meter: string; quota: number; usage: string; remaining: string }[];
}

export class Governance {
  private loaded: readonly LoadedRule[] = [];
  /** Each rule's conditions, compiled once per load: the access path only matches. */
  private conditions = new Map<string, RegexGroup[]>();

  constructor(private readonly membership: Membership) {}

  rules(): readonly LoadedRule[] {
    return this.loaded;
  }

  replaceRules(rules: readonly LoadedRule[]): void {
    this.conditions = new Map(rules.map((r) => [r.definition.name, regexConfig(r.definition)]));
    this.loaded = rules;
  }

  moesifRules(): MoesifRule[] {
    return this.loaded.map(({ definition: r }) => ({
      _id: r.name,
      name: r.name,
      type: 'company',
      block: true,
      applied_to: 'matching',
      applied_to_unidentified: false,
      regex_config: regexConfig(r),
      response: { status: responseStatus(r), headers: r.response.headers, body: r.response.body },
      variables: MERGE_TAGS.map((name) => ({ name, path: name })),
    }));
  }

  /**
   * Which companies each rule applies to now, with the merge-tag values. The SDK applies every
   * applicable rule in the listed order and the last block wins, so a company's entries are listed
   * lowest priority first.
   */
  moesifConfig(): { body: MoesifConfig; etag: string } {
    const companyRules: MoesifConfig['company_rules'] = {};
    for (const [customer, status] of this.membership.all()) {
      const entries = this.loaded
        .map(({ definition }) => ({ definition, values: appliesTo(definition, status) }))
        .filter((e): e is { definition: RuleDefinition; values: MergeValues } => e.values !== undefined)
        .map((e) => ({ rules: e.definition.name, values: e.values as Record<string, string> }))
        .reverse();
      if (entries.length > 0) companyRules[customer] = entries;
    }
    const body = { sample_rate: 100, company_rules: companyRules, user_rules: {} };
    return { body, etag: this.etag() };
  }

  /** Changes when membership or the rules change: Moesif SDKs then fetch /v1/config again. */
  etag(): string {
    return createHash('sha256')
      .update(this.membership.version())
      .update(JSON.stringify(this.moesifRules()))
      .digest('hex')
      .slice(0, 20);
  }

  access(
    customer: string,
    request: Pick<RequestFacts, 'route' | 'method'> & Partial<RequestFacts>,
  ): AccessDecision {
    const status = this.membership.status(customer);
    if (!status) {
      throw new DomainError(
        'not_found',
        `no customer '${customer}' is known: it has sent no metered call and has no mapping`,
        {
          field: 'id',
        },
      );
    }
    const facts: RequestFacts = { headers: {}, ...request };
    const quotas = status.meters
      .filter((m) => m.quota !== undefined)
      .map((m) => {
        const left = BigInt(m.quota!) - BigInt(m.usage);
        return {
          meter: m.meter,
          quota: m.quota!,
          usage: m.usage,
          remaining: (left > 0n ? left : 0n).toString(),
        };
      });
    for (const { definition, file } of this.loaded) {
      const values = appliesTo(definition, status);
      const groups = this.conditions.get(definition.name) ?? regexConfig(definition);
      if (values === undefined || !matchesRegexConfig(groups, facts)) continue;
      return {
        customer,
        allowed: false,
        status: status.status,
        rule: {
          name: definition.name,
          file,
          response: {
            status: responseStatus(definition),
            headers: fillMergeTags(definition.response.headers, values) as Record<string, string>,
            body: fillMergeTags(definition.response.body, values),
          },
        },
        quotas,
      };
    }
    return { customer, allowed: true, status: status.status, quotas };
  }
}

/** The merge-tag values if the rule applies to the customer of this status, else undefined. */
export function appliesTo(rule: RuleDefinition, status: CustomerStatus): MergeValues | undefined {
  const base = { customer: status.customer };
  const a = rule.applies_to;
  if ('customers' in a) return a.customers.includes(status.customer) ? base : undefined;
  const reason: StatusReason | undefined = status.reasons.find(
    (r) => r.code === a.status && (a.status !== 'over_quota' || a.meter === undefined || r.meter === a.meter),
  );
  if (!reason) return undefined;
  return {
    ...base,
    ...(reason.meter !== undefined ? { meter: reason.meter } : {}),
    ...(reason.quota !== undefined ? { quota: String(reason.quota) } : {}),
    ...(reason.usage !== undefined ? { usage: reason.usage } : {}),
  };
}

const TAG = /\{\{([^{}|]+)(\|([^}]+))?\}\}/g;

/**
 * `{{tag}}` and `{{tag|default}}` in every string of a JSON value, as the Moesif SDKs fill them
 * (a tag without a value and without a default becomes UNKNOWN), so every enforcer answers alike.
 */
export function fillMergeTags(value: unknown, values: MergeValues): unknown {
  if (typeof value === 'string') {
    return value.replace(TAG, (_m, name: string, _d, fallback: string | undefined) => {
      const v = values[name as MergeTag];
      return v !== undefined && v !== '' ? v : (fallback ?? 'UNKNOWN');
    });
  }
  if (Array.isArray(value)) return value.map((v) => fillMergeTags(v, values));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillMergeTags(v, values)]));
  }
  return value;
}
