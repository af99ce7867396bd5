import { useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { TimeChart } from '../chart.tsx';
import { Show, useLoad } from '../load.tsx';
import { Link, navigate } from '../router.tsx';
import { toYaml } from '../yaml.ts';

interface MeterList {
  meters: {
    name: string;
    description?: string;
    unit?: string;
    version: string;
    versions: { version: string; effective_from: string }[];
  }[];
}
interface UsagePoint {
  customer: string;
  window_start: string;
  value: string;
}

export function Meters() {
  const [list] = useLoad(() => api<MeterList>('GET', '/v1/meters'), []);
  return (
    <section>
      <h1>Meters</h1>
      <Show value={list}>
        {(l) => (
          <table>
            <thead>
              <tr>
                <th>meter</th>
                <th>unit</th>
                <th>version</th>
                <th>versions</th>
              </tr>
            </thead>
            <tbody>
              {l.meters.map((m) => (
                <tr key={m.name}>
                  <td>
                    <Link href={`/ui/meters/${encodeURIComponent(m.name)}`}>{m.name}</Link>
                  </td>
                  <td>{m.unit}</td>
                  <td>{m.version}</td>
                  <td>{m.versions.length}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Show>
    </section>
  );
}

const sumBig = (values: string[]) => values.reduce((a, v) => a + BigInt(v), 0n);

export function Meter(props: { name: string; params: URLSearchParams }) {
  const window = props.params.get('window') ?? 'day';
  const customer = props.params.get('customer') ?? undefined;
  const [meter] = useLoad(
    () =>
      api<{
        name: string;
        version: string;
        definition: object;
        versions: { version: string; effective_from: string }[];
      }>('GET', `/v1/meters/${encodeURIComponent(props.name)}`),
    [props.name],
  );
  const [usage] = useLoad(
    () =>
      api<{ from: string; to: string; usage: UsagePoint[] }>(
        'GET',
        `/v1/usage${query({ meter: props.name, window, customer })}`,
      ),
    [props.name, window, customer],
  );
  const go = (p: Record<string, string | undefined>) =>
    navigate(`/ui/meters/${encodeURIComponent(props.name)}${query({ window, customer, ...p })}`);
  return (
    <section>
      <h1>Meter {props.name}</h1>
      <Show value={meter}>
        {(m) => (
          <>
            <h2>Definition (version {m.version})</h2>
            <pre data-testid="meter-yaml">{toYaml(m.definition)}</pre>
            <h2>Versions</h2>
            <ul>
              {m.versions.map((v) => (
                <li key={v.version}>
                  {v.version} effective from {v.effective_from}
                </li>
              ))}
            </ul>
            <Preview yaml={toYaml(m.definition)} />
          </>
        )}
      </Show>
      <h2>Usage this period</h2>
      <p>
        {(['hour', 'day', 'month'] as const).map((w) => (
          <button key={w} disabled={w === window} onClick={() => go({ window: w })}>
            {w}
          </button>
        ))}{' '}
        {customer && (
          <span>
            customer {customer} <button onClick={() => go({ customer: undefined })}>all customers</button>
          </span>
        )}
      </p>
      <Show value={usage}>
        {(u) => {
          const byWindow = new Map<string, bigint>();
          const byCustomer = new Map<string, bigint>();
          for (const p of u.usage) {
            byWindow.set(p.window_start, (byWindow.get(p.window_start) ?? 0n) + BigInt(p.value));
            byCustomer.set(p.customer, (byCustomer.get(p.customer) ?? 0n) + BigInt(p.value));
          }
          const xs = [...byWindow.keys()].sort();
          const top = [...byCustomer].sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : 0)).slice(0, 10);
          return (
            <>
              <p>
                Total:{' '}
                <strong data-testid="meter-total">
                  {sumBig(u.usage.map((p) => p.value)).toLocaleString('en-US')}
                </strong>{' '}
                from {u.from} to {u.to}
              </p>
              <TimeChart
                label="usage over time"
                x={xs.map((x) => Date.parse(x) / 1000)}
                series={[{ label: 'usage', values: xs.map((x) => Number(byWindow.get(x))), bars: true }]}
              />
              <h2>Top customers</h2>
              <table data-testid="top-customers">
                <tbody>
                  {top.map(([c, v]) => (
                    <tr key={c}>
                      <td>
                        <Link href={`/ui/customers/${encodeURIComponent(c)}`}>{c}</Link>{' '}
                        <button onClick={() => go({ customer: c })}>chart</button>
                      </td>
                      <td>{v.toLocaleString('en-US')}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          );
        }}
      </Show>
    </section>
  );
}

function Preview(props: { yaml: string }) {
  const [yaml, setYaml] = useState(props.yaml);
  const [result, setResult] = useState<
    | { state: 'idle' }
    | { state: 'loading' }
    | { state: 'error'; message: string }
    | { state: 'ok'; total: string; customers: { customer: string; value: string }[] }
  >({ state: 'idle' });
  return (
    <form
      class="preview"
      onSubmit={(e) => {
        e.preventDefault();
        setResult({ state: 'loading' });
        api<{ total: string; customers: { customer: string; value: string }[] }>(
          'POST',
          '/v1/admin/meters/preview',
          { yaml },
        ).then(
          (r) => setResult({ state: 'ok', ...r }),
          (err: Error) => setResult({ state: 'error', message: err.message }),
        );
      }}
    >
      <h2>Preview an edited definition (this period, read-only)</h2>
      <textarea name="yaml" rows={14} value={yaml} onInput={(e) => setYaml(e.currentTarget.value)} />
      <button type="submit">Preview</button>
      {result.state === 'loading' && <p role="status">Running…</p>}
      {result.state === 'error' && (
        <p class="error" role="alert">
          {result.message}
        </p>
      )}
      {result.state === 'ok' && (
        <>
          <p>
            Would count{' '}
            <strong data-testid="preview-total">{BigInt(result.total).toLocaleString('en-US')}</strong>
          </p>
          <table data-testid="preview-customers">
            <tbody>
              {result.customers.map((c) => (
                <tr key={c.customer}>
                  <td>{c.customer}</td>
                  <td>{BigInt(c.value).toLocaleString('en-US')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </form>
  );
}
