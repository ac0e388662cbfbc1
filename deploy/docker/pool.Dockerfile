# syntax=docker/dockerfile:1.7
# Flotilla pool worker: the embedded cloud pool, KServe v2 over HTTP with dynamic batching, on
# onnxruntime-node, reading a Triton-style model repository (<model>/<version>/model.onnx).
# Build from the repository root:
#   docker build -f deploy/docker/pool.Dockerfile -t ghcr.io/flotilla/pool:0.1.0 .
# For the CUDA provider on A100s, fetch onnxruntime-node's CUDA 12 binaries and run on an image
# that carries Node 20 with the CUDA 12 runtime and cuDNN 9 (docs/deploy.md):
#   docker build -f deploy/docker/pool.Dockerfile --build-arg ORT_INSTALL=cuda12 \
#     --build-arg RUNTIME_IMAGE=<node20-cuda12-cudnn9 image> -t ghcr.io/flotilla/pool:0.1.0-cuda12 .
ARG NODE_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=${NODE_IMAGE}

FROM ${NODE_IMAGE} AS build
ENV CI=true
RUN npm install -g pnpm@10.34.9 tsx@4.23.15
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch --prod
COPY . .
# The CPU provider is bundled; the install script's CUDA/TensorRT download is skipped unless
# ORT_INSTALL names one (cuda12), and then it runs here, once, on purpose.
ARG ORT_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN pnpm install --offline --frozen-lockfile --prod --filter "@flotilla/pool..." \
 && if [ "$ORT_INSTALL" != "skip" ]; then \
      cd node_modules/.pnpm/onnxruntime-node@*/node_modules/onnxruntime-node \
      && ONNXRUNTIME_NODE_INSTALL="$ORT_INSTALL" node script/install.js; \
    fi

FROM ${RUNTIME_IMAGE} AS runtime
ENV NODE_ENV=production \
    FLOTILLA_POOL_PROVIDERS=cuda,cpu \
    FLOTILLA_POOL_HOST=0.0.0.0 \
    FLOTILLA_POOL_PORT=8000 \
    FLOTILLA_POOL_MODEL_REPOSITORY=/models
COPY --from=build /usr/local/lib/node_modules/tsx /usr/local/lib/node_modules/tsx
RUN ln -s ../lib/node_modules/tsx/dist/cli.mjs /usr/local/bin/tsx \
 && groupadd --system --gid 10001 flotilla \
 && useradd --system --uid 10001 --gid flotilla --no-create-home --shell /usr/sbin/nologin flotilla \
 && mkdir -p /models
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages/protocol ./packages/protocol
COPY --from=build /src/packages/kserve ./packages/kserve
COPY --from=build /src/packages/release ./packages/release
COPY --from=build /src/agent ./agent
COPY --from=build /src/packages/pool ./packages/pool
USER flotilla
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.FLOTILLA_POOL_PORT||8000)+'/v2/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["tsx", "packages/pool/src/main.ts"]
