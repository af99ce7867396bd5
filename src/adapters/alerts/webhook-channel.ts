import { alertSignatureHeader, type AlertChannel, type SendResult } from '../../alerts/alert-delivery.ts';

/** The header that carries `t=…,v1=…` (the value is exactly what Stripe-Signature would carry). */
export const ALERT_SIGNATURE_HEADER = 'billing-meter-signature';

/**
 * POSTs each alert as JSON, signed per attempt with a fresh timestamp. Delivered means a 2xx answer
 * within the timeout; anything else (another status, a network error, a timeout) is a failed attempt
 * that the delivery service retries. Redirects are not followed: a signed body goes where it was told.
 */
export function webhookChannel(o: {
  url: string;
  secret: string;
  timeoutMs: number;
  now?: () => Date;
}): AlertChannel {
  const now = o.now ?? (() => new Date());
  return {
    name: 'webhook',
    async send(message): Promise<SendResult> {
      const t = Math.floor(now().getTime() / 1000);
      try {
        const res = await fetch(o.url, {
          method: 'POST',
          redirect: 'manual',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'billing-meter-alerts',
            [ALERT_SIGNATURE_HEADER]: alertSignatureHeader(message.body, o.secret, t),
          },
          body: message.body,
          signal: AbortSignal.timeout(o.timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        return res.ok
          ? { ok: true, statusCode: res.status }
          : { ok: false, statusCode: res.status, error: `the receiver answered ${res.status}` };
      } catch (err) {
        return { ok: false, statusCode: 0, error: `could not reach the receiver: ${(err as Error).message}` };
      }
    },
  };
}
