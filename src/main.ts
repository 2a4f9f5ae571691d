import pino from 'pino';
import { keyRingOf, loadConfig, Roles, type Role } from './config.js';
import { withKeyRing } from './secrets/key-file.js';
import { createDb } from './db/client.js';
import { runMigrations } from './db/migrate.js';
import { resolveDatabase } from './db/resolve.js';
import { createReadiness } from './app.js';
import { startGaugeRefresher } from './ops/metrics-gauges.js';
import { encryptPlaintextAfterMigrate } from './intake/secrets-at-rest.js';
import { buildMetricsApp } from './ops/metrics-server.js';
import { opsPageRoutes } from './ops/page/routes.js';
import { startWeb } from './web.js';
import { startWorker, workerConnectionBound } from './worker/runner.js';

/**
 * `wharf [all|web|worker|migrate]` (default: WHARF_ROLE, else all): one process runs the web intake, the worker, or
 * both; `migrate` applies migrations and exits (Fly's release command). Without DATABASE_URL it runs an embedded
 * PostgreSQL. It migrates (ours and graphile-worker's) before serving.
 *
 * Shutdown (SIGTERM/SIGINT): the web stops accepting and finishes in-flight requests (each is bounded by
 * INTAKE_TIMEOUT_MS, and answers 2xx only after its commit), the worker lets running jobs finish until the deadline and
 * then fails them so they retry elsewhere; the process exits within SHUTDOWN_TIMEOUT_MS. A second signal exits at once:
 * nothing acknowledged is lost even then, because acknowledged means committed.
 */
async function main() {
  const loaded = loadConfig();
  const argRole = process.argv[2];
  const log = pino({ level: loaded.logLevel, name: 'wharf' });
  // WHARF_ENCRYPTION_KEY, else (not in production: loadConfig refused that) the key file beside the embedded data.
  const config = withKeyRing(loaded, (line) => log.info(line));
  const afterMigrate = encryptPlaintextAfterMigrate(keyRingOf(config), {
    info: (line) => log.info(line),
    warn: (line) => log.warn(line),
  });
  if (argRole === 'migrate') {
    const database = await resolveDatabase(config, (line) => log.info(line));
    await runMigrations(database.url, { afterMigrate });
    log.info('migrations applied');
    await database.stop();
    return;
  }
  if (argRole && !(Roles as readonly string[]).includes(argRole)) {
    console.error(`usage: wharf [${Roles.join('|')}|migrate]`);
    process.exit(2);
  }
  const role: Role = (argRole as Role | undefined) ?? config.role;

  let stopping = false;
  let stopAll: (deadline: number) => Promise<void> = async () => {};
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: forcing exit`);
      process.exit(1);
    }
    stopping = true;
    const deadline = Date.now() + config.shutdownTimeoutMs;
    log.info(`${signal}: shutting down (at most ${config.shutdownTimeoutMs} ms)`);
    const force = setTimeout(() => {
      log.error('shutdown timed out: forcing exit');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    try {
      await stopAll(deadline);
      log.info('stopped');
      process.exit(0);
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'shutdown failed');
      process.exit(1);
    }
  };
  // Installed before the slow start so a signal during startup is handled too (it stops what has started).
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  const database = await resolveDatabase(config, (line) => log.info(line));
  stopAll = () => database.stop();
  await runMigrations(database.url, { afterMigrate });
  log.info({ role, embedded: database.embedded }, 'migrations applied');

  // The web pool may go through a transaction-mode pooler (WEB_DATABASE_URL); migrations and the worker connect directly.
  const web = role === 'worker' ? undefined : await startWeb(config, config.webDatabaseUrl ?? database.url);
  if (web) log.info(`wharf web listening on ${web.url} (webhooks: ${config.publicUrl}/webhooks/shipbob/:sourceId)`);
  const worker = role === 'web' ? undefined : await startWorker(config, database.url, log);
  if (worker) log.info({ workerIds: worker.workerIds() }, 'wharf worker running');

  // Every role serves /metrics on the private METRICS_PORT (never on the public PORT). The database gauges are read
  // on a timer on this one-connection pool and served from memory: scrapes cost the intake and the tasks nothing.
  const metricsDb = config.metricsPort > 0 ? createDb({ url: database.url, max: 1, applicationName: 'wharf-metrics' }) : undefined;
  const pools: Record<string, number> = { metrics: 1 };
  if (web) pools.web = config.dbPoolMax;
  if (worker) {
    const bound = workerConnectionBound(config);
    pools['worker-queue'] = bound.graphile;
    pools['worker-tasks'] = bound.tasks;
    if (bound.express > 0) pools['worker-express'] = bound.express;
  }
  const gauges = metricsDb ? startGaugeRefresher({ sql: metricsDb.sql, config, pools }) : undefined;
  const metricsApp = metricsDb ? await buildMetricsApp(config, { ready: createReadiness(metricsDb.sql, 2000) }) : undefined;
  // ── ops page (src/ops/page): its own small pool, registered on the metrics server only ──
  const pageDb = metricsApp ? createDb({ url: database.url, max: 2, applicationName: 'wharf-ops-page' }) : undefined;
  if (metricsApp && pageDb) await metricsApp.register(opsPageRoutes, { sql: pageDb.sql, config, log: (fields, msg) => log.info(fields, msg) });
  const metricsUrl = metricsApp ? await metricsApp.listen({ port: config.metricsPort, host: config.metricsHost }) : undefined;
  if (metricsUrl) log.info(`wharf metrics on ${metricsUrl}/metrics; ops page: ${metricsUrl}/`);

  stopAll = async (deadline) => {
    await Promise.all([web?.stop(deadline), worker?.stop(deadline), metricsApp?.close(), gauges?.stop()]);
    await metricsDb?.close();
    await pageDb?.close();
    await database.stop();
  };
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
