import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

// Built into web/dist, served by the service at /ui (src/http/web/static-ui.ts). No source maps in the
// build: the folder ships in the package and the bundle size is what the README states.
export default defineConfig({
  root: import.meta.dirname,
  base: '/ui/',
  plugins: [preact()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 200 },
  logLevel: 'warn',
});
