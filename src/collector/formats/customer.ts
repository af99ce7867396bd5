// Who a call is billed to, and what REQUIRE_CUSTOMER does with a call that names no one.
import type { AdaptContext } from '../request-log.ts';
import { reject } from './rejection.ts';

/** The customer a call is billed to: an explicit customer, else company_id, else user_id, else ''. */
export function customerKey(explicit: string, companyId: string, userId: string): string {
  return explicit || companyId || userId;
}

/**
 * The customer key, or with ctx.requireCustomer the rejection of an event that has none: `field` is
 * the one to send, `how` says how a sender of this format names a customer. Without the option an
 * empty key is stored, and counted as unattributed by the batch (body-to-rows.ts).
 */
export function attributed(key: string, ctx: AdaptContext, field: string, how: string): string {
  if (key === '' && ctx.requireCustomer === true) {
    reject(field, `is required (REQUIRE_CUSTOMER is true): ${how}; the event names no customer`);
  }
  return key;
}
