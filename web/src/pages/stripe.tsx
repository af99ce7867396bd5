import { useState } from 'preact/hooks';
import { api } from '../api.ts';
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
              },
              (err: Error) => setRun(err.message),
            );
          }}
        >
          Run a sync now
        </button>{' '}
        <span data-testid="sync-result">{run}</span>
      </p>
      <p>
        Discrepancies:{' '}
        {['open', 'resolved', 'all'].map((s) => (
          <button key={s} disabled={s === status} onClick={() => navigate(`/ui/stripe?status=${s}`)}>
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
    </section>
  );
}
