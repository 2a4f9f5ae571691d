import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import { createDb } from './db/client.js';
import { metrics } from './metrics.js';

export interface WebHandle {
  app: FastifyInstance;
  url: string;
  /**
   * Stops accepting, finishes in-flight requests, closes the pool. At `deadline` (epoch ms) − 1 s, connections still
   * open (a client that never finishes its body) are destroyed: those requests were never acknowledged.
   */
  stop(deadline?: number): Promise<void>;
}

/** The web role: one bounded pool (DB_POOL_MAX, no prepared statements so it works behind a pooler). */
export async function startWeb(config: Config, url: string): Promise<WebHandle> {
  const db = createDb({
    url,
    max: config.dbPoolMax,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    prepare: false,
    applicationName: 'wharf-web',
    // What the intake costs the database, on the private /metrics (benchmarks read it).
    onQuery: () => metrics.dbStatements.inc({ pool: 'web' }),
  });
  const app = await buildApp({ config, db });
  const address = await app.listen({ port: config.port, host: config.host });
  return {
    app,
    url: address,
    async stop(deadline = Date.now() + config.shutdownTimeoutMs) {
      const cut = setTimeout(() => app.server.closeAllConnections(), Math.max(0, deadline - Date.now() - 1000));
      // Fastify closes idle keep-alive connections once, at close; one whose request finishes afterwards would stay
      // open for keepAliveTimeout (72 s) and hold the exit. Keep closing those as they become idle.
      const idle = setInterval(() => app.server.closeIdleConnections(), 50);
      try {
        await app.close();
      } finally {
        clearTimeout(cut);
        clearInterval(idle);
      }
      await db.close();
    },
  };
}
