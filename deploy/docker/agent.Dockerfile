# syntax=docker/dockerfile:1.7
# Flotilla agent for generic Linux nodes (x86_64 or arm64, CPU execution provider; CUDA where the
# NVIDIA container runtime provides it). Local KServe v2 inference API on 8000.
# Build from the repository root:
#   docker build -f deploy/docker/agent.Dockerfile -t ghcr.io/flotilla/agent:0.1.0 .
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
ENV CI=true
RUN npm install -g pnpm@10.34.9
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch --prod
COPY . .
# onnxruntime-node's install script downloads CUDA/TensorRT libraries from outside the npm
# registry; the CPU provider it bundles needs none of them.
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN pnpm install --offline --frozen-lockfile --prod --filter "@flotilla/agent..."

FROM ${NODE_IMAGE} AS runtime
# The local API listens on all interfaces inside the container so kubelet probes and the node's
# applications (through hostPort or a node-local Service) can reach it; outside a container the
# agent's own default stays 127.0.0.1.
ENV NODE_ENV=production \
    FLOTILLA_DATA_DIR=/var/lib/flotilla-agent \
    FLOTILLA_LOCAL_API_HOST=0.0.0.0 \
    FLOTILLA_LOCAL_API_PORT=8000 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN groupadd --system --gid 10001 flotilla \
 && useradd --system --uid 10001 --gid flotilla --home-dir /var/lib/flotilla-agent --shell /usr/sbin/nologin flotilla \
 && mkdir -p /var/lib/flotilla-agent \
 && chown flotilla:flotilla /var/lib/flotilla-agent \
 && chmod 0700 /var/lib/flotilla-agent
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages/protocol ./packages/protocol
COPY --from=build /src/packages/kserve ./packages/kserve
COPY --from=build /src/packages/release ./packages/release
COPY --from=build /src/agent ./agent
USER flotilla
VOLUME ["/var/lib/flotilla-agent"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.FLOTILLA_LOCAL_API_PORT||8000)+'/v2/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# bin/flotilla-agent.mjs loads tsx in-process, so SIGTERM reaches the agent itself.
CMD ["node", "agent/bin/flotilla-agent.mjs"]
