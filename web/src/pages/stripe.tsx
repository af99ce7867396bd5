import { useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { Show, useLoad } from '../load.tsx';
import { navigate } from '../router.tsx';

interface Discrepancy {
  meter: string;
  customer: string;
  hour: string;
  kind: string;
  expected: string;
  sent: string;
  detail: string;
  resolved: boolean;
}
interface Held {
  meter: string;
  customer: string;
  hours: number;
  value: string;
  oldestHour: string;
  sendableUntil: string;
}

interface SyncRun {
  trigger: string;
  started_at: string;
  finished_at: string;
  outcome: string;
  report: { sent: number; duplicates: number; rejected: number; pending: number; held: unknown[] } | null;
  error: string | null;
}
interface ReconcileLine {
  meter: string;
  customer: string;
  stripe_customer_id: string | null;
  ours: string;
  stripe: string | null;
  difference: string | null;
  status: string;
}
interface PushPlan {
  meters: { name: string; steps: { object: string; action: string; line: string }[] }[];
  skipped: string[];
  counts: { create: number; update: number; unchanged: number; conflict: number };
}

/** The page's own URL keeps the chosen discrepancy status and reconcile period (back and forward work). */
function stripeUrl(params: URLSearchParams, change: Record<string, string | undefined>): string {
  const next = Object.fromEntries(params);
  return `/ui/stripe${query({ ...next, ...change })}`;
}

export function Stripe(props: { params: URLSearchParams }) {
  const status = props.params.get('status') ?? 'open';
  const [data, reload] = useLoad(
    () =>
      Promise.all([
        api<{ data: Discrepancy[] }>('GET', `/v1/sync/discrepancies?status=${status}`),
        api<{ data: Held[] }>('GET', '/v1/sync/held'),
      ]),
    [status],
  );
  const [runs, reloadRuns] = useLoad(
    () => api<{ data: SyncRun[] }>('GET', '/v1/admin/sync/runs?limit=20'),
    [],
  );
  const [run, setRun] = useState<string>();
  return (
    <section>
      <h1>Stripe</h1>
      <p>
        <button
          onClick={() => {
            setRun('running…');
            api<Record<string, unknown>>('POST', '/v1/admin/sync/run').then(
              (r) => {
                setRun(
                  `sent ${String(r.sent)}, held ${String(r.held)}, discrepancies ${String(r.discrepancies)}`,
                );
                reload();
                reloadRuns();
              },
              (err: Error) => {
                setRun(err.message);
                reloadRuns();
              },
            );
          }}
        >
          Run a sync now
        </button>{' '}
        <span data-testid="sync-result">{run}</span>
      </p>
      <h2>Sync runs (this process, newest first)</h2>
      <div data-testid="sync-runs-section">
        <Show value={runs}>
          {(r) =>
            r.data.length === 0 ? (
              <p class="muted" data-testid="sync-runs-empty">
                No sync has run since the service started.
              </p>
            ) : (
              <table data-testid="sync-runs">
                <thead>
                  <tr>
                    <th>started</th>
                    <th>trigger</th>
                    <th>outcome</th>
                    <th>sent</th>
                    <th>duplicates</th>
                    <th>rejected</th>
                    <th>pending</th>
                    <th>held</th>
                    <th>error</th>
                  </tr>
                </thead>
                <tbody>
                  {r.data.map((x, i) => (
                    <tr key={`${x.started_at}-${i}`}>
                      <td>{x.started_at}</td>
                      <td>{x.trigger}</td>
                      <td class={`outcome ${x.outcome}`}>{x.outcome}</td>
                      <td class="sent">{x.report?.sent ?? '-'}</td>
                      <td>{x.report?.duplicates ?? '-'}</td>
                      <td>{x.report?.rejected ?? '-'}</td>
                      <td>{x.report?.pending ?? '-'}</td>
                      <td>{x.report?.held.length ?? '-'}</td>
                      <td class="error">{x.error ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </Show>
      </div>
      <h2>Discrepancies</h2>
      <p>
        Show:{' '}
        {['open', 'resolved', 'all'].map((s) => (
          <button
            key={s}
            disabled={s === status}
            onClick={() => navigate(stripeUrl(props.params, { status: s }))}
          >
            {s}
          </button>
        ))}
      </p>
      <Show value={data}>
        {([d, held]) => (
          <>
            <table>
              <thead>
                <tr>
                  <th>meter</th>
                  <th>customer</th>
                  <th>hour</th>
                  <th>kind</th>
                  <th>expected</th>
                  <th>sent</th>
                  <th>reason</th>
                </tr>
              </thead>
              <tbody>
                {d.data.map((x) => (
                  <tr key={`${x.meter}${x.customer}${x.hour}${x.kind}`}>
                    <td>{x.meter}</td>
                    <td>{x.customer}</td>
                    <td>{x.hour}</td>
                    <td>{x.kind}</td>
                    <td>{x.expected}</td>
                    <td>{x.sent}</td>
                    <td>{x.detail}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {d.data.length === 0 && <p>No {status === 'all' ? '' : status} discrepancies.</p>}
            <h2>Held usage (customers without a Stripe customer)</h2>
            <table data-testid="held">
              <thead>
                <tr>
                  <th>meter</th>
                  <th>customer</th>
                  <th>hours</th>
                  <th>usage</th>
                  <th>oldest hour</th>
                  <th>sendable until</th>
                </tr>
              </thead>
              <tbody>
                {held.data.map((h) => (
                  <tr key={`${h.meter}${h.customer}`}>
                    <td>{h.meter}</td>
                    <td>{h.customer}</td>
                    <td>{h.hours}</td>
                    <td>{h.value}</td>
                    <td>{h.oldestHour}</td>
                    <td>{h.sendableUntil}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Show>
      <Reconcile params={props.params} />
      <PushPlanView />
    </section>
  );
}

const day = (d: Date) => d.toISOString().slice(0, 10);

/** Reconcile for the period in the URL (from, to): our totals against Stripe's, line by line. */
function Reconcile(props: { params: URLSearchParams }) {
  const from = props.params.get('from') ?? undefined;
  const to = props.params.get('to') ?? undefined;
  const [result] = useLoad(
    () =>
      from && to
        ? api<{ from: string; to: string; mismatches: number; lines: ReconcileLine[] }>(
            'GET',
            `/v1/admin/stripe/reconcile${query({ from, to })}`,
          )
        : Promise.resolve(undefined),
    [from, to],
  );
  const today = new Date();
  const monthStart = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1));
  return (
    <>
      <h2>Reconcile with Stripe</h2>
      <form
        class="reconcile"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget);
          navigate(stripeUrl(props.params, { from: String(f.get('from')), to: String(f.get('to')) }));
        }}
      >
        <label>
          from <input type="date" name="from" required defaultValue={from ?? day(monthStart)} />
        </label>{' '}
        <label>
          to (exclusive){' '}
          <input
            type="date"
            name="to"
            required
            defaultValue={to ?? day(new Date(today.getTime() + 86_400_000))}
          />
        </label>{' '}
        <button type="submit">Reconcile</button>
      </form>
      <Show value={result}>
        {(r) =>
          r === undefined ? (
            <p class="muted">Choose a period (at most 93 days) to compare our totals with Stripe's.</p>
          ) : (
            <>
              <p data-testid="reconcile-summary">
                {r.from} → {r.to}: {r.lines.length} line(s),{' '}
                {r.mismatches === 0 ? 'no mismatches' : `${r.mismatches} mismatch(es)`}
              </p>
              <table data-testid="reconcile">
                <thead>
                  <tr>
                    <th>meter</th>
                    <th>customer</th>
                    <th>stripe customer</th>
                    <th>ours</th>
                    <th>stripe</th>
                    <th>difference</th>
                    <th>status</th>
                  </tr>
                </thead>
                <tbody>
                  {r.lines.map((l) => (
                    <tr key={`${l.meter}${l.customer}`} data-customer={l.customer} data-meter={l.meter}>
                      <td>{l.meter}</td>
                      <td>{l.customer}</td>
                      <td>{l.stripe_customer_id ?? '-'}</td>
                      <td class="ours">{BigInt(l.ours).toLocaleString('en-US')}</td>
                      <td class="stripe">
                        {l.stripe === null ? '-' : BigInt(l.stripe).toLocaleString('en-US')}
                      </td>
                      <td>{l.difference ?? '-'}</td>
                      <td class={`status ${l.status === 'ok' ? '' : 'failed'}`}>{l.status}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )
        }
      </Show>
    </>
  );
}

/** What `billing-meter stripe push --apply` would change, read-only. */
function PushPlanView() {
  const [plan] = useLoad(() => api<PushPlan>('GET', '/v1/admin/stripe/push-plan'), []);
  return (
    <>
      <h2>Stripe push plan</h2>
      <Show value={plan}>
        {(p) => (
          <div data-testid="push-plan">
            <p data-testid="push-plan-counts">
              {p.counts.create} to create, {p.counts.update} to update, {p.counts.unchanged} unchanged,{' '}
              {p.counts.conflict} conflict(s)
            </p>
            <ul>
              {p.meters.map((m) =>
                m.steps.map((s) => (
                  <li key={`${m.name}-${s.object}`} class={`step ${s.action}`}>
                    <code>{s.line}</code>
                  </li>
                )),
              )}
            </ul>
            {p.skipped.length > 0 && (
              <p class="muted">Not pushed (no stripe block): {p.skipped.join(', ')}</p>
            )}
            {p.counts.create + p.counts.update > 0 && (
              <p class="muted">
                Apply with <code>billing-meter stripe push --apply</code>.
              </p>
            )}
          </div>
        )}
      </Show>
    </>
  );
}
