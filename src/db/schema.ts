import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  date,
  doublePrecision,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

/**
 * Every table wharf owns. graphile-worker keeps its own schema (`graphile_worker`), migrated by its own code.
 * Timestamps are timestamptz; provider ids are bigint (numbers) except transaction ids (strings).
 */

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const createdAt = () => tz('created_at').notNull().defaultNow();

// ─── sources: a provider account (or channel) that sends webhooks and can be polled ───

export const sources = pgTable('sources', {
  id: text('id').primaryKey(),
  name: text('name').notNull().unique(),
  /** The client (merchant) its shipments belong to, unless an order's channel maps elsewhere. */
  clientId: text('client_id'),
  /**
   * Bearer token for polling, encrypted (`v1:<key id>:…`, src/secrets/cipher.ts; `plain:…` only between the 0003
   * migration and the next start); null = webhook only.
   */
  apiToken: text('api_token'),
  /** SHA-256 (hex) of the token: the key of its rate budget (rate_budgets.key), readable without the key ring. */
  apiTokenHash: text('api_token_hash'),
  enabled: boolean('enabled').notNull().default(true),
  createdAt: createdAt(),
});

/** Several secrets may be valid at once: after a rotation the old one lives until `expires_at`. */
export const sourceSecrets = pgTable(
  'source_secrets',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    sourceId: text('source_id')
      .notNull()
      .references(() => sources.id, { onDelete: 'cascade' }),
    /** Encrypted as sources.api_token is. */
    secret: text('secret').notNull(),
    createdAt: createdAt(),
    expiresAt: tz('expires_at'),
  },
  (t) => [index('source_secrets_source_idx').on(t.sourceId)],
);

/** An order's channel mapped to a client, for sources that carry several merchants. */
export const channelClients = pgTable(
  'channel_clients',
  {
    sourceId: text('source_id')
      .notNull()
      .references(() => sources.id, { onDelete: 'cascade' }),
    channelId: bigint('channel_id', { mode: 'number' }).notNull(),
    clientId: text('client_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.sourceId, t.channelId] })],
);

// ─── inbox: every event, raw, before it is applied ───

export const InboxStatus = {
  pending: 'pending',
  processed: 'processed',
  dead: 'dead',
  ignored: 'ignored',
} as const;
export const InboxVia = { webhook: 'webhook', poll: 'poll', replay: 'replay' } as const;

/** Autovacuum runs on it every 2% of dead rows, not 20% (migration 0007: the mark leaves one per event). */
export const inboxEvents = pgTable(
  'inbox_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    sourceId: text('source_id').notNull(),
    /** `webhook-id` (or a deterministic poll id): the idempotency key, unique per source for the retention period. */
    eventId: text('event_id').notNull(),
    topic: text('topic'),
    /** The body exactly as received (JSON is UTF-8 by definition; a non-JSON body never gets this far). */
    body: text('body').notNull(),
    /** Delivery headers worth keeping (never the signature). */
    headers: jsonb('headers').$type<Record<string, string>>(),
    eventTime: tz('event_time'),
    receivedAt: tz('received_at').notNull().defaultNow(),
    via: text('via').notNull().default(InboxVia.webhook),
    status: text('status').notNull().default(InboxStatus.pending),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    duplicateCount: integer('duplicate_count').notNull().default(0),
    processedAt: tz('processed_at'),
    /** The entities the drain read in it ('shipment:123', 'token:…' for an unreadable body): `ops explain` (0009). */
    entityKeys: text('entity_keys').array(),
  },
  (t) => [
    uniqueIndex('inbox_events_source_event_uq').on(t.sourceId, t.eventId),
    // The claim query orders pending rows by id; without this the drain was 4-6x slower (docs/drain.md).
    index('inbox_events_pending_idx')
      .on(t.id)
      .where(sql`status = 'pending'`),
    // The fair claim's skip scan over sources with pending rows and each source's pending rows (0008). Its predicate
    // is a range that status = 'pending' implies but that does not imply it: the claim's per-source reads say the
    // range, so the pending id index cannot serve them whatever the statistics (0013).
    index('inbox_events_pending_by_source_idx')
      .on(t.sourceId, t.id)
      .where(sql`status between 'pending' and 'pending'`),
    // Dead and ignored rows only (replay, status, retention): the mark's update is not HOT (status is in the pending
    // index's predicate), so each index on every row costs an entry per mark; processed rows are pruned by id order.
    index('inbox_events_finished_idx')
      .on(t.status, t.receivedAt)
      .where(sql`status in ('dead', 'ignored')`),
    index('inbox_events_entity_keys_idx')
      .using('gin', t.entityKeys)
      .where(sql`entity_keys is not null`),
    // The ops page's dead-letter groups: a reason's newest rows (0009).
    index('inbox_events_dead_reason_idx')
      .on(sql`(coalesce(md5(last_error), ''))`, t.receivedAt, t.id)
      .where(sql`status = 'dead'`),
  ],
);

/**
 * Dead and ignored inbox rows counted per (status, source, topic, reason) and slot, kept exact by triggers on
 * inbox_events (migration 0009): a count is the sum over slots.
 */
export const inboxFinishedCounts = pgTable(
  'inbox_finished_counts',
  {
    status: text('status').notNull(),
    sourceId: text('source_id').notNull(),
    topic: text('topic'),
    reason: text('reason'),
    reasonKey: text('reason_key').notNull(),
    slot: integer('slot').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
  },
  // The counters at zero, which a prune run deletes (0014): without it that delete read the whole table, whose size
  // follows the counters' churn (each dead or ignored row's insert and delete updates one), not its rows.
  (t) => [index('inbox_finished_counts_zero_idx').on(t.slot).where(sql`count = 0`)],
);

/**
 * One row: where the prune's walk of processed rows starts (migration 0012, src/inbox/prune.ts). Every inbox row with
 * an id at or below `processed_after_id` is dead or ignored (or gone); `reopened` counts the rows a trigger saw go
 * back to pending or processed (it lowers the watermark below each).
 */
export const inboxPruneState = pgTable('inbox_prune_state', {
  id: boolean('id').primaryKey().default(true),
  processedAfterId: bigint('processed_after_id', { mode: 'number' }).notNull().default(0),
  reopened: bigint('reopened', { mode: 'number' }).notNull().default(0),
});

/**
 * Samples of refused requests of known sources (a few per source, reason and hour: src/intake/quarantine.ts), kept for
 * diagnosis (a spike after a secret rotation shows here). Never a body or a secret.
 */
export const quarantine = pgTable(
  'quarantine',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    sourceId: text('source_id'),
    reason: text('reason').notNull(),
    statusCode: integer('status_code').notNull(),
    eventId: text('event_id'),
    sizeBytes: integer('size_bytes').notNull(),
    bodySha256: text('body_sha256'),
    remoteAddr: text('remote_addr'),
    receivedAt: tz('received_at').notNull().defaultNow(),
  },
  (t) => [index('quarantine_received_idx').on(t.receivedAt)],
);

/** Refusals of known sources counted per (source, reason, hour): the quarantine's bounded figures. */
export const quarantineCounts = pgTable(
  'quarantine_counts',
  {
    sourceId: text('source_id').notNull(),
    reason: text('reason').notNull(),
    /** Start of the hour. */
    bucket: tz('bucket').notNull(),
    statusCode: integer('status_code').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
    /** Body bytes of those requests (declared size when unread). */
    bytes: bigint('bytes', { mode: 'number' }).notNull(),
  },
  (t) => [
    primaryKey({ name: 'quarantine_counts_pk', columns: [t.sourceId, t.reason, t.bucket] }),
    index('quarantine_counts_bucket_idx').on(t.bucket),
  ],
);

// ─── the operations database: what the provider tells us, keyed by its ids ───

/**
 * Each applied entity records the version it holds: (`event_time`, `event_inbox_id`). An upsert only replaces a row
 * when the incoming version is newer, ties broken by inbox id, so order of arrival never matters.
 */
export const orders = pgTable(
  'orders',
  {
    id: bigint('id', { mode: 'number' }).primaryKey(),
    sourceId: text('source_id').notNull(),
    clientId: text('client_id'),
    referenceId: text('reference_id'),
    orderNumber: text('order_number'),
    status: text('status'),
    channelId: bigint('channel_id', { mode: 'number' }),
    channelName: text('channel_name'),
    createdDate: tz('created_date'),
    purchaseDate: tz('purchase_date'),
    lastUpdateAt: tz('last_update_at'),
    data: jsonb('data'),
    eventTime: tz('event_time').notNull(),
    eventInboxId: bigint('event_inbox_id', { mode: 'number' }).notNull(),
    updatedAt: tz('updated_at').notNull().defaultNow(),
    /** Shipments the provider listed on the order in the version held (null: it listed none); the reconciliation
     * counts an order complete when wharf holds that many (migration 0011, src/poll/reconcile.ts). */
    shipmentCount: integer('shipment_count'),
  },
  // A source's orders by last update (the reconciliation's count per day); also every lookup by source.
  (t) => [index('orders_source_last_update_idx').on(t.sourceId, t.lastUpdateAt)],
);

export const shipments = pgTable(
  'shipments',
  {
    id: bigint('id', { mode: 'number' }).primaryKey(),
    orderId: bigint('order_id', { mode: 'number' }),
    sourceId: text('source_id').notNull(),
    clientId: text('client_id'),
    referenceId: text('reference_id'),
    status: text('status'),
    trackingCarrier: text('tracking_carrier'),
    trackingNumber: text('tracking_number'),
    trackingUrl: text('tracking_url'),
    createdDate: tz('created_date'),
    lastUpdateAt: tz('last_update_at'),
    lastTrackingUpdateAt: tz('last_tracking_update_at'),
    actualFulfillmentDate: tz('actual_fulfillment_date'),
    deliveryDate: tz('delivery_date'),
    /** Set once delivery is known (delivery_date, a delivered topic, or timeline 609); ends timeline re-checks. */
    deliveredAt: tz('delivered_at'),
    data: jsonb('data'),
    eventTime: tz('event_time').notNull(),
    eventInboxId: bigint('event_inbox_id', { mode: 'number' }).notNull(),
    updatedAt: tz('updated_at').notNull().defaultNow(),
    /** Tiered timeline re-check schedule for undelivered shipments (the poller owns these two). */
    timelineCheckedAt: tz('timeline_checked_at'),
    timelineNextCheckAt: tz('timeline_next_check_at'),
  },
  (t) => [
    index('shipments_order_idx').on(t.orderId),
    // listDueTimelines: one source's due shipments in due order (never checked first, as '-infinity'), read from the
    // index without a sort and without touching other sources' rows (migration 0007, docs/scale.md).
    index('shipments_timeline_due_source_idx')
      .on(t.sourceId, sql`(coalesce(${t.timelineNextCheckAt}, '-infinity'::timestamptz))`, t.id)
      .where(sql`delivered_at IS NULL AND status NOT IN ('Cancelled', 'CleanSweeped')`),
  ],
);

export const shipmentTimeline = pgTable(
  'shipment_timeline',
  {
    shipmentId: bigint('shipment_id', { mode: 'number' }).notNull(),
    logTypeId: integer('log_type_id').notNull(),
    timestamp: tz('timestamp').notNull(),
    logTypeName: text('log_type_name'),
    logTypeText: text('log_type_text'),
    metadata: jsonb('metadata'),
  },
  (t) => [primaryKey({ columns: [t.shipmentId, t.logTypeId, t.timestamp] })],
);

export const returns = pgTable(
  'returns',
  {
    id: bigint('id', { mode: 'number' }).primaryKey(),
    sourceId: text('source_id').notNull(),
    clientId: text('client_id'),
    referenceId: text('reference_id'),
    status: text('status'),
    originalShipmentId: bigint('original_shipment_id', { mode: 'number' }),
    orderId: bigint('order_id', { mode: 'number' }),
    data: jsonb('data'),
    eventTime: tz('event_time').notNull(),
    eventInboxId: bigint('event_inbox_id', { mode: 'number' }).notNull(),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  (t) => [index('returns_shipment_idx').on(t.originalShipmentId)],
);

/** Inventory items whose client is known, for attributing storage (`FC`) charges. */
/** Inventory items (for FC storage charges): owned by the source that stored them first (docs/tenancy.md). */
export const inventoryItems = pgTable(
  'inventory_items',
  {
    id: bigint('id', { mode: 'number' }).primaryKey(),
    sourceId: text('source_id').notNull(),
    clientId: text('client_id'),
    name: text('name'),
    sku: text('sku'),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  (t) => [index('inventory_items_source_idx').on(t.sourceId)],
);

export const AttributionStatus = {
  attributed: 'attributed',
  /** Its reference may still arrive (a shipment, a return): retried set-based when one lands. */
  pending: 'pending',
  /** Nothing to attribute through (reference type without a client link). */
  unattributable: 'unattributable',
} as const;

export const transactions = pgTable(
  'transactions',
  {
    transactionId: text('transaction_id').primaryKey(),
    sourceId: text('source_id').notNull(),
    amount: numeric('amount').notNull(),
    currencyCode: text('currency_code'),
    chargeDate: tz('charge_date'),
    invoiceId: bigint('invoice_id', { mode: 'number' }),
    invoiceDate: tz('invoice_date'),
    invoiceType: text('invoice_type'),
    /** OA: boolean (true: billed). */
    invoicedStatus: boolean('invoiced_status'),
    referenceId: text('reference_id'),
    referenceType: text('reference_type'),
    transactionFee: text('transaction_fee'),
    transactionType: text('transaction_type'),
    fulfillmentCenter: text('fulfillment_center'),
    taxes: jsonb('taxes'),
    additionalDetails: jsonb('additional_details'),
    clientId: text('client_id'),
    attributionStatus: text('attribution_status').notNull().default(AttributionStatus.pending),
    attributionReason: text('attribution_reason'),
    eventTime: tz('event_time').notNull(),
    eventInboxId: bigint('event_inbox_id', { mode: 'number' }).notNull(),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    // Attribution catches up through this: pending transactions by what they reference.
    index('transactions_pending_ref_idx')
      .on(t.referenceType, t.referenceId)
      .where(sql`attribution_status = 'pending'`),
    // listUnknownReturns: one source's pending charges on returns, by return id.
    index('transactions_pending_return_idx')
      .on(t.sourceId, t.referenceId)
      .where(sql`attribution_status = 'pending' AND reference_type = 'Return'`),
    index('transactions_charge_date_idx').on(t.chargeDate),
  ],
);

// ─── polling ───

/** A resumable cursor per source and stream; advanced in the same transaction as the page it came from. */
export const pollCursors = pgTable(
  'poll_cursors',
  {
    sourceId: text('source_id')
      .notNull()
      .references(() => sources.id, { onDelete: 'cascade' }),
    stream: text('stream').notNull(),
    /** Last-modified high-water mark already stored (orders) or charge-date window start (billing). */
    cursorTime: tz('cursor_time'),
    /** Opaque provider cursor or page number of a poll in progress; null between polls. */
    cursorToken: text('cursor_token'),
    /** Upper bound of the poll in progress (fixed while it pages). */
    windowEnd: tz('window_end'),
    lastRunAt: tz('last_run_at'),
    lastSuccessAt: tz('last_success_at'),
    lastError: text('last_error'),
    /** Events this stream found before any webhook had brought them. */
    catches: bigint('catches', { mode: 'number' }).notNull().default(0),
    backfillSince: tz('backfill_since'),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.sourceId, t.stream] })],
);

/** The sync-run log: one row per poll run of a stream (src/poll/poll-runs.ts), pruned after POLL_RUN_RETENTION_DAYS. */
export const pollRuns = pgTable(
  'poll_runs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    sourceId: text('source_id')
      .notNull()
      .references(() => sources.id, { onDelete: 'cascade' }),
    stream: text('stream').notNull(),
    startedAt: tz('started_at').notNull(),
    finishedAt: tz('finished_at').notNull(),
    durationMs: integer('duration_ms').notNull(),
    /** The cursor's high-water mark before and after the run (what the run advanced over). */
    windowFrom: tz('window_from'),
    windowTo: tz('window_to'),
    pages: integer('pages').notNull().default(0),
    events: integer('events').notNull().default(0),
    inserted: integer('inserted').notNull().default(0),
    /** HTTP attempts (retries included) and 429s; provider_ms: time inside the provider's HTTP exchanges. */
    calls: integer('calls').notNull().default(0),
    throttled: integer('throttled').notNull().default(0),
    providerMs: integer('provider_ms').notNull().default(0),
    /** ok, error, aborted. */
    outcome: text('outcome').notNull(),
    error: text('error'),
  },
  (t) => [index('poll_runs_started_idx').on(t.startedAt), index('poll_runs_source_stream_idx').on(t.sourceId, t.stream, t.startedAt)],
);

/** One request budget per API token (hashed), shared by every worker process. */
export const rateBudgets = pgTable('rate_budgets', {
  key: text('key').primaryKey(),
  tokens: numeric('tokens', { mode: 'number' }).notNull(),
  refilledAt: tz('refilled_at').notNull().defaultNow(),
  /** Set from a 429's x-retry-after: nobody calls before this. */
  blockedUntil: tz('blocked_until'),
  calls: bigint('calls', { mode: 'number' }).notNull().default(0),
  throttled: bigint('throttled', { mode: 'number' }).notNull().default(0),
});

/** Resources a delivery named but could not stand for, to fetch by id (src/poll/resolve.ts). */
export const resolveRequests = pgTable(
  'resolve_requests',
  {
    sourceId: text('source_id')
      .notNull()
      .references(() => sources.id, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    resourceId: bigint('resource_id', { mode: 'number' }).notNull(),
    inboxIds: bigint('inbox_ids', { mode: 'number' }).array().notNull(),
    reason: text('reason').notNull(),
    /** Deliveries coalesced into this request (a new one after the fetch makes a new request). */
    requests: integer('requests').notNull().default(1),
    requestedAt: tz('requested_at').notNull().defaultNow(),
    dueAt: tz('due_at').notNull(),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
  },
  (t) => [primaryKey({ columns: [t.sourceId, t.kind, t.resourceId] }), index('resolve_requests_due_idx').on(t.sourceId, t.dueAt)],
);

/** Payload fields the normaliser does not know or cannot read, per topic and field (a drift detector). */
export const payloadDrift = pgTable(
  'payload_drift',
  {
    topic: text('topic').notNull(),
    field: text('field').notNull(),
    /** `unknown` (not in the OpenAPI schema) or `unreadable` (not of the type it gives). */
    problem: text('problem').notNull(),
    count: bigint('count', { mode: 'number' }).notNull().default(0),
    firstSeenAt: tz('first_seen_at').notNull().defaultNow(),
    lastSeenAt: tz('last_seen_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.topic, t.field, t.problem] })],
);

/** Each source's webhook subscription at the provider, as the last check found it. */
export const webhookSubscriptions = pgTable('webhook_subscriptions', {
  sourceId: text('source_id')
    .primaryKey()
    .references(() => sources.id, { onDelete: 'cascade' }),
  /** `ok`, `missing`, `disabled`, `topics_missing`, or `error` (the check failed: see last_error). */
  state: text('state').notNull(),
  subscriptionIds: text('subscription_ids').array().notNull().default(sql`'{}'`),
  missingTopics: text('missing_topics').array().notNull().default(sql`'{}'`),
  checkedAt: tz('checked_at').notNull().defaultNow(),
  lastError: text('last_error'),
});

// ─── operations ───

export const workerHeartbeats = pgTable('worker_heartbeats', {
  workerId: text('worker_id').primaryKey(),
  host: text('host').notNull(),
  pid: integer('pid').notNull(),
  startedAt: tz('started_at').notNull().defaultNow(),
  lastSeenAt: tz('last_seen_at').notNull().defaultNow(),
});

/** Audit trail of every lock wharf released for a dead worker. */
export const lockReleases = pgTable('lock_releases', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  workerId: text('worker_id').notNull(),
  jobIds: text('job_ids').array().notNull(),
  queueNames: text('queue_names').array().notNull(),
  lastSeenAt: tz('last_seen_at'),
  releasedAt: tz('released_at').notNull().defaultNow(),
  releasedBy: text('released_by').notNull(),
});

// ─── the ops page's time series (src/worker/ops-samples.ts; kept OPS_SAMPLE_RETENTION_DAYS) ───

/** One row per sampled window (normally a minute), keyed by the window's end. */
export const opsSamples = pgTable('ops_samples', {
  at: tz('at').primaryKey(),
  windowMs: integer('window_ms').notNull(),
  inboxPending: integer('inbox_pending').notNull(),
  pendingCapped: boolean('pending_capped').notNull(),
  oldestPendingAgeS: doublePrecision('oldest_pending_age_s'),
  dead: integer('dead').notNull(),
  /** Events marked processed during the window. */
  applied: integer('applied').notNull(),
  /** Webhook events processed during the window: processed_at - received_at. Null: none. */
  lagP50Ms: doublePrecision('lag_p50_ms'),
  lagP99Ms: doublePrecision('lag_p99_ms'),
  lagCount: integer('lag_count').notNull(),
  /** Highest inbox id at sample time; the next sample counts arrivals from here. */
  maxInboxId: bigint('max_inbox_id', { mode: 'number' }).notNull(),
  /** Lowest pending id (or max + 1) at sample time: what the next window processes lies above it. */
  scanFromId: bigint('scan_from_id', { mode: 'number' }).notNull(),
  sampledAt: tz('sampled_at').notNull().defaultNow(),
});

/** Per source and window, written only when something happened: arrivals by via, and poll catches. */
export const opsSourceSamples = pgTable(
  'ops_source_samples',
  {
    at: tz('at').notNull(),
    sourceId: text('source_id').notNull(),
    webhookEvents: integer('webhook_events').notNull(),
    pollEvents: integer('poll_events').notNull(),
    replayEvents: integer('replay_events').notNull(),
    catches: integer('catches').notNull(),
  },
  (t) => [primaryKey({ columns: [t.at, t.sourceId] }), index('ops_source_samples_source_at_idx').on(t.sourceId, t.at)],
);

/** Each source's running figures, carried from one sample to the next. */
export const opsSourceState = pgTable('ops_source_state', {
  sourceId: text('source_id').primaryKey(),
  lastWebhookAt: tz('last_webhook_at'),
  /** poll_cursors.catches summed over the source's streams at the last sample (the next delta starts here). */
  catchesTotal: bigint('catches_total', { mode: 'number' }).notNull().default(0),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});
/**
 * Reconciliation against the provider's own counts (src/poll/reconcile.ts): one row per source, stream and closed
 * window. state: `reconciled` (the provider's count equals what wharf holds), `short` (it did not: the window was
 * re-polled, `repolled` events went to the inbox; the next run checks it again).
 */
export const reconcileWindows = pgTable(
  'reconcile_windows',
  {
    sourceId: text('source_id')
      .notNull()
      .references(() => sources.id, { onDelete: 'cascade' }),
    stream: text('stream').notNull(),
    windowStart: tz('window_start').notNull(),
    windowEnd: tz('window_end').notNull(),
    providerCount: integer('provider_count'),
    wharfCount: integer('wharf_count').notNull(),
    repolled: integer('repolled').notNull().default(0),
    state: text('state').notNull(),
    checkedAt: tz('checked_at').notNull(),
  },
  (t) => [primaryKey({ name: 'reconcile_windows_pk', columns: [t.sourceId, t.stream, t.windowStart] })],
);

/**
 * Webhook trust (src/poll/trust.ts): per source and UTC day of the change, events applied by how they came (the ops
 * sampler, once a minute) and poll catches (the drain's catch statement). Pruned with the ops samples.
 */
export const sourceTrustDays = pgTable(
  'source_trust_days',
  {
    sourceId: text('source_id')
      .notNull()
      .references(() => sources.id, { onDelete: 'cascade' }),
    day: date('day', { mode: 'string' }).notNull(),
    webhookApplied: bigint('webhook_applied', { mode: 'number' }).notNull().default(0),
    pollApplied: bigint('poll_applied', { mode: 'number' }).notNull().default(0),
    replayApplied: bigint('replay_applied', { mode: 'number' }).notNull().default(0),
    catches: bigint('catches', { mode: 'number' }).notNull().default(0),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: 'source_trust_days_pk', columns: [t.sourceId, t.day] }),
    index('source_trust_days_day_idx').on(t.day),
  ],
);

/** The poll interval poll_schedule chose per polled source (src/poll/intervals.ts), and why. */
export const pollIntervals = pgTable('poll_intervals', {
  sourceId: text('source_id')
    .primaryKey()
    .references(() => sources.id, { onDelete: 'cascade' }),
  intervalMs: integer('interval_ms').notNull(),
  /** `too_few_events`, `missing`, `reliable`, `normal` (see intervals.ts). */
  reason: text('reason').notNull(),
  /** The recent share the decision used (null: no events). */
  share: doublePrecision('share'),
  events: bigint('events', { mode: 'number' }).notNull(),
  /** The shortest interval the source's share of its token's budget allows. */
  budgetFloorMs: integer('budget_floor_ms').notNull(),
  decidedAt: tz('decided_at').notNull().defaultNow(),
});
