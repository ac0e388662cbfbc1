# syntax=docker/dockerfile:1.7
# Flotilla control server: REST API (8080), embedded MQTT broker (1883, WebSocket 8083), SQLite.
# Build from the repository root:
#   docker build -f deploy/docker/server.Dockerfile -t ghcr.io/flotilla/server:0.1.0 .
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
ENV CI=true
# Corepack refuses pnpm's signatures on some Node 20 images; npm installs the pinned pnpm directly.
RUN npm install -g pnpm@10.34.9 tsx@4.23.15
# better-sqlite3 falls back to a node-gyp build when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Fetch by the lockfile alone, so this layer is reused until dependencies change.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch --prod
COPY . .
# The server loads no ONNX model; nothing here needs onnxruntime's GPU libraries.
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN pnpm install --offline --frozen-lockfile --prod --filter "@flotilla/server..."

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    FLOTILLA_DATA_DIR=/var/lib/flotilla \
    FLOTILLA_HTTP_HOST=0.0.0.0 \
    FLOTILLA_MQTT_HOST=0.0.0.0
# The sources run through tsx (the repository ships TypeScript, no build step).
COPY --from=build /usr/local/lib/node_modules/tsx /usr/local/lib/node_modules/tsx
RUN ln -s ../lib/node_modules/tsx/dist/cli.mjs /usr/local/bin/tsx \
 && groupadd --system --gid 10001 flotilla \
 && useradd --system --uid 10001 --gid flotilla --home-dir /var/lib/flotilla --shell /usr/sbin/nologin flotilla \
 && mkdir -p /var/lib/flotilla \
 && chown flotilla:flotilla /var/lib/flotilla
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages/protocol ./packages/protocol
COPY --from=build /src/packages/release ./packages/release
COPY --from=build /src/server ./server
USER flotilla
VOLUME ["/var/lib/flotilla"]
EXPOSE 8080 1883 8083
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.FLOTILLA_HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# tsx relays SIGTERM to the server, which closes within shutdownTimeoutMs (10 s by default).
STOPSIGNAL SIGTERM
CMD ["tsx", "server/src/main.ts"]
