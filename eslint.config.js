import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

// The house rules of structure, checked with the lint (and so by CI):
// - the core knows no vendors: collector/, meters/, billing/, keys/ (and the neutral sql/ and time/)
//   import no koa, ClickHouse client, stripe, node-cron or pino; those live in adapters and the wiring;
// - no import runs from a lower layer to a higher one (the zones below, highest first: the wiring
//   main.ts, services.ts, cli/; then http/ and lifecycle/; then the adapters storage/ and adapters/;
//   then the domain; then the neutral errors.ts, sql/, time/);
// - ingest/ is a package of its own: it imports nothing from src/;
// - no circles.
const VENDORS = [
  'koa',
  '@koa/router',
  '@clickhouse/client',
  '@clickhouse/client-common',
  'stripe',
  'node-cron',
  'node-zookeeper-client',
  'pino',
  'nodemailer',
];
const WIRING = ['./src/main.ts', './src/services.ts', './src/cli'];
const DRIVERS = ['./src/http', './src/lifecycle'];
const ADAPTERS = ['./src/storage', './src/adapters', './src/coordination'];
const DOMAIN = [
  './src/collector',
  './src/meters',
  './src/billing',
  './src/keys',
  './src/governance',
  './src/alerts',
];
const NEUTRAL = ['./src/errors.ts', './src/sql', './src/time'];
const zone = (target, from, message) => ({ target, from, message });

export default tseslint.config(
  { ignores: ['node_modules/', '**/dist/', 'data/', 'coverage/', '.tmp/', '.scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        fetch: 'readonly',
        performance: 'readonly',
        queueMicrotask: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    files: [
      'src/collector/**',
      'src/meters/**',
      'src/billing/**',
      'src/keys/**',
      'src/governance/**',
      'src/alerts/**',
      'src/sql/**',
      'src/time/**',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: VENDORS.map((name) => ({
            name,
            message:
              'the core knows no vendors: put this in an adapter (storage/, adapters/, http/) and pass a port in',
          })),
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts', 'ingest/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [importX.createNodeResolver({ extensions: ['.ts', '.js'] })] },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            zone(['./ingest'], ['./src'], 'ingest/ is a package of its own: it imports nothing from src/'),
            zone(
              [...DRIVERS, ...ADAPTERS, ...DOMAIN, ...NEUTRAL],
              WIRING,
              'only the wiring imports the wiring',
            ),
            zone(
              [...ADAPTERS, ...DOMAIN, ...NEUTRAL],
              DRIVERS,
              'http/ and lifecycle/ drive the core; the core does not import them',
            ),
            zone(
              [...DOMAIN, ...NEUTRAL],
              ADAPTERS,
              'the core sees storage and Stripe through ports, not adapters',
            ),
            zone(NEUTRAL, DOMAIN, 'errors.ts, sql/ and time/ are below every domain room'),
            zone(
              [...DOMAIN, ...NEUTRAL, ...ADAPTERS],
              ['./src/config.ts'],
              'config is read by the wiring, which passes values in',
            ),
          ],
        },
      ],
    },
  },
);
