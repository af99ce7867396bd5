/**
 * Child process of the middleware bench: one small Express API, optionally with a logging middleware.
 *   argv: <variant: baseline|ours|moesif> <catcher port>
 * IPC: sends {type:'ready', port}; 'mark' → {type:'marked'}; 'stop' flushes the middleware, sends
 * {type:'stopped', stats, cpuMicros} (CPU used since 'mark') and exits.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import moesif from 'moesif-nodejs';
import { expressMiddleware } from '../../ingest/middleware.ts';
import type { ExpressMiddleware } from '../../ingest/middleware.ts';

const [variant, catcherPort] = process.argv.slice(2);
const collector = `http://127.0.0.1:${catcherPort}`;
const companyOf = (req: http.IncomingMessage): string | undefined => {
  const value = req.headers['x-company-id'];
  return typeof value === 'string' ? value : undefined;
};

const app = express();
let ours: ExpressMiddleware | undefined;
let moesifErrors = 0;
if (variant === 'ours') {
  ours = expressMiddleware({
    baseUrl: collector,
    apiKey: 'b'.repeat(60),
    identify: (req) => ({ company_id: companyOf(req) }),
  });
  app.use(ours);
} else if (variant === 'moesif') {
  app.use(
    moesif({
      applicationId: 'x'.repeat(60),
      baseUri: collector,
      // Like for like: neither middleware captures bodies (billing does not need them). Moesif's default
      // is logBody: true; BENCH_MOESIF_LOG_BODY=1 measures that.
      logBody: process.env.BENCH_MOESIF_LOG_BODY === '1',
      identifyCompany: (req: object) => companyOf(req as http.IncomingMessage),
      // batching on (the default): batchSize 200, batchMaxTime 2000 ms
      callback: (err: unknown) => {
        if (err) moesifErrors++;
      },
    }),
  );
} else if (variant !== 'baseline') {
  throw new Error(`unknown variant ${String(variant)}`);
}

app.get('/RetrieveCreditScore', (req, res) => {
  res.json({ company: companyOf(req) ?? null, score: 712, band: 'good', model: 'v4' });
});

const server = http.createServer(app);
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: (server.address() as AddressInfo).port });
});

// CPU time of this process from 'mark' (after warm-up) to the end of 'stop' (after the middleware has
// delivered everything): the API's cost including the middleware's background work (batching, gzip,
// sending), and less sensitive than req/s to what else runs on the machine.
let mark = process.cpuUsage();
process.on('message', (message) => {
  if (message === 'mark') {
    mark = process.cpuUsage();
    process.send?.({ type: 'marked' });
    return;
  }
  if (message !== 'stop') return;
  void (async () => {
    let stats: unknown = null;
    if (ours) {
      await ours.forwarder.close();
      stats = ours.forwarder.stats();
    } else if (variant === 'moesif') {
      // Moesif's batcher has no flush API: wait out its batchMaxTime (2 s) plus the send.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      stats = { errors: moesifErrors };
    }
    const used = process.cpuUsage(mark);
    process.send?.({ type: 'stopped', stats, cpuMicros: used.user + used.system }, () => process.exit(0));
  })();
});
process.on('disconnect', () => process.exit(0));
