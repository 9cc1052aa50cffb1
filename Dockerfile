# syntax=docker/dockerfile:1
#
# token-vendor image. The same image runs the sandbox IdP:
#   command: ["node", "dist/apps/identity-sandbox/main.js"]
#
# Every stage uses the same Debian base: the lockfile holds glibc-specific
# optional binaries, so node_modules installed here must run on the same libc.
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: full dependency tree, compile every app into dist/ -------------
FROM ${NODE_IMAGE} AS build
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

# --- runtime ----------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    TOKEN_VENDOR_CONFIG=/etc/token-vendor/config.yaml
# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it (a user name
# cannot be checked) and the chart's runAsUser matches.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin app
WORKDIR /app
# Files stay owned by root and are only readable by the app user: the service
# never writes under /app, so the root filesystem can be mounted read-only.
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
USER 10001:10001
EXPOSE 3000
# Slim images have no curl: ask node itself. Liveness only, never Redis or the IdP.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The app handles SIGTERM itself (drain, release locks, exit 0).
STOPSIGNAL SIGTERM
CMD ["node", "dist/apps/token-vendor/main.js"]
