import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyncLockedError, withSyncLock } from '../../../src/billing/stripe/sync-lock.ts';

describe('one stripe sync per data directory', () => {
  let dir: string;
  let lock: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bm-lock-'));
    lock = join(dir, 'stripe-sync.lock');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('holds the lock during the run and releases it after, also on failure', async () => {
    await withSyncLock(lock, async () => {
      expect(await readFile(lock, 'utf8')).toBe(String(process.pid));
    });
    await expect(readFile(lock)).rejects.toThrow();
    await expect(
      withSyncLock(lock, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(readFile(lock)).rejects.toThrow();
  });

  it('refuses while another live process holds it', async () => {
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await writeFile(lock, String(other.pid));
      await expect(withSyncLock(lock, async () => 'ran')).rejects.toBeInstanceOf(SyncLockedError);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('takes over a lock left by a process that died', async () => {
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.on('exit', resolve));
    await writeFile(lock, String(dead.pid));
    expect(await withSyncLock(lock, async () => 'ran')).toBe('ran');
  });
});
