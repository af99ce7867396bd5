import { api } from '../api.ts';
import { TimeChart } from '../chart.tsx';
import { Show, useLoad } from '../load.tsx';

interface Histogram {
  bucket_seconds: number;
  total: number;
  buckets: { start: string; calls: number }[];
}

interface Formats {
  since: string;
  formats: { format: string; accepted: number; rejected: number; unattributed: number }[];
}

export function Overview() {
  const [data] = useLoad(async () => {
    const to = new Date();
    const from = new Date(to.getTime() - 6 * 3600_000);
    const [ready, evaluation, open, held, hist, formats] = await Promise.all([
      fetch('/readyz').then(
        (r) => r.json() as Promise<{ status: string; clickhouse: string; spool: { bytes: number } }>,
      ),
      api<{ last_run: { run_at: string; closed_through: string; late_outside_window: number } | null }>(
        'GET',
        '/v1/admin/meters/evaluation',
      ),
      api<{ data: unknown[] }>('GET', '/v1/sync/discrepancies?status=open&limit=10000').catch(
        () => undefined,
      ),
      api<{ data: unknown[] }>('GET', '/v1/sync/held').catch(() => undefined),
      api<Histogram>(
        'GET',
        `/v1/admin/request-logs/histogram?from=${from.toISOString()}&to=${to.toISOString()}&buckets=360`,
      ),
      api<Formats>('GET', '/v1/admin/ingest/formats'),
    ]);
    return { ready, evaluation, open, held, hist, formats };
  }, []);
  return (
    <section>
      <h1>Overview</h1>
      <Show value={data}>
        {(d) => (
          <>
            <dl class="tiles">
              <div>
                <dt>Calls, last 6 hours</dt>
                <dd data-testid="overview-calls">{d.hist.total.toLocaleString('en-US')}</dd>
              </div>
              <div>
                <dt>ClickHouse</dt>
                <dd>{d.ready.clickhouse}</dd>
              </div>
              <div>
                <dt>Spool depth</dt>
                <dd>{d.ready.spool.bytes.toLocaleString('en-US')} bytes</dd>
              </div>
              <div>
                <dt>Last evaluation</dt>
                <dd>
                  {d.evaluation.last_run
                    ? `${d.evaluation.last_run.run_at} (closed through ${d.evaluation.last_run.closed_through})`
                    : 'none yet'}
                </dd>
              </div>
              <div>
                <dt>Open discrepancies</dt>
                <dd>{d.open ? d.open.data.length : 'Stripe sync off'}</dd>
              </div>
              <div>
                <dt>Held usage</dt>
                <dd>{d.held ? d.held.data.length : 'Stripe sync off'}</dd>
              </div>
            </dl>
            <h2>Events by format since {d.formats.since}</h2>
            {d.formats.formats.length === 0 ? (
              <p class="muted" data-testid="formats-empty">
                No events received since the service started.
              </p>
            ) : (
              <table data-testid="formats">
                <thead>
                  <tr>
                    <th>format</th>
                    <th>accepted</th>
                    <th>rejected</th>
                    <th>accepted without a customer</th>
                  </tr>
                </thead>
                <tbody>
                  {d.formats.formats.map((f) => (
                    <tr key={f.format} data-format={f.format}>
                      <td>{f.format}</td>
                      <td class="accepted">{f.accepted.toLocaleString('en-US')}</td>
                      <td class="rejected">{f.rejected.toLocaleString('en-US')}</td>
                      <td>{f.unattributed.toLocaleString('en-US')}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <h2>Calls per {d.hist.bucket_seconds / 60} minute(s)</h2>
            <TimeChart
              label="calls over time"
              x={d.hist.buckets.map((b) => Date.parse(b.start) / 1000)}
              series={[{ label: 'calls', values: d.hist.buckets.map((b) => b.calls), bars: true }]}
            />
          </>
        )}
      </Show>
    </section>
  );
}
