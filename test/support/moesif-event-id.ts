// The documented event id of a Moesif event with a transaction id, written out independently of
// src/collector/formats/moesif.ts so tests check the documented formula rather than repeat the code.
import { createHash } from 'node:crypto';

/** What identifies one Moesif call besides its transaction id, as the row stores it. */
export interface MoesifCall {
  requestMs: number;
  method: string;
  route: string;
  host: string;
  companyId: string;
  userId: string;
}

/** `m:` and the first 32 hex digits of sha256(JSON.stringify([transactionId, requestMs, method, route, host, companyId, userId])). */
export function moesifEventId(transactionId: string, call: MoesifCall): string {
  const identity = [
    transactionId,
    call.requestMs,
    call.method,
    call.route,
    call.host,
    call.companyId,
    call.userId,
  ];
  return `m:${createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 32)}`;
}
