// A webhook receiver for alert tests: every request is verified with Stripe's own library (our alerts
// are signed with Stripe's scheme), and kept. `answer` decides each response: a status, or 'hang'
// (the request is read and never answered, as a receiver that crashed mid-request).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { ALERT_SIGNATURE_HEADER } from '../../src/adapters/alerts/webhook-channel.ts';

export interface ReceivedAlert {
  /** The verified event (constructEvent threw for none of these). */
  event: { id: string; type: string; data: Record<string, unknown> };
  signature: string;
  /** The request's path and query (a drill tells its replicas apart by a query parameter). */
  path: string;
  /** Wall clock when it arrived, ms. */
  receivedAtMs: number;
}

export interface AlertReceiver {
  url: string;
  /** Requests whose signature verified. */
  verified: ReceivedAlert[];
  /** Ids of the events answered with a 2xx: what the receiver acknowledged. */
  acknowledged: string[];
  /** Requests whose signature did not verify, with the reason. */
  rejected: string[];
  close(): Promise<void>;
}

const sdk = new Stripe('sk_test_receiver');

export async function alertReceiver(
  secret: string,
  options: {
    answer?: (n: number, alert: ReceivedAlert) => number | 'hang';
    /** The receiver's clock, unix seconds (default the wall clock): signatures older than 300 s fail. */
    nowSeconds?: () => number;
    port?: number;
  } = {},
): Promise<AlertReceiver> {
  const verified: ReceivedAlert[] = [];
  const rejected: string[] = [];
  const acknowledged: string[] = [];
  const hanging: ServerResponse[] = [];
  let n = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    const receivedAtMs = Date.now();
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const signature = String(req.headers[ALERT_SIGNATURE_HEADER] ?? '');
      try {
        const event = sdk.webhooks.constructEvent(
          body,
          signature,
          secret,
          300,
          undefined,
          options.nowSeconds?.() ?? Math.floor(Date.now() / 1000),
        ) as unknown as ReceivedAlert['event'];
        const alert = { event, signature, path: req.url ?? '', receivedAtMs };
        verified.push(alert);
        const answer = options.answer?.(++n, alert) ?? 200;
        if (answer === 'hang') {
          hanging.push(res);
          return;
        }
        if (answer >= 200 && answer < 300) acknowledged.push(event.id);
        res.writeHead(answer, { 'content-type': 'application/json' }).end('{"received":true}');
      } catch (err) {
        rejected.push((err as Error).message);
        res.writeHead(400).end();
      }
    });
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/alerts`,
    verified,
    acknowledged,
    rejected,
    close: () =>
      new Promise((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
