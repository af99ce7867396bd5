// Entry of a batch-preparing worker thread (see batch-preparer.ts). Plain JavaScript because a worker
// starts without the TypeScript loader its parent registered: it registers tsx, then loads the real code.
import { register } from 'tsx/esm/api';

register();
await import('./prepare-worker-main.ts');
