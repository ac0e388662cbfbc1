# syntax=docker/dockerfile:1.7
# Flotilla agent for NVIDIA Jetson (JetPack 6, L4T r36, arm64). The L4T JetPack base carries CUDA,
# cuDNN and TensorRT, so the agent's inventory reports their versions and a Triton sidecar can run
# TensorRT plans next to it. onnxruntime-node's arm64 build runs on the CPU provider.
# Build on an arm64 host or with buildx:
#   docker buildx build --platform linux/arm64 -f deploy/docker/agent-jetson.Dockerfile \
#     -t ghcr.io/flotilla/agent-jetson:0.1.0 .
ARG L4T_IMAGE=nvcr.io/nvidia/l4t-jetpack:r36.4.0
ARG NODE_VERSION=20.19.5

# Node 20 from the official arm64 tarball, checked against the release's SHASUMS256.txt. Built
# modules (better-sqlite3) must link against this image's glibc, so both stages start here.
FROM ${L4T_IMAGE} AS node-base
ARG NODE_VERSION
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl xz-utils \
 && rm -rf /var/lib/apt/lists/* \
 && cd /tmp \
 && curl -fsSLO "https://nodejs.org/dist/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-arm64.tar.xz" \
 && curl -fsSLO "https://nodejs.org/dist/v${NODE_VERSION}/SHASUMS256.txt" \
 && grep " node-v${NODE_VERSION}-linux-arm64.tar.xz\$" SHASUMS256.txt | sha256sum -c - \
 && tar -xJf "node-v${NODE_VERSION}-linux-arm64.tar.xz" -C /usr/local --strip-components=1 --no-same-owner \
 && rm -f "node-v${NODE_VERSION}-linux-arm64.tar.xz" SHASUMS256.txt \
 && node --version

FROM node-base AS build
ENV CI=true
RUN npm install -g pnpm@10.34.9
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch --prod
COPY . .
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN pnpm install --offline --frozen-lockfile --prod --filter "@flotilla/agent..."

FROM node-base AS runtime
ENV NODE_ENV=production \
    FLOTILLA_DATA_DIR=/var/lib/flotilla-agent \
    FLOTILLA_LOCAL_API_HOST=0.0.0.0 \
    FLOTILLA_LOCAL_API_PORT=8000 \
    FLOTILLA_LABELS=platform=jetson \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=all
RUN groupadd --system --gid 10001 flotilla \
 && useradd --system --uid 10001 --gid flotilla --groups video --home-dir /var/lib/flotilla-agent --shell /usr/sbin/nologin flotilla \
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
CMD ["node", "agent/bin/flotilla-agent.mjs"]
