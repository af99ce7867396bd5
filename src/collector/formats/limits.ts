// Every limit the wire-format adapters enforce on an event, and the ingest window's defaults.
import { DAY, MINUTE } from './time.ts';

/** Every limit the adapters enforce. Strings are measured in Unicode code points. */
export const LIMITS = {
  /** Event ids, customer, company_id, user_id, api_version, CloudEvents id/source/type/subject. */
  idChars: 256,
  /** Host with port: a DNS name is at most 253 characters. */
  hostChars: 512,
  /** Route (path without query string or fragment). */
  routeChars: 2048,
  latencyMsMax: 4_294_967_295,
  bytesMax: Number.MAX_SAFE_INTEGER,
  sampleWeightMax: 1_000_000,
  /** Flattened metadata keys per event (headers are not counted: the allow list bounds them). */
  metadataKeys: 100,
  /** `metadata.a.b.c.d.e`: an object nested deeper, or any array, is stored as its JSON text. */
  metadataDepth: 5,
  metaKeyChars: 256,
  metaValueChars: 8192,
} as const;

/** Suggested defaults for AdaptContext (the config owns the real values). */
export const DEFAULT_INGEST_LIMITS = {
  /** Stripe accepts meter events up to 35 days old and 5 minutes in the future. */
  maxPastMs: 35 * DAY,
  maxFutureMs: 5 * MINUTE,
  /** Moesif SDKs send bodies up to 100 kB each by default; 1 MiB leaves room for headers and metadata. */
  maxEventBytes: 1_048_576,
} as const;
