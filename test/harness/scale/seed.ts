import type { Sql } from '../../../src/db/client.js';
import { PollStreams } from '../../../src/poll/streams.js';

/**
 * The scale seeder: a year of data for `sources` merchants, in the proportions docs/scale.md gives, generated inside
 * PostgreSQL (`insert … select … from generate_series`), so nothing crosses the wire but the statements. Measured
 * as fast as postgres.js's COPY over TCP in 64 kB writes (200,000 shipment rows: 0.89-1.0 s either way; docs/scale.md),
 * and simpler: no row encoding in JavaScript, no socket to tune (FACTS.md: COPY over TCP can stall).
 *
 * Deterministic: every "random" choice is a hash of the row's number (`hashint8`), so two seeds of the same size are
 * equal, and a plan test sees the same table each run. Ids start at 1 (the simulator's start at 100,000,001, so a
 * benchmark's new events never collide with seeded rows).
 */

export interface ScaleOptions {
  shipments: number;
  sources: number;
  /** Processed inbox rows within retention (default: 0.6 per shipment, a month of a year's events). */
  inboxRows?: number;
  /** The seed's clock: shipments span the year before it, the inbox the 30 (90) days before it. */
  now?: Date;
  /** Rows per statement (progress is reported per statement). */
  batch?: number;
  onProgress?: (table: string, rows: number, ms: number) => void;
}

/** The proportions, named so docs/scale.md, the seeder and the benchmark agree. */
export const Proportions = {
  ordersPerShipment: 0.95,
  /** Shipped within the last 30 days (undelivered, timelines polled), of all shipments. */
  recentShare: 30 / 365,
  /** Older shipments never recorded delivered (their timeline checks ended): with the recent ones, ~30% undelivered. */
  staleUndeliveredShare: 0.24,
  cancelledShare: 0.02,
  /** Of the recent shipments: never checked yet, and checked with the next check already due. */
  neverCheckedShare: 0.05,
  dueShare: 0.25,
  returnsPerShipment: 0.03,
  /** Charges: one per shipment, one per return, storage charges; this share of shipment charges waits for its shipment. */
  storageChargesPerShipment: 0.1,
  pendingChargeShare: 0.01,
  /** Charges on returns nobody has sent us (what the returns stream looks for), per shipment. */
  unknownReturnChargesPerShipment: 0.002,
  inboxRowsPerShipment: 0.6,
  /** Within 90 days, per processed row within 30. */
  deadShare: 0.003,
  ignoredShare: 0.01,
  quarantinePerShipment: 0.02,
  /** Of the (source, reason, hour) counters over 7 days, the share that saw a refusal. */
  quarantineBucketShare: 0.3,
  timelineEntriesPerShipment: 0.25,
  /** Bytes of each seeded inbox body (a provider payload is 0.5-2 kB). */
  inboxBodyBytes: 600,
} as const;

export interface SeededCounts {
  sources: number;
  orders: number;
  shipments: number;
  undelivered: number;
  timelines_due: number;
  shipment_timeline: number;
  returns: number;
  transactions: number;
  transactions_pending: number;
  inbox_processed: number;
  inbox_dead: number;
  inbox_ignored: number;
  quarantine: number;
  quarantine_counts: number;
  poll_cursors: number;
  /** Where the next prune run's walk of processed rows starts (inbox_prune_state). */
  prune_after_id: number;
}

/** A uniform number in [0, 1) from row number `i` and salt `k` (SQL text). */
const u = (i: string, k: number) => `((abs(hashint8(${i}::bigint * 64 + ${k})) % 100000)::float8 / 100000)`;

/**
 * Seeds an empty, migrated database. Refuses when `shipments` already holds rows (nothing is ever overwritten).
 * Ends with VACUUM ANALYZE, as a database that has been running for a year has been vacuumed.
 */
export async function seedScale(sql: Sql, o: ScaleOptions): Promise<SeededCounts> {
  const P = Proportions;
  const S = Math.max(1, Math.floor(o.shipments));
  const N = Math.max(1, Math.floor(o.sources));
  const now = (o.now ?? new Date()).toISOString();
  const batch = o.batch ?? 200_000;
  const I = Math.floor(o.inboxRows ?? S * P.inboxRowsPerShipment);
  const O = Math.max(1, Math.round(S * P.ordersPerShipment));
  const R = Math.floor(S * P.returnsPerShipment);
  const [existing] = await sql`select exists (select 1 from shipments) as any`;
  if (existing.any) throw new Error('seedScale: shipments is not empty; seed an empty database');

  const step = async (table: string, total: number, insert: (from: number, to: number) => Promise<unknown>) => {
    for (let from = 1; from <= total; from += batch) {
      const to = Math.min(total, from + batch - 1);
      const started = performance.now();
      await insert(from, to);
      o.onProgress?.(table, to, performance.now() - started);
    }
  };

  await sql.unsafe(`
    insert into sources (id, name, client_id, api_token, api_token_hash, created_at)
    select 'src-' || n, 'S' || n, 'client-' || n, 'plain:tok-' || n, encode(sha256(convert_to('tok-' || n, 'UTF8')), 'hex'),
           timestamptz '${now}' - interval '400 days'
      from generate_series(1, ${N}) n`);
  o.onProgress?.('sources', N, 0);

  // Shipment i: source 1 + i % N, created (i / S) of the way through the year, so ids grow with time.
  const created = (i: string, total: number) => `(timestamptz '${now}' - interval '365 days' * (1 - ${i}::float8 / ${total}))`;
  await step('orders', O, (a, b) =>
    sql.unsafe(`
      insert into orders (id, source_id, client_id, reference_id, order_number, status, channel_id, channel_name,
                          created_date, purchase_date, last_update_at, data, event_time, event_inbox_id, updated_at)
      select i, 'src-' || (1 + i % ${N}), 'client-' || (1 + i % ${N}), 'ref-' || i, 'N' || i,
             case when ${u('i', 1)} < 0.7 then 'Fulfilled' else 'Processing' end, 1 + i % 3, 'channel',
             ${created('i', O)}, ${created('i', O)}, ${created('i', O)} + interval '1 day',
             jsonb_build_object('id', i, 'reference_id', 'ref-' || i),
             ${created('i', O)} + interval '1 day', i, ${created('i', O)} + interval '1 day'
        from generate_series(${a}, ${b}) i`),
  );

  // Undelivered: the last 30 days (recent) plus a share of older ones. Recent ones are on the timeline schedule.
  const recentFrom = Math.floor(S * (1 - P.recentShare));
  await step('shipments', S, (a, b) =>
    sql.unsafe(`
      insert into shipments (id, order_id, source_id, client_id, reference_id, status, tracking_carrier, tracking_number,
                             created_date, last_update_at, actual_fulfillment_date, delivery_date, delivered_at, data,
                             event_time, event_inbox_id, updated_at, timeline_checked_at, timeline_next_check_at)
      select i, 1 + ((i - 1)::bigint * ${O} / ${S}), 'src-' || (1 + i % ${N}), 'client-' || (1 + i % ${N}), 'ref-' || i,
             case when cancelled then 'Cancelled' when delivered then 'Completed' else 'Processing' end,
             'USPS', case when cancelled then null else 'TRK' || i end,
             c, c + interval '1 day', case when cancelled then null else c + interval '1 day' end,
             case when delivered then c + interval '4 days' end, case when delivered then c + interval '4 days' end,
             jsonb_build_object('id', i, 'status', 'x'), c + interval '1 day', i, c + interval '1 day',
             case when timeline_state in ('due', 'later') then timestamptz '${now}' - interval '1 hour' end,
             case timeline_state
               when 'never' then null
               when 'due' then timestamptz '${now}' - interval '30 minutes' * ${u('i', 3)}
               when 'later' then timestamptz '${now}' + interval '6 hours' * ${u('i', 3)} + interval '1 minute'
               else timestamptz '9999-12-31' end
        from (select i, c, cancelled, delivered,
                     case when delivered or cancelled then 'none'
                          when i < ${recentFrom} then 'stopped'
                          when ${u('i', 4)} < ${P.neverCheckedShare} then 'never'
                          when ${u('i', 4)} < ${P.neverCheckedShare + P.dueShare} then 'due'
                          else 'later' end as timeline_state
                from (select i, ${created('i', S)} as c, ${u('i', 2)} < ${P.cancelledShare} as cancelled,
                             i < ${recentFrom} and ${u('i', 5)} >= ${P.staleUndeliveredShare / (1 - P.recentShare)} as delivered
                        from generate_series(${a}, ${b}) i) x) y`),
  );
  // Cancelled wins over delivered above; a cancelled row is never delivered.
  await sql`update shipments set delivered_at = null, delivery_date = null where status = 'Cancelled' and delivered_at is not null`;

  const T = Math.floor(S * P.timelineEntriesPerShipment);
  await step('shipment_timeline', T, (a, b) =>
    sql.unsafe(`
      insert into shipment_timeline (shipment_id, log_type_id, "timestamp", log_type_name, log_type_text)
      select 1 + ((i - 1)::bigint * ${S} / ${T}), 601, timestamptz '${now}' - interval '365 days' * (1 - i::float8 / ${T}),
             'Shipped', 'shipped'
        from generate_series(${a}, ${b}) i`),
  );

  await step('returns', R, (a, b) =>
    sql.unsafe(`
      insert into returns (id, source_id, client_id, reference_id, status, original_shipment_id, order_id, data,
                           event_time, event_inbox_id, updated_at)
      select r, 'src-' || (1 + s % ${N}), 'client-' || (1 + s % ${N}), 'ret-' || r, 'Completed', s,
             1 + ((s - 1)::bigint * ${O} / ${S}), jsonb_build_object('id', r), ${created('s', S)} + interval '10 days', r,
             ${created('s', S)} + interval '10 days'
        from (select r, 1 + ((r - 1)::bigint * ${S} / ${Math.max(1, R)}) as s from generate_series(${a}, ${b}) r) x`),
  );

  // Charges: per shipment (a share of them pending: their shipment ids are beyond the seeded ones, not arrived yet),
  // per return, storage (FC, unattributable), and pending charges on returns never received.
  const chargeCols = `transaction_id, source_id, amount, currency_code, charge_date, reference_id, reference_type,
                      transaction_type, client_id, attribution_status, attribution_reason, event_time, event_inbox_id, updated_at`;
  await step('transactions (shipments)', S, (a, b) =>
    sql.unsafe(`
      insert into transactions (${chargeCols})
      select 'tx-s-' || i, 'src-' || (1 + i % ${N}), 4.5, 'USD', ${created('i', S)},
             case when pending then (${S} + i)::text else i::text end, 'Shipment', 'Charge',
             case when pending then null else 'client-' || (1 + i % ${N}) end,
             case when pending then 'pending' else 'attributed' end, null,
             ${created('i', S)}, i, ${created('i', S)}
        from (select i, ${u('i', 6)} < ${P.pendingChargeShare} as pending from generate_series(${a}, ${b}) i) x`),
  );
  await step('transactions (returns)', R, (a, b) =>
    sql.unsafe(`
      insert into transactions (${chargeCols})
      select 'tx-r-' || r, 'src-' || (1 + s % ${N}), 2.0, 'USD', ${created('s', S)} + interval '10 days', r::text, 'Return',
             'Charge', 'client-' || (1 + s % ${N}), 'attributed', null, ${created('s', S)} + interval '10 days', r,
             ${created('s', S)} + interval '10 days'
        from (select r, 1 + ((r - 1)::bigint * ${S} / ${Math.max(1, R)}) as s from generate_series(${a}, ${b}) r) x`),
  );
  const F = Math.floor(S * P.storageChargesPerShipment);
  await step('transactions (storage)', F, (a, b) =>
    sql.unsafe(`
      insert into transactions (${chargeCols})
      select 'tx-f-' || i, 'src-' || (1 + i % ${N}), 0.3, 'USD', ${created('i', F)}, 'FC' || (i % 7), 'FC', 'Storage',
             null, 'unattributable', 'no_client_link', ${created('i', F)}, i, ${created('i', F)}
        from generate_series(${a}, ${b}) i`),
  );
  const U = Math.floor(S * P.unknownReturnChargesPerShipment);
  await step('transactions (unknown returns)', U, (a, b) =>
    sql.unsafe(`
      insert into transactions (${chargeCols})
      select 'tx-u-' || i, 'src-' || (1 + i % ${N}), 2.0, 'USD', timestamptz '${now}' - interval '20 days' * ${u('i', 7)},
             (${R} + i)::text, 'Return', 'Charge', null, 'pending',
             case when ${u('i', 8)} < 0.5 then 'return_not_found' end, timestamptz '${now}' - interval '20 days', i,
             timestamptz '${now}' - interval '20 days' * ${u('i', 8)}
        from generate_series(${a}, ${b}) i`),
  );

  // Inbox within retention, in received_at order so ids grow with it (as the intake makes them): dead and ignored rows
  // over 90 days, processed rows over the last 30 (where the remaining third of dead and ignored ones interleave).
  const D = Math.floor(I * P.deadShare * 3);
  const G = Math.floor(I * P.ignoredShare * 3);
  const E = D + G;
  const early = Math.floor((E * 2) / 3);
  const total = I + E;
  const late = total - early;
  const pad = 'x'.repeat(Math.max(0, P.inboxBodyBytes - 80));
  const finished = (n: string) => `case when ${u(n, 10)} < ${D / Math.max(1, E)} then 'dead' else 'ignored' end`;
  await step('inbox_events', total, (a, b) =>
    sql.unsafe(`
      insert into inbox_events (source_id, event_id, topic, body, event_time, received_at, via, status, attempts,
                                last_error, processed_at, entity_keys)
      select 'src-' || (1 + n % ${N}), 'seed-' || n,
             case when status = 'processed' then 'order.shipped' else 'order.unknown' end,
             '{"id":' || n || ',"event_time":"' || r || '","pad":"${pad}"}',
             r, r, 'webhook', status, 1, case when status = 'dead' then 'apply failed: seeded' end, r + interval '1 second',
             -- As the drain's mark keys them (src/apply/entity-keys.ts): the order it read, an unreadable body's tokens.
             case status when 'processed' then array['order:' || n] when 'dead' then array['token:' || n] end
        from (select n,
                     case when n <= ${early} then timestamptz '${now}' - interval '90 days' + interval '60 days' * (n::float8 / ${Math.max(1, early)})
                          else timestamptz '${now}' - interval '30 days' * (1 - (n - ${early})::float8 / ${late}) end as r,
                     case when n <= ${early} then ${finished('n')}
                          when ${u('n', 11)} < ${(E - early) / late} then ${finished('n')}
                          else 'processed' end as status
                from generate_series(${a}, ${b}) n) x
       order by n`),
  );
  // The prune's watermark (inbox_prune_state, migration 0012) where the hourly prune_inbox would have left it, its
  // last run an hour before `now` with the default retention (30 days): the newest id received before that run's
  // cutoff, kept below the oldest pending or processed row (the seed has no processed row older than the cutoff, so
  // that run would have deleted none). Left at 0, the next run would walk every kept dead and ignored row from the
  // first id: a state a deployment is in once, on its first run after the migration, not every hour.
  await sql.unsafe(`
    update inbox_prune_state set processed_after_id = least(
      coalesce((select max(id) from inbox_events where received_at < timestamptz '${now}' - interval '30 days 1 hour'), 0),
      coalesce((select min(id) - 1 from inbox_events where status in ('pending', 'processed')), 9223372036854775807))`);

  const Q = Math.floor(S * P.quarantinePerShipment);
  const reasons = ['bad_signature', 'unknown_source', 'rate_limited', 'stale_timestamp', 'too_large'];
  await step('quarantine', Q, (a, b) =>
    sql.unsafe(`
      insert into quarantine (source_id, reason, status_code, event_id, size_bytes, body_sha256, received_at)
      select 'src-' || (1 + i % ${N}), (array['${reasons.join("','")}'])[1 + (abs(hashint8(i)) % ${reasons.length})],
             401, 'q-' || i, 700, md5(i::text), timestamptz '${now}' - interval '30 days' * (1 - i::float8 / ${Q})
        from generate_series(${a}, ${b}) i
       order by i`),
  );

  // Quarantine counters (per source, reason and hour, kept QUARANTINE_RETENTION_DAYS = 7): a share of the buckets.
  await sql.unsafe(`
    insert into quarantine_counts (source_id, reason, bucket, status_code, count, bytes)
    select 'src-' || n, r, date_trunc('hour', timestamptz '${now}') - h * interval '1 hour', 401, c, c * 700
      from generate_series(1, ${N}) n cross join unnest(array['${reasons.join("','")}']) r
           cross join generate_series(0, 167) h
           cross join lateral (select 1 + abs(hashint8(n * 1000 + h)) % 20 as c) x
     where ${u('(n * 1000 + h)', 12)} < ${P.quarantineBucketShare}`);
  await sql.unsafe(`
    insert into poll_cursors (source_id, stream, cursor_time, last_run_at, last_success_at, catches)
    select 'src-' || n, st, timestamptz '${now}' - interval '3 minutes', timestamptz '${now}' - interval '2 minutes',
           timestamptz '${now}' - interval '2 minutes', n
      from generate_series(1, ${N}) n cross join unnest(array['${PollStreams.join("','")}']) st`);
  await sql.unsafe(`
    insert into rate_budgets (key, tokens, calls, throttled)
    select encode(sha256(convert_to('tok-' || n, 'UTF8')), 'hex'), 100, 1000, 0 from generate_series(1, ${N}) n`);

  const started = performance.now();
  await sql.unsafe('vacuum analyze');
  o.onProgress?.('vacuum analyze', 0, performance.now() - started);
  return countSeeded(sql);
}

/** What a seeded (or any) database holds, in the seeder's terms. */
export async function countSeeded(sql: Sql): Promise<SeededCounts> {
  const [c] = await sql<SeededCounts[]>`
    select (select count(*)::int from sources) as sources,
           (select count(*)::int from orders) as orders,
           (select count(*)::int from shipments) as shipments,
           (select count(*)::int from shipments where delivered_at is null and status not in ('Cancelled', 'CleanSweeped')) as undelivered,
           (select count(*)::int from shipments where delivered_at is null and status not in ('Cancelled', 'CleanSweeped')
               and coalesce(timeline_next_check_at, '-infinity') <= now()) as timelines_due,
           (select count(*)::int from shipment_timeline) as shipment_timeline,
           (select count(*)::int from returns) as returns,
           (select count(*)::int from transactions) as transactions,
           (select count(*)::int from transactions where attribution_status = 'pending') as transactions_pending,
           (select count(*)::int from inbox_events where status = 'processed') as inbox_processed,
           (select count(*)::int from inbox_events where status = 'dead') as inbox_dead,
           (select count(*)::int from inbox_events where status = 'ignored') as inbox_ignored,
           (select count(*)::int from quarantine) as quarantine,
           (select count(*)::int from quarantine_counts) as quarantine_counts,
           (select count(*)::int from poll_cursors) as poll_cursors,
           (select processed_after_id::float8 from inbox_prune_state) as prune_after_id`;
  return c;
}
