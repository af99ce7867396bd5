/**
 * The wire-format adapters: pure functions from a parsed request body to canonical rows. Each
 * converts every event independently; a bad event becomes one {index, field, reason} and the rest
 * are still rows. None throws, whatever the input.
 */
import type { AdaptContext, AdaptResult, SourceFormat } from '../request-log.ts';
import { adaptCloudEvents } from './cloudevents.ts';
import { adaptKong } from './kong.ts';
import { adaptMoesif } from './moesif.ts';
import { adaptNative } from './native.ts';

export type Adapter = (events: unknown[], ctx: AdaptContext) => AdaptResult;

export const adapters = {
  native: adaptNative,
  moesif: adaptMoesif,
  cloudevents: adaptCloudEvents,
  kong: adaptKong,
} as const satisfies Record<SourceFormat, Adapter>;

export {
  adaptMoesifAction,
  adaptMoesifActions,
  adaptMoesifCompanies,
  adaptMoesifCompany,
  adaptMoesifUser,
  adaptMoesifUsers,
  type MoesifAction,
  type MoesifCompany,
  type MoesifUser,
} from './moesif.ts';
export { NEVER_STORED_HEADERS, SENSITIVE_HEADER_PATTERN, isSensitiveHeader } from './header-policy.ts';
export { DEFAULT_INGEST_LIMITS, LIMITS } from './limits.ts';
export { isEventTooLarge, jsonByteLength, type BatchResult, type ItemResult } from './per-event.ts';
export { contentEventId } from './event-id.ts';
