/**
 * `npm run bench:scale -- [--shipments 1000000] [--sources 50] [--rounds 4] [--drain-events 10000] [--no-retention]
 *   [--shared-buffers 1GB]`
 *
 * Does a cost stay flat as a year of data piles up? Two databases on one durable embedded PostgreSQL with 1 GB of
 * shared buffers (DATABASE_URL's server, as configured, if set): "small", seeded at 1% of the scale (at least 500 shipments per source, the same sources), and
 * "scale", seeded at the full size (test/harness/scale/seed.ts). In each round the same operations run on both, in
 * alternating order (the machine's load drifts), through the real functions: a drain of the same new events, a claim,
 * a timeline scheduling round over every source, the attribution catch-up of a chunk, one prune batch and a prune run
 * that finds nothing, a status read, a /metrics scrape. Each ratio is a slowdown: time per operation (per event for
 * the drain) at scale divided by the same on the small database, the median over rounds (min-max printed). Writes
 * other than the drain's are rolled back, so every round sees the same data.
 *
 * Then retention at scale (docs/scale.md): deleting a day of processed inbox rows in batches (time, WAL, dead rows,
 * size, VACUUM after it), a drain alone and beside such a prune, and the same day dropped as a partition of a scratch
 * partitioned copy. Last line: one JSON object.
 */
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { attributePendingTransactions } from '../src/apply/attribution.js';
import { DAY, loadConfig } from '../src/config.js';
import { createDb, type DbHandle, type Sql } from '../src/db/client.js';
import { startEmbeddedPostgres, tempDataDir } from '../src/db/embedded.js';
import { runMigrations } from '../src/db/migrate.js';
import { freePort } from '../src/net.js';
import { drainInbox } from '../src/drain/drain-inbox.js';
import { claimInboxChunk } from '../src/inbox/claim.js';
import { deleteProcessedBatch, lastInboxIdBefore, pruneInbox } from '../src/inbox/prune.js';
import { type GaugeRefresher, startGaugeRefresher } from '../src/ops/metrics-gauges.js';
import { buildMetricsApp } from '../src/ops/metrics-server.js';
import { readStatus } from '../src/ops/status.js';
import { listDueTimelines, scheduleTimelineChecks } from '../src/poll/timelines.js';
import { seedScale, type SeededCounts } from '../test/harness/scale/seed.js';
import { createWorld } from '../test/harness/simulator/index.js';
import { type Captured, explainBuffers, inRollback, isControlStatement } from '../test/plans/plan.js';

const { values } = parseArgs({
  options: {
    shipments: { type: 'string', default: '1000000' },
    sources: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '4' },
    'drain-events': { type: 'string', default: '10000' },
    'no-retention': { type: 'boolean', default: false },
    'shared-buffers': { type: 'string', default: '1GB' },
  },
});
const SHIPMENTS = Number(values.shipments);
const SOURCES = Number(values.sources);
const ROUNDS = Number(values.rounds);
const DRAIN_EVENTS = Number(values['drain-events']);
const SMALL = Math.max(SOURCES * 500, Math.floor(SHIPMENTS / 100));
/** Due timelines listed and scheduled per source in the round (a source with fewer due returns fewer). */
const TIMELINE_BATCH = 10;
/** Per round: the drain's events in this many slices (small and scale alternate), and calls of every other operation. */
const SLICES = 4;
const CALLS = 15;
const CHUNK = 500;
const SHARED_BUFFERS = values['shared-buffers'];
if (!/^\d+(kB|MB|GB)$/.test(SHARED_BUFFERS)) throw new Error(`--shared-buffers: a size such as 1GB, got ${SHARED_BUFFERS}`);

interface Ev {
  source: string;
  topic: string;
  body: string;
  eventTime: string | null;
}

/** New events for the drain, from the simulator (orders, shipments, charges; ids far from the seeded ones). */
function generate(n: number): Ev[] {
  const world = createWorld({ seed: 17, clients: Math.min(10, SOURCES), ordersPerClient: 100 });
  const out: Ev[] = [];
  while (out.length < n) {
    for (const c of world.step({ newOrders: 40, updates: 200, billing: 60, durationMs: 60_000 })) {
      out.push({ source: `src-${c.clientId}`, topic: c.topic, body: JSON.stringify(c.payload), eventTime: c.payload.event_time });
    }
  }
  return out.slice(0, n);
}

async function insertPending(sql: Sql, events: Ev[], tag: string) {
  for (let i = 0; i < events.length; i += 5000) {
    const part = events.slice(i, i + 5000);
    await sql`
      insert into inbox_events (source_id, event_id, topic, body, event_time)
      select s, ${tag} || '-' || (${i}::int + n), t, b, e::timestamptz
        from unnest(${part.map((e) => e.source)}::text[], ${part.map((e) => e.topic)}::text[],
                    ${part.map((e) => e.body)}::text[], ${part.map((e) => e.eventTime)}::text[])
             with ordinality as x(s, t, b, e, n)
       order by n`;
  }
}

/**
 * DATABASE_URL's server as it is configured, else a durable embedded one restarted with `shared_buffers` set to
 * --shared-buffers: the embedded default (128 MB) is a laptop's, a tenth of the seeded database.
 */
async function startServer(): Promise<{ url: string; stop(): Promise<void> }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => {} };
  const opts = { dataDir: tempDataDir('bench-scale'), port: await freePort(), durable: true, database: 'bench_scale' };
  const first = await startEmbeddedPostgres(opts);
  const a = postgres(first.url, { max: 1, onnotice: () => {} });
  await a.unsafe(`alter system set shared_buffers = '${SHARED_BUFFERS}'`);
  await a.end();
  await first.stop();
  const pg = await startEmbeddedPostgres(opts);
  return {
    url: pg.url,
    async stop() {
      await pg.stop();
      rmSync(pg.dataDir, { recursive: true, force: true });
    },
  };
}

interface Target {
  label: 'small' | 'scale';
  db: DbHandle;
  url: string;
  counts: SeededCounts;
  /** The attribution catch-up's references: shipments of a chunk, some with pending charges. */
  refs: { shipmentIds: number[]; returnIds: number[]; transactionIds: string[] };
  metrics: Awaited<ReturnType<typeof buildMetricsApp>>;
  /** The gauges' database read (on a timer in the service; called here). */
  gauges: GaugeRefresher;
  /** Where a batch in the middle of a prune run starts (after a first batch) and its bound. */
  pruneFrom: { afterId: number; maxId: number };
}

const OPS = ['drain', 'claim', 'timeline_round', 'attribution', 'prune', 'prune_start', 'prune_tail', 'status', 'metrics'] as const;
type Op = (typeof OPS)[number];

async function main() {
  console.log(`load average at start (1, 5, 15 min): ${loadavg().map((l) => l.toFixed(2)).join(', ')}`);
  const server = await startServer();
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  const [{ shared_buffers: sharedBuffers }] = await admin<{ shared_buffers: string }[]>`show shared_buffers`;
  console.log(`shared_buffers ${sharedBuffers}`);
  const now = new Date();
  const events = generate(DRAIN_EVENTS * (ROUNDS + 2) + SLICES);
  const targets: Target[] = [];
  try {
    for (const [label, shipments] of [['small', SMALL], ['scale', SHIPMENTS]] as const) {
      const name = `bench_scale_${label}`;
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.unsafe(`create database ${name}`);
      const u = new URL(server.url);
      u.pathname = `/${name}`;
      const url = u.toString();
      await runMigrations(url);
      const db = createDb({ url, max: 4, prepare: true });
      const started = performance.now();
      const counts = await seedScale(db.sql, { shipments, sources: SOURCES, now });
      console.log(`seeded ${label}: ${shipments} shipments in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      const pending = await db.sql<{ ref: string; id: string }[]>`
        select reference_id as ref, transaction_id as id from transactions
         where attribution_status = 'pending' and reference_type = 'Shipment' order by transaction_id limit 50`;
      const recent = Array.from({ length: 450 }, (_, i) => shipments - i);
      const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent' });
      targets.push({
        label,
        db,
        url,
        counts,
        refs: {
          shipmentIds: [...recent, ...pending.map((p) => Number(p.ref))],
          returnIds: Array.from({ length: 20 }, (_, i) => Math.floor((counts.returns * (i + 1)) / 21)),
          transactionIds: pending.slice(0, 20).map((p) => p.id),
        },
        metrics: await buildMetricsApp(config),
        gauges: startGaugeRefresher({ sql: db.sql, config, pools: {} }),
        pruneFrom: { afterId: 0, maxId: 0 },
      });
    }

    const timelineBatch = TIMELINE_BATCH;

    const sourceIds = Array.from({ length: SOURCES }, (_, i) => `src-${i + 1}`);
    const before = new Date(now.getTime() - 20 * DAY);
    // A batch in the middle of a run must find a full batch on the small database too.
    const [older] = await targets[0].db.sql<{ n: number }[]>`
      select count(*)::int as n from inbox_events where status = 'processed' and received_at < ${before}::timestamptz`;
    const pruneBatch = Math.max(1, Math.min(1000, Math.floor(older.n / 3)));
    // One call of each operation (the drain and the claim are measured per slice, below).
    const ops: Record<Exclude<Op, 'drain' | 'claim'>, (t: Target) => Promise<unknown>> = {
      timeline_round: async (t) => {
        for (const sourceId of sourceIds) {
          await inRollback(t.db.sql, async (tx) => {
            const due = await listDueTimelines(tx, { sourceId, now, limit: timelineBatch });
            const next = new Date(now.getTime() + 15 * 60_000);
            await scheduleTimelineChecks(tx, { checkedAt: now, checks: due.map((d) => ({ id: d.id, next })) });
          });
        }
      },
      attribution: (t) => inRollback(t.db.sql, (tx) => attributePendingTransactions(tx, t.refs)),
      // One batch in the middle of a run (what a run is made of), after a first one.
      prune: async (t) => {
        const { afterId, maxId } = t.pruneFrom;
        return inRollback(t.db.sql, (tx) => deleteProcessedBatch(tx, { before, limit: pruneBatch, afterId, maxId }));
      },
      // A run's start: the watermark, the bound (bisection) and a first batch, from the watermark the seeder left where
      // the last hourly run would have (test/harness/scale/seed.ts).
      prune_start: (t) =>
        inRollback(t.db.sql, (tx) => {
          let batches = 0;
          return pruneInbox(tx, {
            processedDays: 20,
            deadDays: 90,
            quarantineDays: 7,
            batchSize: 1000,
            now,
            onBatch: (r) => {
              batches = r.batches;
            },
            shouldStop: () => batches >= 1,
          });
        }),
      // The hourly run's retention an hour after the last run: its walk reads only the rows received in between.
      prune_tail: (t) => inRollback(t.db.sql, (tx) => pruneInbox(tx, { processedDays: 30, deadDays: 95, quarantineDays: 35, batchSize: 1000, now })),
      status: (t) => readStatus(t.db.sql, { staleAfterMs: 60_000 }),
      // The gauges' read (the service runs it on a timer) and then a scrape, served from memory.
      metrics: async (t) => {
        await t.gauges.refresh();
        const res = await t.metrics.inject({ method: 'GET', url: '/metrics' });
        if (res.statusCode !== 200 || !res.body.includes('wharf_status_read_ok 1')) throw new Error('metrics scrape failed');
      },
    };
    for (const t of targets) {
      const maxId = (await lastInboxIdBefore(t.db.sql, before)) ?? 0;
      const first = await inRollback(t.db.sql, (tx) => deleteProcessedBatch(tx, { before, limit: pruneBatch, afterId: 0, maxId }));
      t.pruneFrom = { afterId: first.lastId, maxId };
    }
    const time = async (fn: () => Promise<unknown>) => {
      const started = performance.now();
      await fn();
      return performance.now() - started;
    };
    const median = (xs: number[]) => {
      const v = [...xs].sort((a, b) => a - b);
      return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    };

    // Call by call, small and scale alternate (which goes first alternates too): a drift of the machine's load hits
    // both alike. A round's figure per operation is the median of its calls; drain and claim: per slice of events.
    const perRound: { small: Record<Op, number>; scale: Record<Op, number> }[] = [];
    const slice = Math.ceil(DRAIN_EVENTS / SLICES);
    for (let round = 0; round < ROUNDS; round++) {
      const samples = { small: {} as Record<Op, number[]>, scale: {} as Record<Op, number[]> };
      for (const op of OPS) {
        samples.small[op] = [];
        samples.scale[op] = [];
      }
      for (let k = 0; k < SLICES; k++) {
        const from = (round * SLICES + k) * slice;
        for (const t of (round + k) % 2 ? [...targets].reverse() : targets) {
          await insertPending(t.db.sql, events.slice(from, from + slice), `bench-${round}-${k}`);
          for (let i = 0; i < 4; i++) samples[t.label].claim.push(await time(() => inRollback(t.db.sql, (tx) => claimInboxChunk(tx, CHUNK))));
          let claimed = 0;
          const ms = await time(async () => {
            claimed = (await drainInbox(t.db.sql, { chunkSize: CHUNK, budgetMs: 10 * 60_000, concurrency: 2 })).claimed;
          });
          samples[t.label].drain.push(ms / Math.max(1, claimed));
        }
      }
      for (const [op, fn] of Object.entries(ops) as [Op, (t: Target) => Promise<unknown>][]) {
        for (const t of targets) await fn(t); // warm
        for (let i = 0; i < CALLS; i++) {
          for (const t of i % 2 ? [...targets].reverse() : targets) samples[t.label][op].push(await time(() => fn(t)));
        }
      }
      const r = { small: {} as Record<Op, number>, scale: {} as Record<Op, number> };
      for (const op of OPS) {
        r.small[op] = median(samples.small[op]);
        r.scale[op] = median(samples.scale[op]);
      }
      perRound.push(r);
      console.log(`round ${round + 1}/${ROUNDS}: ${OPS.map((op) => `${op} ${(r.scale[op] / r.small[op]).toFixed(2)}`).join(', ')}`);
    }
    const ratios = {} as Record<Op, number>;
    const spread = {} as Record<Op, [number, number]>;
    const figures = {} as Record<Op, { small_ms: number; scale_ms: number }>;
    for (const op of OPS) {
      const rs = perRound.map((r) => r.scale[op] / r.small[op]);
      ratios[op] = Number(median(rs).toFixed(2));
      spread[op] = [Number(Math.min(...rs).toFixed(2)), Number(Math.max(...rs).toFixed(2))];
      figures[op] = {
        small_ms: Number(median(perRound.map((r) => r.small[op])).toFixed(4)),
        scale_ms: Number(median(perRound.map((r) => r.scale[op])).toFixed(4)),
      };
    }

    // What migration 0007 changed for the due timelines, at scale: the old query with the old index (built inside a
    // transaction that drops the new one and is rolled back) against listDueTimelines, a batch of 50 for every source.
    const timelines = await (async () => {
      const sql = targets[1].db.sql;
      let before = 0;
      await inRollback(sql, async (tx) => {
        await tx.unsafe('drop index shipments_timeline_due_source_idx');
        await tx.unsafe(`create index shipments_timeline_due_idx on shipments (timeline_next_check_at)
                          where delivered_at is null and status not in ('Cancelled', 'CleanSweeped')`);
        await tx.unsafe('analyze shipments');
        const started = performance.now();
        for (const sourceId of sourceIds) {
          await tx`
            select id, order_id as "orderId",
                   coalesce(actual_fulfillment_date, case when tracking_number is not null then created_date end) as "shippedAt"
              from shipments
             where delivered_at is null and status not in ('Cancelled', 'CleanSweeped')
               and (timeline_next_check_at is null or timeline_next_check_at <= ${now}::timestamptz)
               and source_id = ${sourceId}
             order by timeline_next_check_at nulls first, id
             limit 50`;
        }
        before = (performance.now() - started) / sourceIds.length;
      });
      const started = performance.now();
      for (const sourceId of sourceIds) await listDueTimelines(sql, { sourceId, now, limit: 50 });
      const after = (performance.now() - started) / sourceIds.length;
      return { before_ms_per_source: Number(before.toFixed(2)), after_ms_per_source: Number(after.toFixed(3)) };
    })();
    console.log(`due timelines at scale, a batch of 50 per source: ${timelines.before_ms_per_source} ms before 0007, ${timelines.after_ms_per_source} ms after`);

    // How far VACUUM kept up with the drain's dead row versions in each inbox (pg_stat_user_tables).
    const vacuum: Record<string, unknown> = {};
    for (const t of targets) {
      const [v] = await t.db.sql`
        select n_dead_tup::int as dead_tuples, autovacuum_count::int as autovacuums, n_live_tup::int as live_tuples
          from pg_stat_user_tables where relname = 'inbox_events'`;
      const [size] = await t.db.sql<{ mb: number }[]>`select (pg_database_size(current_database()) / 1e6)::int as mb`;
      vacuum[t.label] = { ...v, database_mb: size.mb };
    }

    // The same operations' work in shared buffers (EXPLAIN ANALYZE BUFFERS of exactly what each sends), free of the
    // machine's load: time ratios on a shared machine scatter, buffer ratios do not.
    const buffers = {} as Record<Op, { small: number; scale: number; ratio: number; scale_read: number }>;
    const bufferOps = ['claim', 'timeline_round', 'attribution', 'prune', 'prune_start', 'prune_tail', 'status'] as const;
    const byTarget: Record<string, Record<string, number>> = {};
    const countBuffers = async (t: Target, opsToCount: readonly (typeof bufferOps)[number][], into: Record<string, number>) => {
      const captured: Captured[] = [];
      const capturing = createDb({ url: t.url, max: 1, onQuery: (text, params) => captured.push({ text, params }) });
      const as = { ...t, db: capturing };
      try {
        for (const op of opsToCount) {
          captured.length = 0;
          if (op === 'claim') await inRollback(capturing.sql, (tx) => claimInboxChunk(tx, CHUNK));
          else await ops[op](as);
          let hit = 0;
          let read = 0;
          for (const c of captured.filter((c) => !isControlStatement(c.text))) {
            const b = await explainBuffers(t.db.sql, c);
            hit += b.hit;
            read += b.read;
          }
          into[op] = hit + read;
          into[`${op}_read`] = read;
        }
      } finally {
        await capturing.close();
      }
    };
    for (const t of targets) {
      byTarget[t.label] = {};
      await countBuffers(t, bufferOps, byTarget[t.label]);
    }
    // The claim and the counts step over the pending index's entries of rows drained since the last VACUUM: after
    // one, what is left is what grows with the data.
    const afterVacuum: Record<string, Record<string, number>> = {};
    for (const t of targets) {
      await t.db.sql`vacuum inbox_events`;
      afterVacuum[t.label] = {};
      await countBuffers(t, ['claim', 'status'], afterVacuum[t.label]);
    }
    for (const op of bufferOps) {
      const small = byTarget.small[op];
      const scale = byTarget.scale[op];
      buffers[op] = {
        small,
        scale,
        ratio: Number((scale / Math.max(1, small)).toFixed(2)),
        scale_read: byTarget.scale[`${op}_read`],
      };
    }

    const retention = values['no-retention'] ? null : await measureRetention(targets[1], events.slice(ROUNDS * SLICES * slice), now);

    const unit: Record<Op, string> = {
      drain: 'ms per event (events/s = 1000 / it)',
      claim: `ms per claim of ${CHUNK}`,
      timeline_round: `ms per round of ${SOURCES} sources, ${timelineBatch} due each`,
      attribution: 'ms per catch-up of a 500-reference chunk',
      prune: `ms per batch of ${pruneBatch} processed rows within a run`,
      prune_start: 'ms per run start: the bound and a first batch of 1,000',
      prune_tail: 'ms per run with nothing to delete',
      status: 'ms per readStatus',
      metrics: 'ms per gauge refresh + /metrics scrape (inject)',
    };
    console.log('');
    console.log(`${'operation'.padEnd(16)} ${'small'.padStart(10)} ${'scale'.padStart(10)} ${'ratio'.padStart(6)}  spread      unit`);
    for (const op of OPS) {
      console.log(
        `${op.padEnd(16)} ${figures[op].small_ms.toFixed(3).padStart(10)} ${figures[op].scale_ms.toFixed(3).padStart(10)} ${ratios[op].toFixed(2).padStart(6)}  ${`${spread[op][0]}-${spread[op][1]}`.padEnd(10)}  ${unit[op]}`,
      );
    }
    console.log(`shared buffers per operation (small → scale): ${Object.entries(buffers).map(([op, b]) => `${op} ${b.small} → ${b.scale} (${b.ratio}; ${b.scale_read} read)`).join(', ')}`);
    console.log(`inbox_events after the rounds: ${JSON.stringify(vacuum)}`);
    console.log(`shared buffers after VACUUM inbox_events: ${JSON.stringify(afterVacuum)}`);
    console.log(`drain: ${Math.round(1000 / figures.drain.small_ms)} events/s small, ${Math.round(1000 / figures.drain.scale_ms)} events/s at scale`);
    if (retention) for (const [k, v] of Object.entries(retention)) console.log(`retention ${k.padEnd(34)} ${v}`);
    console.log(`load average at end (1, 5, 15 min): ${loadavg().map((l) => l.toFixed(2)).join(', ')}`);
    console.log(
      JSON.stringify({
        bench: 'scale',
        rows: targets[1].counts,
        small_rows: targets[0].counts,
        ratios,
        spread,
        figures,
        buffers,
        due_timelines: timelines,
        inbox_vacuum: vacuum,
        buffers_after_vacuum: afterVacuum,
        shared_buffers: sharedBuffers,
        rounds: ROUNDS,
        prune_batch: pruneBatch,
        timeline_batch: timelineBatch,
        retention,
      }),
    );
  } finally {
    for (const t of targets) {
      await t.gauges.stop();
      await t.metrics.close();
      await t.db.close();
    }
    await admin.end();
    await server.stop();
  }
}

/**
 * Retention at scale: a day of processed rows deleted in batches (alone: time, WAL, dead rows, size; then VACUUM),
 * the drain alone and beside a prune of the next five days, and a day dropped as a partition of a scratch copy.
 */
async function measureRetention(t: Target, events: Ev[], now: Date) {
  const sql = t.db.sql;
  const wal = async () => (await sql<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`)[0].lsn;
  const walSince = async (lsn: string) =>
    Number((await sql<{ b: string }[]>`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn}::pg_lsn)::text as b`)[0].b);
  const dayRows = async (fromDays: number) => {
    const [r] = await sql<{ n: number }[]>`
      select count(*)::int as n from inbox_events where status = 'processed'
         and received_at >= ${new Date(now.getTime() - fromDays * DAY)}::timestamptz
         and received_at < ${new Date(now.getTime() - (fromDays - 1) * DAY)}::timestamptz`;
    return r.n;
  };
  const size = async () => (await sql<{ b: string }[]>`select pg_total_relation_size('inbox_events')::text as b`)[0].b;
  await sql`create extension if not exists pgstattuple`;
  const deadTuples = async () => {
    const [r] = await sql<{ n: number }[]>`select dead_tuple_count::int as n from pgstattuple('inbox_events')`;
    return r.n;
  };
  const deadBefore = await deadTuples();
  await sql`checkpoint`;

  // A day of processed rows (the oldest), batches of 1,000, alone (quarantine retention out of reach: inbox rows only).
  const day1 = await dayRows(30);
  const sizeBefore = Number(await size());
  let lsn = await wal();
  let started = performance.now();
  const pruned = await pruneInbox(sql, { processedDays: 29, deadDays: 90, quarantineDays: 35, batchSize: 1000, now });
  const pruneMs = performance.now() - started;
  const pruneWal = await walSince(lsn);
  const dead = await deadTuples();
  const sizeAfter = Number(await size());
  lsn = await wal();
  started = performance.now();
  await sql`vacuum inbox_events`;
  const vacuumMs = performance.now() - started;
  const vacuumWal = await walSince(lsn);

  // The drain alone, then beside a prune of the next five days (same number of new events each).
  const half = Math.floor(events.length / 2);
  await insertPending(sql, events.slice(0, half), 'retention-alone');
  lsn = await wal();
  started = performance.now();
  const alone = await drainInbox(sql, { chunkSize: CHUNK, budgetMs: 10 * 60_000, concurrency: 2 });
  const aloneEps = alone.claimed / ((performance.now() - started) / 1000);
  const drainWalPerEvent = (await walSince(lsn)) / Math.max(1, alone.claimed);
  await insertPending(sql, events.slice(half), 'retention-beside');
  started = performance.now();
  const [beside, besidePrune] = await Promise.all([
    (async () => {
      const r = await drainInbox(sql, { chunkSize: CHUNK, budgetMs: 10 * 60_000, concurrency: 2 });
      return { claimed: r.claimed, ms: performance.now() - started };
    })(),
    (async () => {
      const r = await pruneInbox(sql, { processedDays: 24, deadDays: 90, quarantineDays: 35, batchSize: 1000, now });
      return { processed: r.processed, ms: performance.now() - started };
    })(),
  ]);
  const besideEps = beside.claimed / (beside.ms / 1000);

  // The alternative: the same kind of day as a partition of a partitioned copy, detached and dropped.
  const from = new Date(now.getTime() - 10 * DAY);
  const to = new Date(now.getTime() - 9 * DAY);
  await sql.unsafe(`drop table if exists retention_probe`);
  await sql.unsafe(`create table retention_probe (like inbox_events including defaults) partition by range (received_at)`);
  await sql.unsafe(
    `create table retention_probe_day partition of retention_probe for values from ('${from.toISOString()}') to ('${to.toISOString()}')`,
  );
  await sql`
    insert into retention_probe select * from inbox_events
     where received_at >= ${from}::timestamptz and received_at < ${to}::timestamptz`;
  const [probe] = await sql<{ n: number }[]>`select count(*)::int as n from retention_probe`;
  await sql`checkpoint`;
  lsn = await wal();
  started = performance.now();
  await sql.unsafe(`alter table retention_probe detach partition retention_probe_day`);
  await sql.unsafe(`drop table retention_probe_day`);
  const dropMs = performance.now() - started;
  const dropWal = await walSince(lsn);
  await sql.unsafe(`drop table retention_probe`);

  return {
    day_rows: day1,
    batched_delete_rows: pruned.processed,
    batched_delete_ms: Math.round(pruneMs),
    batched_delete_rows_per_s: Math.round(pruned.processed / (pruneMs / 1000)),
    batched_delete_wal_bytes_per_row: Math.round(pruneWal / Math.max(1, pruned.processed)),
    batched_delete_wal_mb: Number((pruneWal / 1e6).toFixed(1)),
    dead_tuples_before: deadBefore,
    dead_tuples_after: dead,
    size_mb_before: Math.round(sizeBefore / 1e6),
    size_mb_after: Math.round(sizeAfter / 1e6),
    vacuum_ms: Math.round(vacuumMs),
    vacuum_wal_mb: Number((vacuumWal / 1e6).toFixed(1)),
    drain_alone_events_per_s: Math.round(aloneEps),
    drain_wal_bytes_per_event: Math.round(drainWalPerEvent),
    drain_beside_prune_events_per_s: Math.round(besideEps),
    drain_beside_prune_ratio: Number((aloneEps / besideEps).toFixed(2)),
    prune_beside_drain_rows: besidePrune.processed,
    prune_beside_drain_ms: Math.round(besidePrune.ms),
    partition_day_rows: probe.n,
    partition_detach_drop_ms: Number(dropMs.toFixed(1)),
    partition_detach_drop_wal_kb: Math.round(dropWal / 1e3),
  };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
