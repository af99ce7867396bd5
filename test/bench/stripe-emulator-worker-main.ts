// Runs the Stripe emulator inside a worker thread and answers the bench's questions over postMessage.
import { parentPort, workerData } from 'node:worker_threads';
import { runningClock } from '../support/clock.ts';
import { startStripeEmulator } from '../support/stripe-emulator/index.ts';

export type EmulatorRequestMessage =
  | { id: number; op: 'setLatency'; ms: number }
  | { id: number; op: 'arrivals'; path: string; sinceIndex: number }
  | { id: number; op: 'requestCount' }
  | { id: number; op: 'totals' }
  | { id: number; op: 'stop' };

/** The bench's clock (sync.bench.ts), so the emulator's 35-day and 5-minute windows see the same time. */
const { clockStartMs, clockSinceMs } = workerData as { clockStartMs: number; clockSinceMs: number };
const clock = runningClock(new Date(clockStartMs), clockSinceMs);
const emulator = await startStripeEmulator({ recordBodies: false, clock: () => clock().getTime() });
const port = parentPort!;
port.postMessage({ ready: true, url: emulator.url });
port.on('message', (msg: EmulatorRequestMessage) => {
  const reply = (result: unknown) => port.postMessage({ id: msg.id, result });
  switch (msg.op) {
    case 'setLatency':
      emulator.setLatency(msg.ms);
      return reply(null);
    case 'requestCount':
      return reply(emulator.requests.length);
    case 'arrivals':
      return reply(
        emulator.requests
          .slice(msg.sinceIndex)
          .filter((r) => r.path === msg.path)
          .map((r) => r.receivedAtRealMs),
      );
    case 'totals': {
      // event name / customer → sum of non-cancelled values, as text.
      const totals: Record<string, string> = {};
      const names = new Map([...emulator.state.meters.values()].map((m) => [m.id, m.event_name]));
      for (const e of emulator.state.meterEvents) {
        if (e.cancelled) continue;
        const key = `${names.get(e.meterId)}/${e.customerId}`;
        totals[key] = (BigInt(totals[key] ?? '0') + BigInt(e.value)).toString();
      }
      return reply(totals);
    }
    case 'stop':
      void emulator.stop().then(() => {
        reply(null);
        port.close();
      });
  }
});
