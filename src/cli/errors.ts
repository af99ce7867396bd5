import { SyncLockedError } from '../billing/stripe/sync-lock.ts';
import { ConfigError } from '../config.ts';
import { LeaseHeldElsewhereError } from '../coordination/zookeeper-lease.ts';
import { DomainError, UpstreamError } from '../errors.ts';
import { PortInUseError } from '../lifecycle/listen.ts';
import { MeterDefinitionError } from '../meters/load-meters.ts';
import { EmbeddedEngineBusyError } from '../storage/clickhouse/embedded-owner.ts';
import { UsageError } from './args.ts';

/** A failure the command expected and explains itself: its message is printed as is, exit 1. */
export class CommandFailed extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CommandFailed';
  }
}

export interface Explained {
  message: string;
  exitCode: number;
  /** An error we did not foresee: its stack is worth printing with DEBUG. */
  unexpected: boolean;
}

const SERVICE_NAMES: Record<string, string> = { clickhouse: 'ClickHouse', stripe: 'Stripe' };

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be resolved',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
};

/**
 * Turns whatever a command threw into one message for a person. The causes users meet (a taken port,
 * a missing file, the embedded engine held by the service, ClickHouse down) each get their own words;
 * the rest print their message, and their stack only with DEBUG.
 */
export function explain(err: unknown): Explained {
  const expected = (message: string, exitCode = 1) => ({ message, exitCode, unexpected: false });
  if (err instanceof UsageError) return expected(`${err.message}\n\n${err.usage}`, 2);
  if (err instanceof ConfigError) return expected(err.message, 2);
  if (err instanceof MeterDefinitionError) return expected(`invalid meter definitions:\n${err.message}`);
  if (
    err instanceof CommandFailed ||
    err instanceof PortInUseError ||
    err instanceof EmbeddedEngineBusyError ||
    err instanceof SyncLockedError ||
    err instanceof LeaseHeldElsewhereError
  )
    return expected(err.message, err instanceof CommandFailed ? err.exitCode : 1);
  const network = networkProblem(err);
  if (network) return expected(network);
  if (err instanceof DomainError || err instanceof UpstreamError) return expected(`error: ${err.message}`);
  const fsError = fileProblem(err);
  if (fsError) return expected(fsError);
  const message = err instanceof Error ? err.message : String(err);
  return { message: `error: ${message.split('\n')[0]}`, exitCode: 1, unexpected: true };
}

function fileProblem(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string' || typeof e.path !== 'string') return undefined;
  const what: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EISDIR: 'is a directory, not a file',
    ENOTDIR: 'not a directory',
  };
  return what[e.code] ? `${e.path}: ${what[e.code]}` : undefined;
}

/** The first network error in an error's cause chain (fetch and the ClickHouse client wrap them). */
function networkProblem(err: unknown): string | undefined {
  const service = err instanceof UpstreamError ? (SERVICE_NAMES[err.service] ?? err.service) : undefined;
  for (
    let e = err as { code?: unknown; cause?: unknown; address?: unknown; port?: unknown } | undefined,
      depth = 0;
    e && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    if (typeof e.code === 'string' && NETWORK_CODES[e.code]) {
      const where = typeof e.address === 'string' ? ` ${e.address}${e.port ? `:${String(e.port)}` : ''}` : '';
      return `error: cannot connect to ${service ? `${service} at` : ''}${where}: ${NETWORK_CODES[e.code]}${service === 'ClickHouse' ? ' (is it running? CLICKHOUSE_URL says where it is)' : ''}`;
    }
  }
  return undefined;
}
