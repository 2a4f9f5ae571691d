import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import type { DbHandle } from './db/client.js';
import { migrationsApplied } from './db/migrate.js';
import { registry } from './metrics.js';
import { renderMetrics } from './ops/metrics-gauges.js';

export interface AppDeps {
  config: Config;
  db: DbHandle;
  now?: () => Date;
}

/** Builds the HTTP app (never listens: server code and tests decide that). */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, db } = deps;
  const app = Fastify({
    logger: { level: config.logLevel, redact: ['req.headers.authorization', 'req.headers["webhook-signature"]'] },
    requestIdHeader: 'x-request-id',
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    try {
      const ready = await Promise.race([
        migrationsApplied(db.sql),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 2000).unref()),
      ]);
      return reply.code(ready ? 200 : 503).send({ ready });
    } catch {
      return reply.code(503).send({ ready: false });
    }
  });
  // Prometheus: this process's counters plus database gauges read at scrape time (bounded, src/ops/status.ts).
  app.get('/metrics', async (_req, reply) => {
    const body = await renderMetrics(db.sql, config, { web: config.dbPoolMax });
    return reply.type(registry.contentType).send(body);
  });
  return app;
}
