import { api, query } from '../api.ts';
import { TimeChart } from '../chart.tsx';
import { Show, useLoad } from '../load.tsx';
import { navigate } from '../router.tsx';

const FIELDS = [
  'from',
  'to',
  'customer',
  'route',
  'method',
  'status',
  'status_class',
  'meta_key',
  'meta_value',
] as const;

interface LogRow {
  event_id: string;
  request_time: string;
  customer: string;
  method: string;
  route: string;
  status: number;
  latency_ms: number;
  metadata: Record<string, string>;
}

export function Explorer(props: { params: URLSearchParams }) {
  const filters = Object.fromEntries(FIELDS.map((f) => [f, props.params.get(f) ?? undefined]));
  const before = props.params.get('before') ?? undefined;
  const key = props.params.toString();
  const [data] = useLoad(
    () =>
      Promise.all([
        api<{
          total: number;
          bucket_seconds: number;
          from: string;
          to: string;
          buckets: { start: string; calls: number }[];
        }>('GET', `/v1/admin/request-logs/histogram${query(filters)}`),
        api<{ logs: LogRow[]; next: string | null }>(
          'GET',
          `/v1/admin/request-logs${query({ ...filters, before, limit: '50' })}`,
        ),
      ]),
    [key],
  );
  return (
    <section>
      <h1>Request log explorer</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const form = new FormData(e.currentTarget);
          navigate(
            `/ui/explorer${query(Object.fromEntries(FIELDS.map((f) => [f, String(form.get(f) ?? '')])))}`,
          );
        }}
      >
        {FIELDS.map((f) =>
          f === 'status_class' ? (
            <label key={f}>
              status class
              <select name={f} value={filters[f] ?? ''}>
                <option value="">any</option>
                {['1xx', '2xx', '3xx', '4xx', '5xx'].map((c) => (
                  <option key={c}>{c}</option>
                ))}
              </select>
            </label>
          ) : (
            <label key={f}>
              {f.replace('_', ' ')}
              <input
                name={f}
                value={filters[f] ?? ''}
                placeholder={f === 'from' || f === 'to' ? 'ISO-8601' : ''}
              />
            </label>
          ),
        )}
        <button type="submit">Apply</button>
      </form>
      <Show value={data}>
        {([hist, page]) => (
          <>
            <p>
              <strong data-testid="explorer-total">{hist.total.toLocaleString('en-US')}</strong> matching
              calls from {hist.from} to {hist.to}
            </p>
            <TimeChart
              label="matching calls over time"
              x={hist.buckets.map((b) => Date.parse(b.start) / 1000)}
              series={[{ label: 'calls', values: hist.buckets.map((b) => b.calls), bars: true }]}
              height={160}
            />
            <table data-testid="explorer-rows">
              <thead>
                <tr>
                  <th>time (UTC)</th>
                  <th>customer</th>
                  <th>method</th>
                  <th>route</th>
                  <th>status</th>
                  <th>ms</th>
                  <th>metadata</th>
                </tr>
              </thead>
              <tbody>
                {page.logs.map((r) => (
                  <tr key={r.event_id}>
                    <td>{r.request_time}</td>
                    <td>{r.customer}</td>
                    <td>{r.method}</td>
                    <td class="route">{r.route}</td>
                    <td class="status">{r.status}</td>
                    <td>{r.latency_ms}</td>
                    <td class="meta">
                      {Object.entries(r.metadata)
                        .map(([k, v]) => `${k}=${v}`)
                        .join(' ')}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {page.logs.length === 0 && <p>No calls match.</p>}
            <p>
              {before && <button onClick={() => history.back()}>Newer</button>}{' '}
              {page.next && (
                <button onClick={() => navigate(`/ui/explorer${query({ ...filters, before: page.next! })}`)}>
                  Older
                </button>
              )}
            </p>
          </>
        )}
      </Show>
    </section>
  );
}
