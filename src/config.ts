import { ConfigError } from './errors.js';
import { type KeyRing, parseKeyRing } from './key-ring.js';

/**
 * The only reader of process.env. Every variable, its unit and default is listed here and in the README.
 * `loadConfig` reports every bad key in one error rather than failing on the first.
 */

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** Also the drain's default bound on an event time's lead over its arrival (src/drain/apply-chunk.ts). */
export const DEFAULT_WEBHOOK_TOLERANCE_MS = 5 * MINUTE;

export const Roles = ['all', 'web', 'worker'] as const;
export type Role = (typeof Roles)[number];

type Env = Record<string, string | undefined>;

export const ProviderEnvironments = ['production', 'sandbox'] as const;
/** OA `servers`: the production and sandbox API origins. */
export const PROVIDER_ORIGINS: Record<(typeof ProviderEnvironments)[number], string> = {
  production: 'https://api.shipbob.com',
  sandbox: 'https://sandbox-api.shipbob.com',
};

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
    /** A decimal fraction in [min, max] (a share: 0.01 is 1%). */
    share(key: string, dflt: number, min = 0, max = 1): number {
      const v = raw(key);
      if (v === undefined) return dflt;
      const n = Number(v);
      if (!/^\d*\.?\d+$/.test(v) || n < min || n > max) {
        problems.push(`${key} must be a decimal in [${min}, ${max}], got ${JSON.stringify(v)}`);
        return dflt;
      }
      return n;
    },
    /** A value the operator keeps secret: never echoed in an error. */
    secret(key: string, minChars = 1): string | undefined {
      const v = raw(key);
      if (v !== undefined && v.length < minChars) problems.push(`${key} must be at least ${minChars} characters`);
      return v;
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
    keyRing(key: string): KeyRing | undefined {
      const v = raw(key);
      if (v === undefined) return undefined;
      try {
        return parseKeyRing(v);
      } catch (err) {
        // parseKeyRing names the entry and the problem, never the key material.
        problems.push(`${key}: ${(err as Error).message}`);
        return undefined;
      }
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

/** How the client address of a request is found (the per-address budget of unverified traffic keys on it). */
export const TrustProxy = ['off', 'fly', 'x-forwarded-for'] as const;
export type TrustProxy = (typeof TrustProxy)[number];

export function loadConfig(env: Env = process.env) {
  const problems: string[] = [];
  const r = reader(env, problems);
  const port = r.int('PORT', 3000, 0, 65535);
  const host = r.str('HOST', '127.0.0.1');
  const dbPoolMax = r.int('DB_POOL_MAX', 10, 1, 1000);
  const httpRequestTimeoutMs = r.int('HTTP_REQUEST_TIMEOUT_MS', 15 * SECOND, 100);
  const httpHeadersTimeoutMs = r.int('HTTP_HEADERS_TIMEOUT_MS', 10 * SECOND, 100);
  // Node refuses a server whose headers timeout exceeds its request timeout: say so here, with the keys' names.
  if (httpHeadersTimeoutMs > httpRequestTimeoutMs)
    problems.push(`HTTP_HEADERS_TIMEOUT_MS (${httpHeadersTimeoutMs}) must not exceed HTTP_REQUEST_TIMEOUT_MS (${httpRequestTimeoutMs})`);
  const webhookBodyLimitBytes = r.int('WEBHOOK_BODY_LIMIT_BYTES', 256 * 1024, 1);
  const providerEnvironment = r.oneOf('PROVIDER_ENVIRONMENT', ProviderEnvironments, 'production');
  const pollIntervalMs = r.int('POLL_INTERVAL_MS', 5 * MINUTE, SECOND);
  // The adaptive interval's bounds (docs/polling.md): by default a fifth of the base and six times it.
  const pollIntervalMinMs = r.int('POLL_INTERVAL_MIN_MS', Math.max(SECOND, Math.round(pollIntervalMs / 5)), SECOND);
  const pollIntervalMaxMs = r.int('POLL_INTERVAL_MAX_MS', pollIntervalMs * 6, SECOND, 7 * DAY);
  if (pollIntervalMinMs > pollIntervalMs || pollIntervalMs > pollIntervalMaxMs)
    problems.push(
      `POLL_INTERVAL_MIN_MS (${pollIntervalMinMs}) <= POLL_INTERVAL_MS (${pollIntervalMs}) <= POLL_INTERVAL_MAX_MS (${pollIntervalMaxMs}) must hold`,
    );
  const pollTrustMissShare = r.share('POLL_TRUST_MISS_SHARE', 0.01, 0.0001, 1);
  const pollTrustReliableShare = r.share('POLL_TRUST_RELIABLE_SHARE', 0.001, 0, 1);
  if (pollTrustReliableShare >= pollTrustMissShare)
    problems.push(
      `POLL_TRUST_RELIABLE_SHARE (${pollTrustReliableShare}) must be below POLL_TRUST_MISS_SHARE (${pollTrustMissShare})`,
    );
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
    host,
    publicUrl: r.str('PUBLIC_URL', `http://localhost:${port}`).replace(/\/+$/, ''),

    webhookToleranceMs: r.int('WEBHOOK_TOLERANCE_MS', DEFAULT_WEBHOOK_TOLERANCE_MS, 0),
    /** 256 KiB: see docs/intake.md (threat model) for where the figure comes from. */
    webhookBodyLimitBytes,
    /** Request bodies being received at once, whole process; a request that would go beyond answers 503 unread. */
    intakeBodyBytesInFlight: r.int('INTAKE_BODY_BYTES_IN_FLIGHT', 32 * 1024 * 1024, 1),
    /** A request's headers and body must arrive within this (Node's requestTimeout; the provider gives up at 15 s). */
    httpRequestTimeoutMs,
    httpHeadersTimeoutMs,
    /** How often Node looks for requests past those timeouts (its default, 30 s, would let them run 30 s longer). */
    httpTimeoutCheckIntervalMs: r.int('HTTP_TIMEOUT_CHECK_INTERVAL_MS', SECOND, 10),
    /** An idle kept-alive connection is closed after this. */
    httpKeepAliveTimeoutMs: r.int('HTTP_KEEP_ALIVE_TIMEOUT_MS', 72 * SECOND, 0),
    /** Where the client address comes from: the socket, Fly's `Fly-Client-IP`, or the last `X-Forwarded-For` hop. */
    trustProxy: r.oneOf('TRUST_PROXY', TrustProxy, 'off'),
    /** A request not committed within this answers 503 (the provider retries). */
    intakeTimeoutMs: r.int('INTAKE_TIMEOUT_MS', 5 * SECOND, 100),
    /** Group commit: insert batches in the database at once (keep below DB_POOL_MAX: look-ups need a connection). */
    intakeBatchesInFlight: r.int('INTAKE_BATCHES_IN_FLIGHT', Math.max(1, dbPoolMax - 2), 1, 1000),
    intakeBatchMaxRows: r.int('INTAKE_BATCH_MAX_ROWS', 500, 1, 10000),
    /** Requests waiting for a batch slot; beyond this the intake answers 503 at once (overload). */
    intakeQueueMaxRows: r.int('INTAKE_QUEUE_MAX_ROWS', 20000, 1),
    /** How long a source and its secrets are cached (enabling, disabling, expiring take effect within this). */
    sourceCacheTtlMs: r.int('SOURCE_CACHE_TTL_MS', 5 * SECOND, 0),
    /** Verified deliveries per source per window, per process (429 beyond). Unverified requests never count. */
    rateLimitMax: r.int('RATE_LIMIT_MAX', 5000, 1),
    rateLimitWindowMs: r.int('RATE_LIMIT_WINDOW_MS', SECOND, 1),
    /** Rejected requests one client address may make to one source (or to unknown ones) per window before 429. */
    unverifiedLimitMax: r.int('UNVERIFIED_LIMIT_MAX', 100, 1),
    unverifiedLimitWindowMs: r.int('UNVERIFIED_LIMIT_WINDOW_MS', MINUTE, 1),
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
    /**
     * A source with more pending events than this is backlogged (docs/drain.md "Fairness"): one more drain loop, the
     * express lane, serves only the others, so a backfill of one source never holds another's fresh webhooks behind
     * full chunks. 0 turns the express loop off.
     */
    drainExpressPerSource: r.int('DRAIN_EXPRESS_PER_SOURCE', 50, 0, 10000),
    drainKickDebounceMs: r.int('DRAIN_KICK_DEBOUNCE_MS', 25, 0),

    /** `sandbox` selects ShipBob's sandbox API (separate accounts); PROVIDER_BASE_URL, when set, wins. */
    providerEnvironment,
    providerBaseUrl: r.url('PROVIDER_BASE_URL') ?? PROVIDER_ORIGINS[providerEnvironment],
    providerApiVersion: r.str('PROVIDER_API_VERSION', '2026-01'),
    /** Our own budget per API token, below the provider's 150/min. */
    providerCallsPerMinute: r.int('PROVIDER_CALLS_PER_MINUTE', 120, 1),
    /** The base interval: each source's streams are polled this often unless its webhook trust moves it. */
    pollIntervalMs,
    /** The adaptive interval (src/poll/intervals.ts) stays in [min, max]. */
    pollIntervalMinMs,
    pollIntervalMaxMs,
    /** A recent share of poll catches above this shortens the source's interval (in proportion). */
    pollTrustMissShare,
    /** A recent share at or below this, over POLL_TRUST_MIN_EVENTS events at least, lengthens it to the max. */
    pollTrustReliableShare,
    /** Fewer events than this over the recent days: the base interval holds. */
    pollTrustMinEvents: r.int('POLL_TRUST_MIN_EVENTS', 200, 1),
    /** Share of a token's PROVIDER_CALLS_PER_MINUTE that shortened polling intervals may plan to spend. */
    pollBudgetShare: r.share('POLL_BUDGET_SHARE', 0.5, 0.01, 1),
    pollOverlapMs: r.int('POLL_OVERLAP_MS', 2 * MINUTE, 0),
    pollLagMs: r.int('POLL_LAG_MS', 30 * SECOND, 0),
    billingRescanDays: r.int('BILLING_RESCAN_DAYS', 7, 0),
    /** How far back a stream's first poll reaches when no backfill_since is set on its cursor. */
    pollBackfillDays: r.int('POLL_BACKFILL_DAYS', 30, 0),
    /** Reconciliation (hourly): closed UTC days checked against the provider's counts, one call each when complete. */
    reconcileDays: r.int('RECONCILE_DAYS', 7, 0, 90),

    heartbeatIntervalMs: r.int('HEARTBEAT_INTERVAL_MS', 5 * SECOND, 100),
    staleLockAfterMs: r.int('STALE_LOCK_AFTER_MS', MINUTE, SECOND),
    inboxRetentionDays: r.int('INBOX_RETENTION_DAYS', 30, 1),
    deadRetentionDays: r.int('DEAD_RETENTION_DAYS', 90, 1),
    /** poll_runs (the sync-run log) rows are deleted after this. */
    pollRunRetentionDays: r.int('POLL_RUN_RETENTION_DAYS', 30, 1),
    /** Quarantine counters and samples are deleted after this (shorter than the inbox: they are diagnostics). */
    quarantineRetentionDays: r.int('QUARANTINE_RETENTION_DAYS', 7, 1),
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', 25 * SECOND, 0),
    /** Every role serves /metrics (and /healthz, /readyz) here, never on PORT. 0 = off. */
    metricsPort: r.int('METRICS_PORT', 9091, 0, 65535),
    /** Listen address of the metrics server (on Fly: `fly-local-6pn`, the private network only). */
    metricsHost: r.str('METRICS_HOST', host),
    /** When set, /metrics requires `Authorization: Bearer <token>`. */
    metricsToken: r.secret('METRICS_TOKEN', 16),
    /** Database gauges are read on this period on their own connection, and served from memory. */
    metricsGaugeIntervalMs: r.int('METRICS_GAUGE_INTERVAL_MS', 15 * SECOND, 100),

    /**
     * Keys for secrets at rest (src/secrets/): the first encrypts, every one decrypts. Unset: withKeyRing() reads the
     * key file beside the embedded data, outside production only.
     */
    encryptionKeys: r.keyRing('WHARF_ENCRYPTION_KEY'),
    /** Basic-auth password of the ops page on METRICS_PORT (any user name); unset = no auth (the port is private). */
    opsPassword: r.secret('OPS_PASSWORD', 12),
    /** How long the ops page's per-minute samples are kept (sample_ops_metrics prunes older ones). */
    opsSampleRetentionDays: r.int('OPS_SAMPLE_RETENTION_DAYS', 7, 1, 90),
  };
  // Production never falls back to a database of its own: a forgotten DATABASE_URL must stop the process, not start
  // an empty embedded cluster that answers "0 pending". (The image ships no embedded PostgreSQL binaries anyway.)
  if (config.env === 'production' && !config.databaseUrl && !problems.some((m) => m.startsWith('DATABASE_URL')))
    problems.push('DATABASE_URL is required when NODE_ENV=production (the embedded PostgreSQL is for development only)');
  if (config.webDatabaseUrl && !config.databaseUrl)
    problems.push('WEB_DATABASE_URL needs DATABASE_URL too (migrations and the worker connect directly)');
  if (config.env === 'production' && !config.encryptionKeys && !problems.some((p) => p.startsWith('WHARF_ENCRYPTION_KEY')))
    problems.push('WHARF_ENCRYPTION_KEY is required when NODE_ENV=production (secrets are stored encrypted under it)');
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

export type Config = ReturnType<typeof loadConfig>;

/** The key ring of a config that has one (WHARF_ENCRYPTION_KEY, or withKeyRing); throws otherwise. */
export function keyRingOf(config: Pick<Config, 'encryptionKeys'>): KeyRing {
  if (!config.encryptionKeys) throw new ConfigError(['no encryption key: set WHARF_ENCRYPTION_KEY (or start through withKeyRing)']);
  return config.encryptionKeys;
}
