#!/usr/bin/env -S node --max-semi-space-size=64 --initial-old-space-size=256
// --max-semi-space-size=64: ingest allocates many short-lived objects (parsed events, rows); a larger
// young generation makes scavenges rarer, measured 1.5x faster per event (README, Benchmarks).
// --initial-old-space-size=256: V8 starts a full GC whenever the old generation's headroom is smaller
// than the young generation (64 MB here), and the service's ~22 MB old generation got a ~61 MB limit:
// under bench:ingest the main thread ran a full mark-compact every 150-300 ms (10-17 in a run, 2 with
// this flag). The old generation may now grow to 256 MB before its first full GC.
//
// In a clone (src/ is there) the TypeScript sources run through tsx's loader, so the CLI needs no build
// step, and a dist/ left by an earlier `npm run build` is never run by mistake. The Docker image has no
// src/: there the build (`npm run build` → dist/) runs on plain node, and tsx is never loaded.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/index.ts', import.meta.url);
let runCli;
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ runCli } = await import(sources.href));
} else {
  ({ runCli } = await import('../dist/src/cli/index.js'));
}
// Exit explicitly: an open ClickHouse handle must not keep a finished command alive.
process.exit(await runCli(process.argv.slice(2)));
