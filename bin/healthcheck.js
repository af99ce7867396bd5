#!/usr/bin/env node
// The Docker image's HEALTHCHECK (the slim image has neither curl nor wget): exit 0 when the service in
// this container answers 200 on GET /healthz within 3 s, else 1. It asks 127.0.0.1 on PORT, read here
// as the service reads it (default 8080), so it holds unless HOST binds the service to another address.
/* global AbortSignal */
const port = process.env.PORT || '8080';
try {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(3_000) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
