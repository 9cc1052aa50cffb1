# syntax=docker/dockerfile:1
#
# token-vendor image (the default, last target) and the sandbox IdP for demos and
# tests in a target of its own, never in the production image:
#   docker build -t token-vendor .
#   docker build --target identity-sandbox -t token-vendor-sandbox .
#
# The base is the Node release the suite runs on (.nvmrc; test/deploy/dockerfile.int-spec.ts
# keeps the two equal), and the build stage refuses any other. Pin it by digest for a
# reproducible image; resolve the digest of the tag where a registry is reachable:
#   docker buildx imagetools inspect node:24.22.3-bookworm-slim --format '{{json .Manifest.Digest}}'
#   docker build --build-arg NODE_DIGEST=sha256:<that digest> .
# (The repository records no digest: none could be obtained where this file was written.)
#
# Every stage uses the same Debian base: the lockfile holds glibc-specific
# optional binaries, so node_modules installed here must run on the same libc.
ARG NODE_VERSION=24.22.3
ARG NODE_DIGEST=
ARG NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim${NODE_DIGEST:+@}${NODE_DIGEST}

# --- build: full dependency tree, compile every app into dist/ -------------
FROM ${NODE_IMAGE} AS build
ARG NODE_VERSION
# The runtime tested is the runtime shipped: stop if the base holds another Node.
RUN node -e "if (process.versions.node !== process.argv[1]) { console.error('base image has Node ' + process.versions.node + ', expected ' + process.argv[1]); process.exit(1); }" "${NODE_VERSION}"
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# --- deps: production dependencies only (webpack leaves node_modules external)
FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

# --- node: the base without npm, npx and corepack (nothing installs at run time) --
FROM ${NODE_IMAGE} AS node
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin app
# A fixed numeric uid (above), so Kubernetes' runAsNonRoot can verify it (a user
# name cannot be checked) and the chart's runAsUser matches.
WORKDIR /app
ENV NODE_ENV=production

# --- identity-sandbox: the fake IdP for the demo and docker compose ----------
FROM node AS identity-sandbox
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="token-vendor identity sandbox" \
      org.opencontainers.image.description="A fake OAuth 2.0 token endpoint for demos and tests; never for production" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="UNLICENSED"
ENV SANDBOX_PORT=4000 \
    SANDBOX_HOST=0.0.0.0
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist/apps/identity-sandbox ./dist/apps/identity-sandbox
COPY package.json ./
USER 10001:10001
EXPOSE 4000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=10 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SANDBOX_PORT||4000)+'/health',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/apps/identity-sandbox/main.js"]

# --- runtime: the service (default target) -----------------------------------
FROM node AS runtime
ARG NODE_IMAGE
ARG NODE_DIGEST
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=
LABEL org.opencontainers.image.title="token-vendor" \
      org.opencontainers.image.description="OAuth 2.0 client-credentials token vending service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="UNLICENSED" \
      org.opencontainers.image.base.name="docker.io/library/${NODE_IMAGE}" \
      org.opencontainers.image.base.digest="${NODE_DIGEST}"
ENV PORT=3000 \
    HOST=0.0.0.0 \
    METRICS_PORT=9464 \
    TOKEN_VENDOR_CONFIG=/etc/token-vendor/config.yaml
# Files stay owned by root and are only readable by the app user: the service
# never writes under /app, so the root filesystem can be mounted read-only.
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist/apps/token-vendor ./dist/apps/token-vendor
COPY package.json ./
USER 10001:10001
# The API, and /metrics on a port of its own.
EXPOSE 3000 9464
# Slim images have no curl: ask node itself. Liveness only, never Redis or the IdP.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The app handles SIGTERM itself (drain, release locks, exit 0).
STOPSIGNAL SIGTERM
CMD ["node", "dist/apps/token-vendor/main.js"]
