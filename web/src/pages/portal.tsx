import { api, ApiError } from '../api.ts';
import { TimeChart } from '../chart.tsx';
import { Show, useLoad } from '../load.tsx';
import { UsageTable, type MeterUsage } from './customer.tsx';

interface PortalUsage {
  customer: string;
  period: { id: string };
  link_expires_at: string;
  meters: MeterUsage[];
  daily: { meter: string; days: { day: string; value: string }[] }[];
  next_tier: { meter: string; at: string; to_go: string }[];
}

/** The customer's own page: reads only /v1/portal/usage, with the token of the link's fragment. */
export function Portal() {
  const token = location.hash.slice(1);
  const [data] = useLoad(
    () =>
      api<PortalUsage>('GET', '/v1/portal/usage', undefined, { authorization: `Bearer ${token}` }).catch(
        (err: unknown) => {
          // A customer sees why the link does not work, not our error's title.
          throw new Error(
            err instanceof ApiError ? err.detail : 'the usage could not be loaded: try again later',
          );
        },
      ),
    [token],
  );
  if (data.state === 'error')
    return (
      <main class="portal">
        <h1 data-testid="portal-error">This link cannot be used</h1>
        <p role="alert">{data.message}</p>
      </main>
    );
  return (
    <main class="portal">
      <Show value={data}>
        {(d) => (
          <>
            <h1 data-testid="portal-customer">Usage of {d.customer}</h1>
            <p class="muted">
              Billing period {d.period.id}; this link works until {d.link_expires_at}.
            </p>
            <UsageTable meters={d.meters} />
            {d.next_tier.map((n) => (
              <p key={n.meter} data-testid={`next-tier-${n.meter}`}>
                {n.meter}: {BigInt(n.to_go).toLocaleString('en-US')} more to reach the next tier (from {n.at}
                ).
              </p>
            ))}
            {d.daily
              .filter((m) => m.days.length > 0)
              .map((m) => (
                <div key={m.meter}>
                  <h2>{m.meter} per day</h2>
                  <TimeChart
                    label={`${m.meter} per day`}
                    x={m.days.map((x) => Date.parse(x.day) / 1000)}
                    series={[{ label: m.meter, values: m.days.map((x) => Number(x.value)), bars: true }]}
                  />
                </div>
              ))}
          </>
        )}
      </Show>
    </main>
  );
}
