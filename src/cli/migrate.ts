import type { Command } from './command.ts';
import { withServices } from './context.ts';

export const migrateCommand: Command = {
  path: ['migrate'],
  summary: 'create or upgrade the ClickHouse schema',
  details: 'Safe to run again: migrations are versioned and each runs once.',
  async run({ out }) {
    return withServices('migrate', async (s) => {
      out.line(`schema of ${s.clickhouse.database} (${s.clickhouse.engine}) is up to date`);
      return 0;
    });
  },
};
