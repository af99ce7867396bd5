// Request log rows written straight into ClickHouse, for tests of what reads them (meters, evaluation,
// usage) without the collector in between.
import type { ClickHouse } from '../../src/storage/clickhouse/clickhouse.ts';
import { requestLogRow } from './request-log-row.ts';

/** One POST call; what is left out is a 200 on /RetrieveCreditScore by user u1 of company co_a. */
export interface LogRow {
  id: string;
  at: Date;
  company?: string;
  user?: string;
  route?: string;
  status?: number;
  /** When the collector received it; default `at`. */
  received?: Date;
}

export async function insertRequestLogs(ch: ClickHouse, rows: readonly LogRow[]): Promise<void> {
  const lines = rows.map((r) =>
    JSON.stringify(
      requestLogRow({
        event_id: r.id,
        app: 'app1',
        received_at: Math.floor((r.received ?? r.at).getTime() / 1000),
        request_time: Math.floor(r.at.getTime() / 1000),
        request_time_ms: r.at.getTime() % 1000,
        customer_key: r.company ?? 'co_a',
        company_id: r.company ?? 'co_a',
        user_id: r.user ?? 'u1',
        method: 'POST',
        route: r.route ?? '/RetrieveCreditScore',
        status: r.status ?? 200,
        latency_ms: 5,
      }),
    ),
  );
  await ch.insertJsonEachRow('request_logs', Buffer.from(lines.join('\n') + '\n'));
}
