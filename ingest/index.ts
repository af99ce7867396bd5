/**
 * billing-meter ingest: what an API owner runs to send request logs to the collector.
 * Dependency-free (node:* only). Published as the package @billing-meter/ingest (package.json here;
 * `npm pack` builds dist/ with declarations); the service imports these files directly.
 */
export { createForwarder } from './forwarder.ts';
export type { Forwarder, ForwarderOptions, ForwarderStats } from './forwarder.ts';
export type { ResponseBytesMode } from './capture.ts';
export { koaMiddleware, expressMiddleware, wrapHandler } from './middleware.ts';
export type { ExpressMiddleware, KoaContextLike, KoaMiddleware, WrappedHandler } from './middleware.ts';
export { createGovernor, governedKoaMiddleware } from './governance.ts';
export type {
  Block,
  GovernedKoaMiddleware,
  GovernedOptions,
  Governor,
  GovernorOptions,
} from './governance.ts';
export { shipFile } from './ship.ts';
export type { BadLine, RejectedLine, ShipError, ShipOptions, ShipReport } from './ship.ts';
export { IngestError, postBatch, createCollectorTarget } from './post-batch.ts';
export type {
  CollectorOptions,
  CollectorTarget,
  IngestErrorCode,
  PostBatchResult,
  PostHooks,
  Rejection,
} from './post-batch.ts';
export { generateSampleLogs } from './sample-logs.ts';
export type { SampleLogOptions } from './sample-logs.ts';
export { DEFAULT_HEADER_ALLOW_LIST } from './native-record.ts';
export { NEVER_STORED_HEADERS, SENSITIVE_HEADER_PATTERN, isSensitiveHeader } from './header-policy.ts';
export type { Identity, NativeRecord } from './native-record.ts';
