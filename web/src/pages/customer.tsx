import { useState } from 'preact/hooks';
import { api } from '../api.ts';
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
      {/* GOVERNANCE SLOT (issue 9): governance status and blocks of this customer go here once the
          governance API lands. Nothing is built for it yet. */}
      <h2>Governance</h2>
      <p data-testid="governance-slot" class="muted">
        Governance status is not available in this version.
      </p>
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
