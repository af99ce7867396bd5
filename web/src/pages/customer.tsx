import { useState } from 'preact/hooks';
import { api, ApiError, query } from '../api.ts';
import { Show, useLoad } from '../load.tsx';
import { Link, navigate } from '../router.tsx';

export interface TierLine {
  tier: number;
  from: string;
  up_to: string;
  quantity: string;
  unit_amount_decimal: string;
  display: string;
}
export interface MeterUsage {
  meter: string;
  unit: string;
  quantity: string;
  cost?: { display: string };
  tiers?: TierLine[];
}

export function Customers() {
  const [list] = useLoad(
    () => api<{ customers: { customer_key: string }[] }>('GET', '/v1/customers?limit=200'),
    [],
  );
  return (
    <section>
      <h1>Customers</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const id = String(new FormData(e.currentTarget).get('id') ?? '');
          if (id) navigate(`/ui/customers/${encodeURIComponent(id)}`);
        }}
      >
        <input name="id" placeholder="customer key" /> <button type="submit">Open</button>
      </form>
      <Show value={list}>
        {(l) => (
          <ul>
            {l.customers.map((c) => (
              <li key={c.customer_key}>
                <Link href={`/ui/customers/${encodeURIComponent(c.customer_key)}`}>{c.customer_key}</Link>
              </li>
            ))}
          </ul>
        )}
      </Show>
    </section>
  );
}

/** Usage per meter priced by tier, with the tier lines: shared by the admin page and the portal. */
export function UsageTable(props: { meters: MeterUsage[] }) {
  return (
    <table data-testid="usage">
      <thead>
        <tr>
          <th>meter</th>
          <th>quantity</th>
          <th>cost so far</th>
        </tr>
      </thead>
      <tbody>
        {props.meters.map((m) => (
          <>
            <tr key={m.meter} class="meter-row">
              <td>{m.meter}</td>
              <td class="quantity">
                {BigInt(m.quantity).toLocaleString('en-US')} {m.unit}
              </td>
              <td class="cost" data-testid={`cost-${m.meter}`}>
                {m.cost?.display ?? 'not priced'}
              </td>
            </tr>
            {(m.tiers ?? []).map((t) => (
              <tr key={`${m.meter}-${t.tier}`} class="tier-line" data-testid={`tier-${m.meter}`}>
                <td>
                  tier {t.tier}: {t.from} to {t.up_to === 'inf' ? '∞' : t.up_to}
                </td>
                <td>
                  {BigInt(t.quantity).toLocaleString('en-US')} × {t.unit_amount_decimal}¢
                </td>
                <td>{t.display}</td>
              </tr>
            ))}
          </>
        ))}
      </tbody>
    </table>
  );
}

export function Customer(props: { id: string }) {
  const path = encodeURIComponent(props.id);
  const [usage] = useLoad(
    () => api<{ period: { id: string }; meters: MeterUsage[] }>('GET', `/v1/customers/${path}/usage`),
    [props.id],
  );
  const [billing] = useLoad(
    () =>
      Promise.all([
        api<Record<string, unknown>>('GET', `/v1/customers/${path}/status`),
        api<{ stripe_customer_id: string; source: string }>(
          'GET',
          `/v1/admin/customers/${path}/stripe-customer`,
        ).catch(() => undefined),
      ]),
    [props.id],
  );
  const [link, setLink] = useState<string>();
  return (
    <section>
      <h1 data-testid="customer-name">Customer {props.id}</h1>
      <Show value={usage}>
        {(u) => (
          <>
            <h2>Usage in {u.period.id}</h2>
            <UsageTable meters={u.meters} />
          </>
        )}
      </Show>
      <h2>Stripe</h2>
      <Show value={billing}>
        {([status, mapping]) => (
          <dl>
            <dt>Stripe customer</dt>
            <dd>
              {mapping ? `${mapping.stripe_customer_id} (${mapping.source})` : 'not mapped: usage is held'}
            </dd>
            {Object.entries(status)
              .filter(([, v]) => typeof v !== 'object')
              .map(([k, v]) => (
                <>
                  <dt key={k}>{k.replaceAll('_', ' ')}</dt>
                  <dd>{String(v)}</dd>
                </>
              ))}
          </dl>
        )}
      </Show>
      <h2>Governance</h2>
      <Governance id={props.id} />
      <h2>Sync ledger</h2>
      <SyncLedger id={props.id} />
      <h2>Customer page</h2>
      <button
        onClick={() =>
          api<{ url: string }>('POST', `/v1/admin/customers/${path}/portal-links`, {}).then((r) =>
            setLink(r.url),
          )
        }
      >
        Make a 7-day link
      </button>
      {link && <input readOnly value={link} data-testid="portal-link" size={80} />}
    </section>
  );
}

interface AccessDecision {
  allowed: boolean;
  status: string;
  rule?: { name: string; file: string; response: { status: number } };
  quotas: { meter: string; quota: number; usage: string; remaining: string }[];
}

/** The access decision for a call to a route (default /): status, the blocking rule if any, quotas left. */
function Governance(props: { id: string }) {
  const [route, setRoute] = useState('/');
  const [access] = useLoad(
    () =>
      api<AccessDecision>(
        'GET',
        `/v1/customers/${encodeURIComponent(props.id)}/access${query({ route })}`,
      ).catch((err: unknown) => {
        // A customer the service has never heard of is a state, not a failure: no rule applies to it.
        if (err instanceof ApiError && err.status === 404) return undefined;
        throw err;
      }),
    [props.id, route],
  );
  return (
    <>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setRoute(String(new FormData(e.currentTarget).get('route') ?? '/') || '/');
        }}
      >
        <label>
          A call to <input name="route" defaultValue={route} size={30} />
        </label>{' '}
        <button type="submit">Check</button>
      </form>
      <Show value={access}>
        {(a) =>
          a === undefined ? (
            <p data-testid="governance-unknown" class="muted">
              Not known to the service yet (no metered call, no mapping): no rule applies to this customer.
            </p>
          ) : (
            <div data-testid="governance">
              <p>
                Status <strong data-testid="governance-status">{a.status}</strong>:{' '}
                {a.allowed ? (
                  <span data-testid="governance-decision">allowed</span>
                ) : (
                  <span data-testid="governance-decision" class="blocked">
                    blocked by {a.rule?.name} ({a.rule?.file}, answers {a.rule?.response.status})
                  </span>
                )}
              </p>
              {a.quotas.length > 0 && (
                <table data-testid="quotas">
                  <thead>
                    <tr>
                      <th>meter</th>
                      <th>quota</th>
                      <th>usage</th>
                      <th>remaining</th>
                    </tr>
                  </thead>
                  <tbody>
                    {a.quotas.map((q) => (
                      <tr key={q.meter}>
                        <td>{q.meter}</td>
                        <td>{q.quota.toLocaleString('en-US')}</td>
                        <td>{BigInt(q.usage).toLocaleString('en-US')}</td>
                        <td>{BigInt(q.remaining).toLocaleString('en-US')}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </div>
          )
        }
      </Show>
    </>
  );
}

interface LedgerOp {
  op_id: string;
  kind: string;
  meter: string;
  hour: string;
  revision: number;
  value: string;
  state: string;
  detail: string;
  intent_at: string;
  recorded_at: string;
  stripe_customer_id: string;
}

/** What was sent to Stripe for this customer, when, and the outcome: the newest 100 operations. */
function SyncLedger(props: { id: string }) {
  const [ledger] = useLoad(
    () => api<{ data: LedgerOp[] }>('GET', `/v1/admin/customers/${encodeURIComponent(props.id)}/sync-ledger`),
    [props.id],
  );
  return (
    <Show value={ledger}>
      {(l) =>
        l.data.length === 0 ? (
          <p data-testid="sync-ledger-empty" class="muted">
            Nothing sent to Stripe for this customer yet.
          </p>
        ) : (
          <table data-testid="sync-ledger">
            <thead>
              <tr>
                <th>intent at</th>
                <th>meter</th>
                <th>hour</th>
                <th>kind</th>
                <th>revision</th>
                <th>value</th>
                <th>state</th>
                <th>recorded at</th>
                <th>detail</th>
              </tr>
            </thead>
            <tbody>
              {l.data.map((o) => (
                <tr key={o.op_id} data-op-id={o.op_id}>
                  <td>{o.intent_at}</td>
                  <td>{o.meter}</td>
                  <td class="hour">{o.hour}</td>
                  <td>{o.kind}</td>
                  <td>{o.revision}</td>
                  <td class="value">{BigInt(o.value).toLocaleString('en-US')}</td>
                  <td class="state">{o.state}</td>
                  <td>{o.recorded_at}</td>
                  <td>{o.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      }
    </Show>
  );
}
