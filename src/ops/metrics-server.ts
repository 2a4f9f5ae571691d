import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { DbHandle } from '../db/client.js';
import { registry } from '../metrics.js';
import { renderMetrics } from './metrics-gauges.js';

/**
 * The worker role's own small HTTP server (METRICS_PORT): /healthz and /metrics, so the worker process's counters
 * (events applied, chunk duration, dead letters, poll catches, 429s) can be scraped when it runs apart from the web.
 * Uses a one-connection pool of its own, so it never takes a connection a task needs.
 */
export async function buildMetricsApp(config: Config, db: DbHandle, pools: Record<string, number>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await renderMetrics(db.sql, config, pools)));
  return app;
}
