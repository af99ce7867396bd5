import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The embedded engine opens its data directory in one process at a time; a second process gets a
 * native "Cannot lock file" error. So the process that opens it records who it is beside the data
 * (`owner.json`: pid, command, URL once it listens), and the next one can say, in one line, who holds
 * it and what to do instead, before it even tries.
 */
export interface EmbeddedOwner {
  pid: number;
  command: string;
  url?: string;
  since: string;
}

export class EmbeddedEngineBusyError extends Error {
  constructor(
    readonly path: string,
    readonly owner: EmbeddedOwner | undefined,
    options?: ErrorOptions,
  ) {
    const who = owner
      ? `billing-meter ${owner.command} (pid ${owner.pid}${owner.url ? `, ${owner.url}` : ''})`
      : 'another process (or it is not writable)';
    super(
      `the embedded ClickHouse in ${path} is in use by ${who}: stop it first, or use its admin API while it runs`,
      options,
    );
    this.name = 'EmbeddedEngineBusyError';
  }
}

const ownerFile = (path: string) => join(path, 'owner.json');

/** The live process that recorded itself as the owner of `path`, if any (a stale record is ignored). */
export function embeddedOwner(path: string): EmbeddedOwner | undefined {
  let owner: EmbeddedOwner;
  try {
    owner = JSON.parse(readFileSync(ownerFile(path), 'utf8')) as EmbeddedOwner;
  } catch {
    return undefined;
  }
  if (!Number.isInteger(owner.pid) || owner.pid === process.pid) return undefined;
  try {
    process.kill(owner.pid, 0);
    return owner;
  } catch (err) {
    // EPERM: alive, but someone else's.
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? owner : undefined;
  }
}

export async function recordEmbeddedOwner(path: string, owner: Omit<EmbeddedOwner, 'pid' | 'since'>) {
  await mkdir(path, { recursive: true });
  const record: EmbeddedOwner = { pid: process.pid, since: new Date().toISOString(), ...owner };
  await writeFile(ownerFile(path), JSON.stringify(record) + '\n');
}

export async function releaseEmbeddedOwner(path: string): Promise<void> {
  const owner = (() => {
    try {
      return JSON.parse(readFileSync(ownerFile(path), 'utf8')) as EmbeddedOwner;
    } catch {
      return undefined;
    }
  })();
  if (owner?.pid === process.pid) await rm(ownerFile(path), { force: true });
}
