// Entry of a worker thread that runs body-to-rows (see body-to-rows-threads.ts). Plain JavaScript because a worker
// starts without the TypeScript loader its parent registered: it registers tsx, then loads the real code.
import { register } from 'tsx/esm/api';

register();
await import('./body-to-rows-worker.ts');
