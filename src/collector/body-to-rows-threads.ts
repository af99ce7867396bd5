// Where body-to-rows.ts runs: on the calling thread, or on worker threads for large bodies.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { prepareBatch, type PrepareInput, type PrepareOutput } from './body-to-rows.ts';

/** Port: turns a request body into spool-ready rows (see body-to-rows.ts), here or elsewhere. */
export interface BatchPreparer {
  prepare(input: PrepareInput): Promise<PrepareOutput>;
  close(): Promise<void>;
}

/** On the calling thread. */
export const inlinePreparer: BatchPreparer = {
  prepare: async (input) => prepareBatch(input),
  close: async () => undefined,
};

/**
 * One worker per core, at most 4; none on a single core. The event loop only reads bodies and appends
 * to the spool: profiled under bench:ingest it was ~80% idle while a single worker was saturated, and
 * on 2 cores 2 workers beat 1 in each of three interleaved runs (52–53k vs 47–49k events/s, README).
 */
export function defaultWorkerCount(): number {
  const cores = availableParallelism();
  return cores <= 1 ? 0 : Math.min(4, cores);
}

interface Pending {
  resolve: (out: PrepareOutput) => void;
  reject: (err: unknown) => void;
}

interface PoolWorker {
  worker: Worker;
  pending: Map<number, Pending>;
}

type WorkerReply = { id: number; out: PrepareOutput } | { id: number; error: string };

// Run from the TypeScript sources, a worker needs the tsx loader, which body-to-rows-worker.mjs registers first;
// run from the build (dist/, as in the Docker image) the compiled entry starts on plain node.
const WORKER_ENTRY = import.meta.url.endsWith('.ts')
  ? './body-to-rows-worker.mjs'
  : './body-to-rows-worker.js';

/**
 * Parsing, checking and serialising a batch costs ~10 µs an event, all of it CPU on the event loop.
 * Large bodies go to worker threads so the event loop keeps taking requests and syncing the spool
 * while other cores do that work; small ones stay inline, where a thread hop would cost more than it
 * saves. Bodies and results move between threads without copying (transferred ArrayBuffers).
 * A worker that dies fails only its own batches (the clients get a 500 and retry) and is replaced.
 */
export class WorkerPoolPreparer implements BatchPreparer {
  private readonly workers: PoolWorker[] = [];
  private nextId = 0;
  private closed = false;

  constructor(
    count: number,
    private readonly inlineBelowBytes = 64 * 1024,
  ) {
    for (let i = 0; i < count; i++) this.workers.push(this.spawn());
  }

  prepare(input: PrepareInput): Promise<PrepareOutput> {
    if (this.workers.length === 0 || input.body.byteLength < this.inlineBelowBytes) {
      return inlinePreparer.prepare(input);
    }
    const target = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    const body = standalone(input.body);
    return new Promise<PrepareOutput>((resolve, reject) => {
      target.pending.set(id, { resolve, reject });
      target.worker.postMessage({ id, input: { ...input, body } }, [body.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }

  private spawn(): PoolWorker {
    const worker = new Worker(new URL(WORKER_ENTRY, import.meta.url));
    worker.unref();
    const entry: PoolWorker = { worker, pending: new Map() };
    worker.on('message', (reply: WorkerReply) => {
      const waiting = entry.pending.get(reply.id);
      if (!waiting) return;
      entry.pending.delete(reply.id);
      if ('error' in reply) waiting.reject(new Error(`prepare worker: ${reply.error}`));
      else waiting.resolve(reply.out);
    });
    const fail = (err: unknown) => {
      for (const p of entry.pending.values()) p.reject(err);
      entry.pending.clear();
      const index = this.workers.indexOf(entry);
      if (index >= 0 && !this.closed) this.workers[index] = this.spawn();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`prepare worker exited with code ${code}`)));
    return entry;
  }
}

/** A Uint8Array that owns its whole ArrayBuffer (transferable without taking a neighbour's bytes along). */
function standalone(bytes: Uint8Array): Uint8Array {
  if (bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength) return bytes;
  return new Uint8Array(bytes);
}
