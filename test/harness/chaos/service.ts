import path from 'node:path';
import { loadConfig } from '../../../src/config.js';
import { freePort } from '../../../src/net.js';
import { workerConnectionBound } from '../../../src/worker/runner.js';
import { type WharfProcess, wharfProcess } from './processes.js';

/**
 * wharf as it runs in production, but on loopback: `webs` web processes and `workers` worker processes (one of each
 * by default) on a given database, polling a given provider (the simulator). `env` overrides the defaults below (any
 * key of src/config.ts).
 */
export interface WharfService {
  webs: WharfProcess[];
  workers: WharfProcess[];
  /** One per web process, e.g. http://127.0.0.1:41234 */
  webUrls: string[];
  /** The first of each (a one-process service's web and worker). */
  web: WharfProcess;
  worker: WharfProcess;
  webUrl: string;
  /** The env every process runs with (what the harness's timings depend on). */
  env: Readonly<Record<string, string>>;
  /**
   * Connections the processes may hold at most, as the code bounds them: each web pool (DB_POOL_MAX), each worker's
   * graphile-worker and task pools (src/worker/runner.ts) and metrics connection.
   */
  connectionBound: number;
  stop(): Promise<void>;
}

export async function startWharfService(p: {
  databaseUrl: string;
  providerBaseUrl: string;
  logDir: string;
  env?: Record<string, string>;
  webs?: number;
  workers?: number;
}): Promise<WharfService> {
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
  const webs: WharfProcess[] = [];
  const webUrls: string[] = [];
  for (let i = 0; i < (p.webs ?? 1); i++) {
    const port = await freePort();
    webUrls.push(`http://127.0.0.1:${port}`);
    webs.push(
      wharfProcess({
        role: 'web',
        env: { ...env, PORT: String(port), METRICS_PORT: '0' },
        healthUrl: `http://127.0.0.1:${port}/readyz`,
        logFile: path.join(p.logDir, `web-${i + 1}.log`),
      }),
    );
  }
  const workers: WharfProcess[] = [];
  for (let i = 0; i < (p.workers ?? 1); i++) {
    const metricsPort = await freePort();
    workers.push(
      wharfProcess({
        role: 'worker',
        env: { ...env, PORT: '0', METRICS_PORT: String(metricsPort) },
        healthUrl: `http://127.0.0.1:${metricsPort}/healthz`,
        logFile: path.join(p.logDir, `worker-${i + 1}.log`),
      }),
    );
  }
  const all = [...webs, ...workers];
  const stop = () => Promise.all(all.map((w) => w.stop())).then(() => undefined);
  try {
    // One web first: it applies the migrations the other processes' starts would otherwise race for.
    await webs[0].start();
    await Promise.all(all.slice(1).map((w) => w.start()));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    webs,
    workers,
    webUrls,
    web: webs[0],
    worker: workers[0],
    webUrl: webUrls[0],
    env,
    connectionBound: webs.length * config.dbPoolMax + workers.length * (bound.graphile + bound.tasks + bound.express + 1),
    stop,
  };
}
