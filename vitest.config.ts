import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs nothing running; `integration` (integration, e2e and fault drills) gets a
// real ClickHouse server (Debian's clickhouse-server, started in a temp dir by test/support/global-setup.ts)
// and runs files one at a time, because the drills stop and start that server.
export default defineConfig({
  test: {
    // The integration files share one ClickHouse server that the fault drills stop and start.
    fileParallelism: false,
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
