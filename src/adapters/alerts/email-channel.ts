import nodemailer from 'nodemailer';
import type { AlertChannel, SendResult } from '../../alerts/alert-delivery.ts';

/**
 * Sends each alert as a plain-text email through SMTP (nodemailer). Delivered means the SMTP server
 * accepted the message; what happens after that is the mail system's.
 */
export function emailChannel(o: { smtpUrl: string; to: string; from: string }): AlertChannel {
  const transport = nodemailer.createTransport(o.smtpUrl);
  return {
    name: 'email',
    async send({ event }): Promise<SendResult> {
      const d = event.data;
      try {
        await transport.sendMail({
          from: o.from,
          to: o.to,
          subject: `[billing-meter] ${d.customer} reached ${d.threshold.label} on ${d.meter}`,
          text:
            `${d.customer} used ${d.quantity} ${d.unit} of ${d.meter} in ${d.period.id}, ` +
            `reaching ${d.threshold.label} (${d.threshold.value}).\n\n` +
            `Observed at ${d.observed_at}. Alert ${event.id}.\n`,
          headers: { 'x-billing-meter-alert': event.id },
        });
        return { ok: true, statusCode: 0 };
      } catch (err) {
        return { ok: false, statusCode: 0, error: `SMTP: ${(err as Error).message}` };
      }
    },
  };
}
