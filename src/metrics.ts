import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The process's Prometheus registry and the counters other modules increment. Counters are per process (prom-client
 * keeps them in memory): every process serves its own `/metrics` on METRICS_PORT (never on the public PORT). Figures
 * that must agree across processes (inbox depth, cursors, budgets) are gauges read from the database on a timer, on a
 * connection of their own, and served from memory (src/ops/metrics-gauges.ts).
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'wharf_' });

const registers = [registry];

/** Outcome labels of webhook requests: `stored`, `duplicate`, `rejected`, `error`. */
export const RequestOutcome = {
  stored: 'stored',
  duplicate: 'duplicate',
  rejected: 'rejected',
  error: 'error',
} as const;

export const metrics = {
  /** Every webhook request: outcome (RequestOutcome) and reason (a quarantine reason code, or `ok`). */
  webhookRequests: new Counter({
    name: 'wharf_webhook_requests_total',
    help: 'Webhook requests by outcome and reason',
    labelNames: ['outcome', 'reason'] as const,
    registers,
  }),
  /** Deliveries of an event id already stored (the provider's retries and duplicates). */
  webhookDuplicates: new Counter({
    name: 'wharf_webhook_duplicates_total',
    help: 'Deliveries of an already stored event id',
    registers,
  }),
  /** Duplicates whose body differs from the stored one: acknowledged, never applied (the provider never changes a body). */
  webhookChangedBodies: new Counter({
    name: 'wharf_webhook_changed_body_total',
    help: 'Deliveries of an already stored event id with a different body (acknowledged as duplicates, not applied)',
    registers,
  }),
  /** Rows the quarantine writer wrote (counter upserts and samples): bounded whatever the flood. */
  quarantineRowsWritten: new Counter({
    name: 'wharf_quarantine_rows_written_total',
    help: 'Quarantine rows written (counter rows upserted and samples inserted)',
    labelNames: ['table'] as const,
    registers,
  }),
  /** Group-commit statements the intake sent (each stores a batch of deliveries). */
  intakeCommitBatches: new Counter({
    name: 'wharf_intake_commit_batches_total',
    help: 'Group-commit insert statements sent by the intake',
    registers,
  }),
  /** Statements this process's pools sent (the web pool: what the intake costs the database). */
  dbStatements: new Counter({
    name: 'wharf_db_statements_total',
    help: 'Statements sent to PostgreSQL, by pool',
    labelNames: ['pool'] as const,
    registers,
  }),
  /** Events the drain applied, by topic (unknown topics: their topic string; keep it to the provider's list). */
  eventsApplied: new Counter({
    name: 'wharf_events_applied_total',
    help: 'Inbox events applied, by topic',
    labelNames: ['topic'] as const,
    registers,
  }),
  /** Wall time of one drain chunk (claim → apply → mark), in seconds. */
  drainChunkSeconds: new Histogram({
    name: 'wharf_drain_chunk_duration_seconds',
    help: 'Duration of one drain chunk',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  }),
  /** Events marked dead (by topic; the reason is in inbox_events.last_error). */
  deadLetters: new Counter({
    name: 'wharf_dead_letters_total',
    help: 'Inbox events marked dead, by topic',
    labelNames: ['topic'] as const,
    registers,
  }),
  /** Events a poll found before any webhook brought them, by stream. */
  pollCatches: new Counter({
    name: 'wharf_poll_catches_total',
    help: 'Events found by polling that no webhook had brought, by stream',
    labelNames: ['stream'] as const,
    registers,
  }),
  /** 429 answers from the provider's API. */
  provider429s: new Counter({
    name: 'wharf_provider_429_total',
    help: 'Provider API answers with status 429',
    registers,
  }),
  /** Wall time of a webhook request, from its first byte to the answer sent, by outcome (RequestOutcome). */
  webhookRequestSeconds: new Histogram({
    name: 'wharf_webhook_request_duration_seconds',
    help: 'Webhook request duration, by outcome',
    labelNames: ['outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  }),
  /** Per applied webhook event: its inbox received_at to the commit of the chunk that applied it (observed per chunk). */
  webhookToAppliedSeconds: new Histogram({
    name: 'wharf_webhook_to_applied_seconds',
    help: 'Lag from a webhook event received to the commit of the chunk that applied it, per processed event',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers,
  }),
  /** A drain chunk's time by phase: claim (begin + claim), normalise (JS), upsert, attribution, commit. */
  drainPhaseSeconds: new Histogram({
    name: 'wharf_drain_phase_duration_seconds',
    help: 'Drain chunk time by phase (claim, normalise, upsert, attribution, commit)',
    labelNames: ['phase'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  }),
  /** Drain chunks that failed on a lock: lock_timeout (55P03), deadlock (40P01), serialization (40001), statement timeout (57014). */
  drainLockFailures: new Counter({
    name: 'wharf_drain_lock_failures_total',
    help: 'Drain chunks rolled back on a lock timeout, deadlock, serialization failure or statement timeout',
    labelNames: ['kind'] as const,
    registers,
  }),
  /** Provider API calls by endpoint (a path template, never an id) and status (HTTP code, or `network`). */
  providerRequests: new Counter({
    name: 'wharf_provider_requests_total',
    help: 'Provider API calls by endpoint template and status',
    labelNames: ['endpoint', 'status'] as const,
    registers,
  }),
  providerRequestSeconds: new Histogram({
    name: 'wharf_provider_request_duration_seconds',
    help: 'Provider API call duration (the HTTP exchange, not the rate budget wait), by endpoint template',
    labelNames: ['endpoint'] as const,
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  }),
  /** One poll run of a stream (a poll_stream job), by outcome (ok, error). */
  pollRunSeconds: new Histogram({
    name: 'wharf_poll_run_duration_seconds',
    help: 'Duration of one poll run, by stream and outcome',
    labelNames: ['stream', 'outcome'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
    registers,
  }),
  /** graphile-worker job attempts that threw, by task identifier (our task list: a bounded set). */
  jobFailures: new Counter({
    name: 'wharf_worker_job_failures_total',
    help: 'graphile-worker job attempts that failed, by task',
    labelNames: ['task'] as const,
    registers,
  }),
  /** Source look-ups of the intake: `hit` (from memory) or `miss` (read from the database). */
  sourceCacheLookups: new Counter({
    name: 'wharf_source_cache_lookups_total',
    help: 'Intake source cache look-ups by result (hit, miss)',
    labelNames: ['result'] as const,
    registers,
  }),
  /** Locks released by clear_stale_locks for dead workers. */
  staleLocksReleased: new Counter({
    name: 'wharf_stale_locks_released_total',
    help: 'graphile-worker jobs and queues unlocked because their worker died',
    registers,
  }),
};

let lastStatusReadAt: number | undefined;
/** Records a successful read of the database gauges (their age is computed at each scrape). */
export function markStatusRead(at: number = Date.now()): void {
  lastStatusReadAt = at;
}

/** Gauges set from the database on a timer (see src/ops/metrics-gauges.ts). */
export const dbGauges = {
  inboxDepth: new Gauge({
    name: 'wharf_inbox_depth',
    help: 'Pending inbox events (counted up to a cap, see wharf_inbox_depth_capped)',
    registers,
  }),
  inboxDepthCapped: new Gauge({
    name: 'wharf_inbox_depth_capped',
    help: '1 when the pending count reached its cap and the true depth is larger',
    registers,
  }),
  oldestPendingAge: new Gauge({
    name: 'wharf_inbox_oldest_pending_age_seconds',
    help: 'Age of the oldest pending inbox event',
    registers,
  }),
  inboxByStatus: new Gauge({
    name: 'wharf_inbox_events',
    help: 'Inbox events by status (dead and ignored: exact; pending: see wharf_inbox_depth)',
    labelNames: ['status'] as const,
    registers,
  }),
  pollCursorAge: new Gauge({
    name: 'wharf_poll_cursor_age_seconds',
    help: 'Seconds since the last successful poll of an enabled source’s stream (never polled: since the source was created)',
    labelNames: ['source', 'stream'] as const,
    registers,
  }),
  pollCursorCatches: new Gauge({
    name: 'wharf_poll_cursor_catches',
    help: 'Events a stream found before any webhook (stored total)',
    labelNames: ['source', 'stream'] as const,
    registers,
  }),
  reconcileShortWindows: new Gauge({
    name: 'wharf_reconcile_short_windows',
    help: "Closed windows whose count differs from the provider's total-count (re-read, waiting for the next check)",
    labelNames: ['source', 'stream'] as const,
    registers,
  }),
  reconcileNewestAge: new Gauge({
    name: 'wharf_reconcile_newest_age_seconds',
    help: 'Seconds since the end of the newest reconciled window (a day window ends at midnight UTC)',
    labelNames: ['source', 'stream'] as const,
    registers,
  }),
  webhookMissShare: new Gauge({
    name: 'wharf_webhook_miss_share',
    help: 'Share of changes only polling found, poll catches / (webhook events applied + poll catches), by source; window: day (current UTC day) or recent (the days the poll interval is chosen from)',
    labelNames: ['source', 'window'] as const,
    registers,
  }),
  webhookTrustEvents: new Gauge({
    name: 'wharf_webhook_trust_events',
    help: 'The share’s denominator (webhook events applied + poll catches), by source and window',
    labelNames: ['source', 'window'] as const,
    registers,
  }),
  pollIntervalSeconds: new Gauge({
    name: 'wharf_poll_interval_seconds',
    help: 'The poll interval poll_schedule chose for a source from its webhook trust, by reason (too_few_events, missing, reliable, normal)',
    labelNames: ['source', 'reason'] as const,
    registers,
  }),
  rateBudgetThrottled: new Gauge({
    name: 'wharf_rate_budget_throttled',
    help: 'Provider 429s recorded for a rate budget (stored total, all processes)',
    labelNames: ['budget'] as const,
    registers,
  }),
  dbConnections: new Gauge({
    name: 'wharf_db_connections',
    help: 'Open PostgreSQL connections of wharf processes, by application name and state',
    labelNames: ['application', 'state'] as const,
    registers,
  }),
  dbPoolConnections: new Gauge({
    name: 'wharf_db_pool_connections',
    help: 'Open connections per pool (application name, all processes), by use: in_use (active or in a transaction) or idle',
    labelNames: ['pool', 'use'] as const,
    registers,
  }),
  sources: new Gauge({
    name: 'wharf_sources',
    help: 'Sources by state (enabled, disabled)',
    labelNames: ['state'] as const,
    registers,
  }),
  dbPoolMax: new Gauge({
    name: 'wharf_db_pool_max',
    help: 'Configured connection bound of this process, by pool',
    labelNames: ['pool'] as const,
    registers,
  }),
  quarantined: new Gauge({
    name: 'wharf_quarantine_last_24h',
    help: 'Rejected webhook requests of known sources in the last 24 hours (hourly buckets), by reason (counted up to a cap)',
    labelNames: ['reason'] as const,
    registers,
  }),
  statusReadOk: new Gauge({
    name: 'wharf_status_read_ok',
    help: '1 when the last periodic read of the database gauges succeeded, 0 when it failed (they are stale)',
    registers,
  }),
  statusAge: new Gauge({
    name: 'wharf_status_age_seconds',
    help: 'Seconds since the database gauges were last read successfully (-1: never)',
    registers,
    collect() {
      this.set(lastStatusReadAt === undefined ? -1 : (Date.now() - lastStatusReadAt) / 1000);
    },
  }),
  payloadDrift: new Gauge({
    name: 'wharf_payload_drift',
    help: 'Payload fields the normaliser does not know or cannot read (stored total), by topic, field and problem',
    labelNames: ['topic', 'field', 'problem'] as const,
    registers,
  }),
  resolveWaiting: new Gauge({
    name: 'wharf_resolve_waiting',
    help: 'Resources waiting to be fetched by id, by source',
    labelNames: ['source'] as const,
    registers,
  }),
  webhookSubscription: new Gauge({
    name: 'wharf_webhook_subscription',
    help: "1 for each source's webhook subscription state as last checked (ok, missing, disabled, topics_missing, error, unchecked)",
    labelNames: ['source', 'state'] as const,
    registers,
  }),
  workersAlive: new Gauge({
    name: 'wharf_workers_alive',
    help: 'Workers whose heartbeat is fresher than STALE_LOCK_AFTER_MS',
    registers,
  }),
};

/** Tenant isolation (docs/tenancy.md): its own block, so other counters can be added above without conflicts. */
export const tenancyMetrics = {
  /** Inbox events dead because an entity they carry belongs to another source (also in wharf_dead_letters_total). */
  ownershipRefused: new Counter({
    name: 'wharf_ownership_refused_total',
    help: 'Inbox events refused because an entity they carry belongs to another source',
    registers,
  }),
  /** Version times later than their event's arrival + WEBHOOK_TOLERANCE_MS, clamped there by the drain. */
  futureTimesClamped: new Counter({
    name: 'wharf_event_times_clamped_total',
    help: 'Event version times clamped to received_at + WEBHOOK_TOLERANCE_MS',
    registers,
  }),
};
