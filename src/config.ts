import { ConfigError } from './errors.js';

/**
 * The only reader of process.env. Every variable, its unit and default is listed here and in the README.
 * `loadConfig` reports every bad key in one error rather than failing on the first.
 */

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export const Roles = ['all', 'web', 'worker'] as const;
export type Role = (typeof Roles)[number];

type Env = Record<string, string | undefined>;

function reader(env: Env, problems: string[]) {
  const raw = (key: string) => {
    const v = env[key];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  return {
    str(key: string, dflt: string): string {
      return raw(key) ?? dflt;
    },
    optStr(key: string): string | undefined {
      return raw(key);
    },
    int(key: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
      const v = raw(key);
      if (v === undefined) return dflt;
      const n = Number(v);
      if (!/^-?\d+$/.test(v) || n < min || n > max) {
        problems.push(`${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
        return dflt;
      }
      return n;
    },
    oneOf<T extends string>(key: string, allowed: readonly T[], dflt: T): T {
      const v = raw(key);
      if (v === undefined) return dflt;
      if (!(allowed as readonly string[]).includes(v)) {
        problems.push(`${key} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
        return dflt;
      }
      return v as T;
    },
    url(key: string): string | undefined {
      const v = raw(key);
      if (v === undefined) return undefined;
      try {
        new URL(v);
      } catch {
        // Never echo the value: a database URL carries a password.
        problems.push(`${key} must be a URL`);
        return undefined;
      }
      return v;
    },
  };
}

export function loadConfig(env: Env = process.env) {
  const problems: string[] = [];
  const r = reader(env, problems);
  const port = r.int('PORT', 3000, 0, 65535);
  const dbPoolMax = r.int('DB_POOL_MAX', 10, 1, 1000);
  const config = {
    env: r.str('NODE_ENV', 'development'),
    logLevel: r.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    role: r.oneOf('WHARF_ROLE', Roles, 'all'),

    /** Unset: wharf runs an embedded PostgreSQL in `embeddedPgDir` (refused when NODE_ENV=production). */
    databaseUrl: r.url('DATABASE_URL'),
    /**
     * The web role's pool only (e.g. a transaction-mode PgBouncer); unset: DATABASE_URL. Migrations, the worker
     * (LISTEN/NOTIFY, prepared statements) and ops always use DATABASE_URL.
     */
    webDatabaseUrl: r.url('WEB_DATABASE_URL'),
    embeddedPgDir: r.str('EMBEDDED_PG_DIR', '.wharf/pg'),
    embeddedPgPort: r.int('EMBEDDED_PG_PORT', 54329, 1, 65535),
    /** Web pool size; the worker has its own (see workerConcurrency). Works behind a transaction-mode pooler. */
    dbPoolMax,
    dbConnectTimeoutMs: r.int('DB_CONNECT_TIMEOUT_MS', 5 * SECOND, 100),

    port,
    host: r.str('HOST', '127.0.0.1'),
    publicUrl: r.str('PUBLIC_URL', `http://localhost:${port}`).replace(/\/+$/, ''),

    webhookToleranceMs: r.int('WEBHOOK_TOLERANCE_MS', 5 * MINUTE, 0),
    webhookBodyLimitBytes: r.int('WEBHOOK_BODY_LIMIT_BYTES', 1024 * 1024, 1),
    /** A request not committed within this answers 503 (the provider retries). */
    intakeTimeoutMs: r.int('INTAKE_TIMEOUT_MS', 5 * SECOND, 100),
    /** Group commit: insert batches in the database at once (keep below DB_POOL_MAX: look-ups need a connection). */
    intakeBatchesInFlight: r.int('INTAKE_BATCHES_IN_FLIGHT', Math.max(1, dbPoolMax - 2), 1, 1000),
    intakeBatchMaxRows: r.int('INTAKE_BATCH_MAX_ROWS', 500, 1, 10000),
    /** Requests waiting for a batch slot; beyond this the intake answers 503 at once (overload). */
    intakeQueueMaxRows: r.int('INTAKE_QUEUE_MAX_ROWS', 20000, 1),
    /** How long a source and its secrets are cached (enabling, disabling, expiring take effect within this). */
    sourceCacheTtlMs: r.int('SOURCE_CACHE_TTL_MS', 5 * SECOND, 0),
    rateLimitMax: r.int('RATE_LIMIT_MAX', 5000, 1),
    rateLimitWindowMs: r.int('RATE_LIMIT_WINDOW_MS', SECOND, 1),
    secretRotationOverlapMs: r.int('SECRET_ROTATION_OVERLAP_MS', DAY, 0),

    workerConcurrency: r.int('WORKER_CONCURRENCY', 4, 1, 100),
    drainChunkSize: r.int('DRAIN_CHUNK_SIZE', 500, 1, 10000),
    /**
     * Body bytes one chunk may hold (besides its count): a chunk of large events stops here, an event larger than this
     * is applied alone. 4 MiB keeps the worker under 256 MB of RSS draining 1 MiB events (npm run bench:drain); a chunk
     * of 500 ordinary events (1-3 kB each) never reaches it.
     */
    drainChunkMaxBytes: r.int('DRAIN_CHUNK_MAX_BYTES', 4 * 1024 * 1024, 1024),
    drainTimeBudgetMs: r.int('DRAIN_TIME_BUDGET_MS', 30 * SECOND, 100),
    /** Chunks one drain applies at once, each on its own connection: one's JavaScript overlaps another's SQL. */
    drainConcurrency: r.int('DRAIN_CONCURRENCY', 2, 1, 16),
    drainKickDebounceMs: r.int('DRAIN_KICK_DEBOUNCE_MS', 25, 0),

    providerBaseUrl: r.url('PROVIDER_BASE_URL') ?? 'https://api.shipbob.com',
    providerApiVersion: r.str('PROVIDER_API_VERSION', '2026-01'),
    /** Our own budget per API token, below the provider's 150/min. */
    providerCallsPerMinute: r.int('PROVIDER_CALLS_PER_MINUTE', 120, 1),
    pollIntervalMs: r.int('POLL_INTERVAL_MS', 5 * MINUTE, SECOND),
    pollOverlapMs: r.int('POLL_OVERLAP_MS', 2 * MINUTE, 0),
    pollLagMs: r.int('POLL_LAG_MS', 30 * SECOND, 0),
    billingRescanDays: r.int('BILLING_RESCAN_DAYS', 7, 0),
    /** How far back a stream's first poll reaches when no backfill_since is set on its cursor. */
    pollBackfillDays: r.int('POLL_BACKFILL_DAYS', 30, 0),

    heartbeatIntervalMs: r.int('HEARTBEAT_INTERVAL_MS', 5 * SECOND, 100),
    staleLockAfterMs: r.int('STALE_LOCK_AFTER_MS', MINUTE, SECOND),
    inboxRetentionDays: r.int('INBOX_RETENTION_DAYS', 30, 1),
    deadRetentionDays: r.int('DEAD_RETENTION_DAYS', 90, 1),
    /** poll_runs (the sync-run log) rows are deleted after this. */
    pollRunRetentionDays: r.int('POLL_RUN_RETENTION_DAYS', 30, 1),
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', 25 * SECOND, 0),
    /** The worker role (alone) serves /healthz and /metrics here; the web role serves them on PORT. 0 = off. */
    metricsPort: r.int('METRICS_PORT', 9091, 0, 65535),
  };
  // Production never falls back to a database of its own: a forgotten DATABASE_URL must stop the process, not start
  // an empty embedded cluster that answers "0 pending". (The image ships no embedded PostgreSQL binaries anyway.)
  if (config.env === 'production' && !config.databaseUrl && !problems.some((m) => m.startsWith('DATABASE_URL')))
    problems.push('DATABASE_URL is required when NODE_ENV=production (the embedded PostgreSQL is for development only)');
  if (config.webDatabaseUrl && !config.databaseUrl)
    problems.push('WEB_DATABASE_URL needs DATABASE_URL too (migrations and the worker connect directly)');
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

export type Config = ReturnType<typeof loadConfig>;
