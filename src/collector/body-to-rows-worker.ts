import { parentPort } from 'node:worker_threads';
import { prepareBatch, type PrepareInput } from './body-to-rows.ts';

parentPort?.on('message', ({ id, input }: { id: number; input: PrepareInput }) => {
  try {
    const out = prepareBatch(input);
    if (out.ok) {
      const rows =
        out.rows.byteOffset === 0 && out.rows.buffer.byteLength === out.rows.byteLength
          ? out.rows
          : new Uint8Array(out.rows);
      parentPort?.postMessage({ id, out: { ...out, rows } }, [rows.buffer as ArrayBuffer]);
    } else {
      parentPort?.postMessage({ id, out });
    }
  } catch (err) {
    parentPort?.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
