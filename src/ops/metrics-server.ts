import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { registry } from '../metrics.js';

/**
 * The private metrics server (METRICS_PORT, on METRICS_HOST), started by every role: `/metrics` (this process's
 * counters and the database gauges its refresher keeps in memory: a scrape runs no query), `/healthz`, and `/readyz`
 * when the process has a readiness check. Never on the public webhook port. With METRICS_TOKEN set, `/metrics` needs
 * `Authorization: Bearer <token>` (compared in constant time).
 */
export async function buildMetricsApp(config: Config, opts: { ready?: () => Promise<boolean> } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, requestTimeout: config.httpRequestTimeoutMs });
  const expected = config.metricsToken ? digest(`Bearer ${config.metricsToken}`) : undefined;
  app.get('/healthz', async () => ({ ok: true }));
  if (opts.ready) {
    const ready = opts.ready;
    app.get('/readyz', async (_req, reply) => {
      const ok = await ready();
      return reply.code(ok ? 200 : 503).send({ ready: ok });
    });
  }
  app.get('/metrics', async (req, reply) => {
    if (expected) {
      const given = req.headers.authorization;
      if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected))
        return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'UNAUTHORIZED', message: 'bearer token required' });
    }
    return reply.type(registry.contentType).send(await registry.metrics());
  });
  return app;
}

/** Fixed-length digests, so the comparison's time says nothing about the token's length either. */
const digest = (s: string) => createHash('sha256').update(s).digest();
