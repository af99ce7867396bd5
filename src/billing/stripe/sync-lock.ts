import { open, readFile, rm } from 'node:fs/promises';

/**
 * One sync at a time per data directory, across processes (the service's hourly run and a
 * `billing-meter sync run` started by hand). Two concurrent runs would plan the same revision of the
 * same hour, possibly with different values; Stripe would keep one and the ledger could believe the
 * other. The lock is a file created with O_EXCL holding the owner's pid; a lock whose process is gone
 * (a crash) is taken over.
 */
export class SyncLockedError extends Error {
  constructor(readonly pid: number) {
    super(`another stripe sync is running (pid ${pid}); try again when it is done`);
    this.name = 'SyncLockedError';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function withSyncLock<T>(path: string, run: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new SyncLockedError(await owner(path));
        throw err;
      }
      const pid = await owner(path);
      if (pid > 0 && pid !== process.pid && alive(pid)) throw new SyncLockedError(pid);
      await rm(path, { force: true }); // left by a crashed process (or unreadable): take it over
    }
  }
  try {
    return await run();
  } finally {
    await rm(path, { force: true });
  }
}

async function owner(path: string): Promise<number> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) ? pid : 0;
}
