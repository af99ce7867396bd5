import type { IngestService } from '../collector/ingest-service.ts';
import type { MoesifRecordService } from '../collector/moesif-records.ts';
import type { IngestKeyService } from '../keys/ingest-keys.ts';
import type { UsageQueryService } from '../meters/usage-query.ts';

/** The ports the routes use: all a route may call of a use case, and all a test has to fake. */
export type IngestPort = Pick<IngestService, 'ingestBody'>;
export type MoesifRecordsPort = Pick<MoesifRecordService, 'ingestRecords'>;
export type IngestKeysPort = Pick<
  IngestKeyService,
  'authenticate' | 'create' | 'refresh' | 'list' | 'revoke'
>;
export type UsagePort = Pick<UsageQueryService, 'currentPeriod' | 'usage' | 'customerPeriod'>;
