#!/usr/bin/env -S node --max-semi-space-size=64 --initial-old-space-size=256
// --max-semi-space-size=64: ingest allocates many short-lived objects (parsed events, rows); a larger
// young generation makes scavenges rarer, measured 1.5x faster per event (README, Benchmarks).
// --initial-old-space-size=256: V8 starts a full GC whenever the old generation's headroom is smaller
// than the young generation (64 MB here), and the service's ~22 MB old generation got a ~61 MB limit:
// under bench:ingest the main thread ran a full mark-compact every 150-300 ms (10-17 in a run, 2 with
// this flag). The old generation may now grow to 256 MB before its first full GC.
// Runs the TypeScript sources through tsx's loader, so the CLI needs no build step.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/index.ts');
// Exit explicitly: an open ClickHouse handle must not keep a finished command alive.
process.exit(await runCli(process.argv.slice(2)));
