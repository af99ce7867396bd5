import { api } from '../api.ts';
import { TimeChart } from '../chart.tsx';
import { Show, useLoad } from '../load.tsx';

interface Histogram {
  bucket_seconds: number;
  total: number;
  buckets: { start: string; calls: number }[];
}

export function Overview() {
  const [data] = useLoad(async () => {
    const to = new Date();
    const from = new Date(to.getTime() - 6 * 3600_000);
    const [ready, evaluation, open, held, hist] = await Promise.all([
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
    ]);
    return { ready, evaluation, open, held, hist };
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
