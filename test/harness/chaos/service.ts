import path from 'node:path';
import { loadConfig } from '../../../src/config.js';
import { freePort } from '../../../src/net.js';
import { workerConnectionBound } from '../../../src/worker/runner.js';
import { type WharfProcess, wharfProcess } from './processes.js';

/**
 * wharf as it runs in production, but on loopback: one web process and one worker process on a given database,
 * polling a given provider (the simulator). `env` overrides the defaults below (any key of src/config.ts).
 */
export interface WharfService {
  web: WharfProcess;
  worker: WharfProcess;
  /** e.g. http://127.0.0.1:41234 */
  webUrl: string;
  /** The env both processes run with (what the harness's timings depend on). */
  env: Readonly<Record<string, string>>;
  /**
   * Connections the two processes may hold at most, as the code bounds them: the web pool (DB_POOL_MAX), the
   * worker's graphile-worker and task pools (src/worker/runner.ts), and the worker's metrics connection.
   */
  connectionBound: number;
  stop(): Promise<void>;
}

export async function startWharfService(p: {
  databaseUrl: string;
  providerBaseUrl: string;
  logDir: string;
  env?: Record<string, string>;
}): Promise<WharfService> {
  const [webPort, metricsPort] = [await freePort(), await freePort()];
  const env: Record<string, string> = {
    DATABASE_URL: p.databaseUrl,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    PROVIDER_BASE_URL: p.providerBaseUrl,
    HEARTBEAT_INTERVAL_MS: '1000',
    STALE_LOCK_AFTER_MS: '5000',
    SHUTDOWN_TIMEOUT_MS: '10000',
    ...p.env,
  };
  const config = loadConfig(env);
  const bound = workerConnectionBound(config);
  const webUrl = `http://127.0.0.1:${webPort}`;
  const web = wharfProcess({
    role: 'web',
    env: { ...env, PORT: String(webPort), METRICS_PORT: '0' },
    healthUrl: `${webUrl}/readyz`,
    logFile: path.join(p.logDir, 'web.log'),
  });
  const worker = wharfProcess({
    role: 'worker',
    env: { ...env, PORT: '0', METRICS_PORT: String(metricsPort) },
    healthUrl: `http://127.0.0.1:${metricsPort}/healthz`,
    logFile: path.join(p.logDir, 'worker.log'),
  });
  // The web first: it applies the migrations the worker's start would otherwise race for.
  await web.start();
  try {
    await worker.start();
  } catch (err) {
    await web.stop();
    throw err;
  }
  return {
    web,
    worker,
    webUrl,
    env,
    connectionBound: config.dbPoolMax + bound.graphile + bound.tasks + 1,
    async stop() {
      await Promise.all([web.stop(), worker.stop()]);
    },
  };
}
