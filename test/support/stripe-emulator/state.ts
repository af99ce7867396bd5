// The emulator's in-memory account: one test-mode Stripe account, plus the emulated clock that
// every time rule (24 h identifier dedupe, 35-day / 5-minute window, session expiry) reads.
import { randomBytes } from 'node:crypto';

export interface EmulatorClock {
  /** Emulated wall-clock time in ms: the base clock plus everything advanced so far. */
  now(): number;
  advance(ms: number): void;
}

export function createClock(base: () => number = Date.now): EmulatorClock {
  let offset = 0;
  return {
    now: () => base() + offset,
    advance: (ms) => {
      offset += ms;
    },
  };
}

export interface Customer {
  id: string;
  object: 'customer';
  created: number;
  livemode: false;
  email: string | null;
  name: string | null;
  description: string | null;
  metadata: Record<string, string>;
}

export type MeterFormula = 'sum' | 'count' | 'last';

export interface Meter {
  id: string;
  object: 'billing.meter';
  created: number;
  updated: number;
  livemode: false;
  display_name: string;
  event_name: string;
  event_time_window: null;
  status: 'active' | 'inactive';
  status_transitions: { deactivated_at: number | null };
  default_aggregation: { formula: MeterFormula };
  customer_mapping: { event_payload_key: string; type: 'by_id' };
  value_settings: { event_payload_key: string };
}

export interface StoredMeterEvent {
  identifier: string;
  eventName: string;
  meterId: string;
  customerId: string;
  value: number;
  /** Event time, seconds. */
  timestamp: number;
  /** Emulated receive time, ms: the 24 h dedupe and cancel windows run from here. */
  receivedAtMs: number;
  payload: Record<string, string>;
  cancelled: boolean;
  via: 'v1' | 'v2';
}

export interface MeterEventSession {
  id: string;
  token: string;
  expiresAtMs: number;
}

export class EmulatorState {
  readonly customers = new Map<string, Customer>();
  readonly meters = new Map<string, Meter>();
  /** Every accepted event, in arrival order (cancelled ones stay, flagged). */
  readonly meterEvents: StoredMeterEvent[] = [];
  readonly sessions = new Map<string, MeterEventSession>();

  constructor(readonly clock: EmulatorClock) {}

  nowSeconds(): number {
    return Math.floor(this.clock.now() / 1000);
  }

  newId(prefix: string): string {
    return `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;
  }

  activeMeterForEvent(eventName: string): Meter | undefined {
    for (const meter of this.meters.values()) {
      if (meter.event_name === eventName && meter.status === 'active') return meter;
    }
    return undefined;
  }

  /** The event holding this identifier inside the rolling 24 h of emulated time, if any. */
  recentEventByIdentifier(identifier: string): StoredMeterEvent | undefined {
    const horizon = this.clock.now() - DAY_MS;
    for (let i = this.meterEvents.length - 1; i >= 0; i--) {
      const event = this.meterEvents[i];
      if (event === undefined || event.receivedAtMs <= horizon) continue;
      if (event.identifier === identifier) return event;
    }
    return undefined;
  }

  /** Non-cancelled events of a meter and customer, for assertions. */
  eventsFor(meterId: string, customerId?: string): StoredMeterEvent[] {
    return this.meterEvents.filter(
      (e) =>
        !e.cancelled && e.meterId === meterId && (customerId === undefined || e.customerId === customerId),
    );
  }
}

export const DAY_MS = 24 * 60 * 60 * 1000;
