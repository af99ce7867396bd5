# syntax=docker/dockerfile:1
# billing-meter against a ClickHouse server (CLICKHOUSE_URL; docker-compose.yml starts one). The image
# runs the compiled JavaScript on plain node, as the non-root user `node`, and holds no embedded engine:
# without CLICKHOUSE_URL it stops at start with a message saying so.
#
#   docker build -t billing-meter .        (or: docker compose up --build)
#
# Node 26 is the Active LTS line since 2026-10-27 (Node 24 is in maintenance). The repository itself is
# developed and tested on Node 20 (engines >=20.9); see the README, "With Docker", for what was not run.

# 1. build: every dependency, then `npm run build` compiles src/ and ingest/ into dist/ and builds the
#    dashboard (vite) into web/dist. The optional packages stay in: vite's bundler, CSS minifier and
#    esbuild are native binaries shipped as optional, per-platform packages (@rolldown/binding-*,
#    lightningcss-*, @esbuild/*), and without them `vite build` fails. This also downloads chdb's
#    library (@chdb/lib-*, 543 MB) into this stage; nothing of the stage but dist/ and web/dist reaches
#    the image. --ignore-scripts: the native packages need no install script.
FROM node:26-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY ingest ./ingest
COPY web ./web
RUN npm run build

# 2. deps: the production dependencies only. --omit=optional leaves out chdb's 543 MB native library
#    (@chdb/lib-*), which a server deployment never loads; --ignore-scripts skips the two install scripts
#    of the production tree (chdb's does nothing; esbuild's would fetch the binary tsx needs, unused here).
FROM node:26-trixie-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund

# 3. runtime: node_modules, dist/, the built dashboard (web/dist, served at /ui: the compiled service
#    looks for it beside dist/, src/http/web/static-ui.ts) and what the service reads at run time (meters,
#    governance rules). No src/, so bin/billing-meter.js runs dist/ (see the comment there).
FROM node:26-trixie-slim AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    DATA_DIR=/data \
    METERS_DIR=/app/meters \
    GOVERNANCE_DIR=/app/governance
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
COPY package.json ./
COPY bin ./bin
COPY meters ./meters
COPY governance ./governance
# A named volume mounted on /data starts with this directory's owner: the service must be able to write it.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/bin/healthcheck.js"]
# Exec form: node is PID 1 (or tini's child under compose's `init: true`) and gets SIGTERM itself, so a
# stop drains the spool instead of ending in SIGKILL.
CMD ["node", "--max-semi-space-size=64", "--initial-old-space-size=256", "bin/billing-meter.js", "serve"]
