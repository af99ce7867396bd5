// The Stripe emulator on a thread of its own for bench:sync, as a remote Stripe would be: its CPU is
// not the sync's. Plain JavaScript because a worker starts without the parent's TypeScript loader.
import { register } from 'tsx/esm/api';

register();
await import('./stripe-emulator-worker-main.ts');
