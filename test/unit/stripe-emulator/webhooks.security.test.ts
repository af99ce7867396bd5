import { afterEach, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import { startStripeEmulator, type StripeEmulator } from '../../support/stripe-emulator/index.ts';
import { emulatorWithClient, seconds, T0, webhookReceiver } from './support.ts';

describe('stripe emulator: webhook signatures hold against forgery and replay', () => {
  let emulator: StripeEmulator;
  let stripe: Stripe;
  afterEach(async () => emulator.stop());

  const SECRET = 'whsec_test_secret';
  const event = {
    id: 'evt_forged',
    object: 'event',
    type: 'invoice.paid',
    data: { object: { id: 'in_1', object: 'invoice', amount_paid: 420000 } },
  };

  it('signs an arbitrary event the way stripe-node verifies it', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const signed = emulator.signWebhook(event, SECRET);
    expect(signed.timestamp).toBe(seconds(T0));
    expect(signed.signature).toMatch(new RegExp(`^t=${seconds(T0)},v1=[0-9a-f]{64}$`));
    expect(
      stripe.webhooks.constructEvent(signed.body, signed.signature, SECRET, 300, undefined, T0),
    ).toMatchObject({
      id: 'evt_forged',
      type: 'invoice.paid',
    });
    // The SDK's own test header is the same signature scheme.
    const header = stripe.webhooks.generateTestHeaderString({
      payload: signed.body,
      secret: SECRET,
      timestamp: signed.timestamp,
    });
    expect(header).toBe(signed.signature);
  });

  it('is refused by stripe-node when the body, the secret or the signature is forged', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const signed = emulator.signWebhook(event, SECRET);
    const tampered = signed.body.replace('420000', '1');
    const refuse = (body: string, header: string, secret: string) =>
      expect(() => stripe.webhooks.constructEvent(body, header, secret, 300, undefined, T0)).toThrow(
        Stripe.errors.StripeSignatureVerificationError,
      );
    refuse(tampered, signed.signature, SECRET);
    refuse(signed.body, signed.signature, 'whsec_other');
    refuse(signed.body, signed.signature.replace(/v1=.{4}/, 'v1=0000'), SECRET);
    refuse(signed.body, `t=${signed.timestamp}`, SECRET);
    const forged = emulator.signWebhook(tampered, 'whsec_attacker');
    refuse(forged.body, forged.signature, SECRET);
  });

  it('is refused as a replay once the timestamp is older than the tolerance', async () => {
    ({ emulator, stripe } = await emulatorWithClient());
    const old = emulator.signWebhook(event, SECRET, seconds(T0) - 301);
    expect(() => stripe.webhooks.constructEvent(old.body, old.signature, SECRET, 300, undefined, T0)).toThrow(
      /tolerance/,
    );
    const fresh = emulator.signWebhook(event, SECRET, seconds(T0) - 299);
    expect(stripe.webhooks.constructEvent(fresh.body, fresh.signature, SECRET, 300, undefined, T0).id).toBe(
      'evt_forged',
    );
  });

  it('signs deliveries with a real clock when given one, so default verification works', async () => {
    emulator = await startStripeEmulator({ webhookClock: Date.now, webhookRetryDelaysMs: [] });
    stripe = new Stripe('sk_test_123', { ...emulator.stripeOptions(), maxNetworkRetries: 0 });
    const receiver = await webhookReceiver();
    try {
      const endpoint = await stripe.webhookEndpoints.create({
        url: receiver.url,
        enabled_events: ['customer.created'],
      });
      await stripe.customers.create({ name: 'Now' });
      await emulator.webhooksSettled();
      const [delivery] = receiver.received;
      expect(
        stripe.webhooks.constructEvent(
          delivery?.body ?? '',
          String(delivery?.headers['stripe-signature']),
          endpoint.secret ?? '',
        ).type,
      ).toBe('customer.created');
    } finally {
      await receiver.close();
    }
  });
});
