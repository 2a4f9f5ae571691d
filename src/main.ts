import pino from 'pino';
import { loadConfig, Roles, type Role } from './config.js';
import { runMigrations } from './db/migrate.js';
import { resolveDatabase } from './db/resolve.js';
import { startWeb } from './web.js';
import { startWorker } from './worker/runner.js';

/**
 * `wharf [all|web|worker]` (default: WHARF_ROLE, else all): one process runs the web intake, the worker, or both.
 * Without DATABASE_URL it runs an embedded PostgreSQL. It migrates (ours and graphile-worker's) before serving.
 */
async function main() {
  const config = loadConfig();
  const argRole = process.argv[2];
  if (argRole && !(Roles as readonly string[]).includes(argRole)) {
    console.error(`usage: wharf [${Roles.join('|')}]`);
    process.exit(2);
  }
  const role: Role = (argRole as Role | undefined) ?? config.role;
  const log = pino({ level: config.logLevel, name: 'wharf' });

  const database = await resolveDatabase(config, (line) => log.info(line));
  await runMigrations(database.url);
  log.info({ role, embedded: database.embedded }, 'migrations applied');

  const web = role === 'worker' ? undefined : await startWeb(config, database.url);
  if (web) log.info(`wharf web listening on ${web.url} (webhooks: ${config.publicUrl}/webhooks/shipbob/:sourceId)`);
  const worker = role === 'web' ? undefined : await startWorker(config, database.url, log);
  if (worker) log.info('wharf worker running');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: forcing exit`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: shutting down (at most ${config.shutdownTimeoutMs} ms)`);
    const force = setTimeout(() => {
      log.error('shutdown timed out: forcing exit');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    await web?.stop();
    await worker?.stop();
    await database.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
