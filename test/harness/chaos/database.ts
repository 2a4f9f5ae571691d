import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import postgres from 'postgres';
import { startEmbeddedPostgres, tempDataDir } from '../../../src/db/embedded.js';
import { freePort } from '../../../src/net.js';

/**
 * The database a chaos run or soak owns, and the one fault it can inflict on it.
 * - No DATABASE_URL: its own embedded PostgreSQL in a temp directory on a free port; `disrupt` stops the server (fast
 *   shutdown: every connection is cut, open transactions roll back) and starts it again on the same directory and port.
 * - DATABASE_URL set (a server we must not stop): a fresh database on it; `disrupt` terminates every connection to
 *   that database (pg_terminate_backend), which is what a failover looks like to the clients.
 * `close` stops and removes the embedded server, or drops the database.
 */
export interface ChaosDatabase {
  url: string;
  kind: 'embedded' | 'external';
  /** Resolves once the database accepts connections again; returns what it did. */
  disrupt(): Promise<'restarted' | 'terminated'>;
  close(): Promise<void>;
}

export async function startChaosDatabase(p: { label: string; durable: boolean; databaseUrl?: string }): Promise<ChaosDatabase> {
  if (p.databaseUrl) return externalDatabase(p.databaseUrl, p.label);
  const dataDir = tempDataDir(p.label);
  const port = await freePort();
  let pg = await startEmbeddedPostgres({ dataDir, port, durable: p.durable });
  return {
    url: pg.url,
    kind: 'embedded',
    async disrupt() {
      await pg.stop();
      pg = await startEmbeddedPostgres({ dataDir, port, durable: p.durable });
      return 'restarted';
    },
    async close() {
      await pg.stop();
      rmSync(pg.dataDir, { recursive: true, force: true });
    },
  };
}

async function externalDatabase(serverUrl: string, label: string): Promise<ChaosDatabase> {
  const name = `wharf_${label.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    kind: 'external',
    async disrupt() {
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name} and pid <> pg_backend_pid()`;
      return 'terminated';
    },
    async close() {
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.end();
    },
  };
}
