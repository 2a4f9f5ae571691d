import path from 'node:path';
import type { Config } from '../config.js';
import { projectRoot } from '../paths.js';
import { startEmbeddedPostgres } from './embedded.js';

export interface ResolvedDatabase {
  url: string;
  embedded: boolean;
  /** Stops the embedded server if this process started it; a no-op otherwise. */
  stop(): Promise<void>;
}

/**
 * DATABASE_URL when set; otherwise the embedded PostgreSQL that `npm start` runs, in a project-local folder kept
 * across restarts. If the service already runs it (same port), this connects to it; if not, it starts it.
 */
export async function resolveDatabase(config: Config, log: (line: string) => void): Promise<ResolvedDatabase> {
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: false, stop: async () => {} };
  const pg = await startEmbeddedPostgres({
    dataDir: path.resolve(projectRoot, config.embeddedPgDir),
    port: config.embeddedPgPort,
    durable: true,
    log,
  });
  return { url: pg.url, embedded: true, stop: () => pg.stop() };
}
