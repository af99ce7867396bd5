#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader, so the CLI needs no build step.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli.ts');
// Exit explicitly: an open ClickHouse handle must not keep a finished command alive.
process.exit(await runCli(process.argv.slice(2)));
