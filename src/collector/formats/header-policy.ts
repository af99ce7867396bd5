// Which headers are secret: never stored, whatever the allow list says (config.ts refuses to allow-list
// them, headers.ts drops them). The policy is the ingest package's, so that what the forwarder refuses
// to send and what the collector refuses to store cannot drift apart.
export {
  NEVER_STORED_HEADERS,
  SENSITIVE_HEADER_PATTERN,
  isSensitiveHeader,
} from '../../../ingest/header-policy.ts';
