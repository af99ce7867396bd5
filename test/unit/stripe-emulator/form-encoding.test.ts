import { describe, expect, it } from 'vitest';
import { parseForm } from '../../support/stripe-emulator/index.ts';

describe('parseForm: Stripe v1 bracketed form bodies', () => {
  it.each([
    [
      'event_name=api_requests&payload[stripe_customer_id]=cus_123&payload[value]=5',
      { event_name: 'api_requests', payload: { stripe_customer_id: 'cus_123', value: '5' } },
    ],
    [
      'tiers[0][up_to]=100&tiers[0][unit_amount]=10&tiers[1][up_to]=inf',
      { tiers: [{ up_to: '100', unit_amount: '10' }, { up_to: 'inf' }] },
    ],
    ['expand[]=a&expand[]=b', { expand: ['a', 'b'] }],
    ['metadata[key%20with%20space]=v%26w', { metadata: { 'key with space': 'v&w' } }],
    ['metadata=', { metadata: '' }],
    ['', {}],
  ])('parses %s', (text, expected) => {
    expect(parseForm(text)).toEqual(expected);
  });
});
