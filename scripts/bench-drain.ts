/**
 * `npm run bench:drain`: 100,000 inbox events with a realistic mix (the simulator's own payloads: several versions per
 * shipment, orders, charges referencing shipments, some arriving before their shipment; ~1% poison), drained by the
 * real worker (graphile-worker `run`, the real task list). In the same run, on the same data: the naive way (a
 * statement per entity, autocommit, as the syncs wharf replaces did) on a 20,000-event sample, and the bare ceiling
 * (one `INSERT … SELECT FROM unnest(…) ON CONFLICT` per 500 rows into one table, no parsing), each in two halves just
 * before and just after the drain (the machine's load drifts). Durable embedded
 * PostgreSQL in a temp dir unless DATABASE_URL is set. Last line: one JSON object.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { run } from 'graphile-worker';
import { loadConfig } from '../src/config.js';
import { createDb, type Sql } from '../src/db/client.js';
import { throwawayDatabase } from '../src/db/embedded.js';
import { runMigrations } from '../src/db/migrate.js';
import { projectRoot } from '../src/paths.js';
import { createWorld } from '../test/harness/simulator/index.js';
import { workerConnectionBound } from '../src/worker/runner.js';
import { buildTaskList } from '../src/worker/task-list.js';
import { metrics } from '../src/metrics.js';

/** `--events N` for a quick run while iterating; the judged figure is the default. */
const eventsArg = process.argv.indexOf('--events');
const EVENTS = eventsArg > 0 ? Number(process.argv[eventsArg + 1]) : 100_000;
const NAIVE_SAMPLE = Math.min(20_000, 2 * Math.ceil(EVENTS / 10));
/** `--large N`: the large-body run, N events of 1 MiB drained by a worker process of its own (0: skip). */
const largeArg = process.argv.indexOf('--large');
const LARGE = largeArg > 0 ? Number(process.argv[largeArg + 1]) : 2000;
const LARGE_BYTES = 1024 * 1024;
const CHUNK = 500;

interface Ev {
  source: string;
  topic: string;
  body: string;
  eventTime: string | null;
}

/** Chunks the drain task has applied in this process (its wharf_drain_chunk_seconds observations). */
async function appliedChunks(): Promise<number> {
  const { values } = await metrics.drainChunkSeconds.get();
  return values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
}

function generate(): Ev[] {
  const world = createWorld({ seed: 7, clients: 5, ordersPerClient: 200 });
  const out: Ev[] = [];
  while (out.length < EVENTS) {
    for (const c of world.step({ newOrders: 40, updates: 200, billing: 60, durationMs: 60_000 })) {
      out.push({ source: `src-${c.clientId}`, topic: c.topic, body: JSON.stringify(c.payload), eventTime: c.payload.event_time });
    }
  }
  out.length = EVENTS;
  // Out of order: each event moves up to ±100 places, so some charges arrive before their shipment.
  const keyed = out.map((e, i) => ({ e, k: i + ((i * 7919) % 201) - 100 }));
  keyed.sort((a, b) => a.k - b.k);
  const events = keyed.map((x) => x.e);
  // ~1% poison: unreadable bodies and payloads without an id.
  for (let i = 50; i < events.length; i += 100) {
    events[i] = i % 200 === 50
      ? { ...events[i], body: '{"truncated": ' }
      : { ...events[i], topic: 'order.shipment.exception', body: JSON.stringify({ status: 'Exception', event_time: events[i].eventTime }) };
  }
  return events;
}

async function main() {
  // The machine is shared: the load average says how far these figures are from an idle machine's.
  console.log(`load average at start (1, 5, 15 min): ${loadavg().map((l) => l.toFixed(2)).join(', ')}`);
  const { url, stop } = await throwawayDatabase('bench-drain', { url: process.env.DATABASE_URL, durable: true, database: 'bench_drain' });
  try {
    await runMigrations(url);
    const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent', DRAIN_CHUNK_SIZE: String(CHUNK), DRAIN_TIME_BUDGET_MS: '30000', DRAIN_CONCURRENCY: process.env.DRAIN_CONCURRENCY });
    let statements = 0;
    let claims = 0;
    // The worker's task pool, sized as the worker sizes it (the drain's concurrent chunks each hold a connection).
    const db = createDb({
      url,
      max: workerConnectionBound(config).tasks,
      prepare: true,
      onQuery: (q) => {
        statements++;
        if (q.includes('skip locked') && q.includes('limit')) claims++;
      },
    });
    const { sql } = db;
    await sql`truncate inbox_events, orders, shipments, shipment_timeline, returns, transactions, poll_cursors, channel_clients, inventory_items, sources cascade`;
    await sql`delete from graphile_worker._private_jobs`.catch(() => {});
    for (let i = 1; i <= 5; i++) await sql`insert into sources (id, name, client_id) values (${`src-${i}`}, ${`S${i}`}, ${`client-${i}`})`;

    const { genMs, naiveSample, ceilingBodies } = await seedInbox(sql);
    await sql`vacuum analyze inbox_events`;

    // The machine is shared and its load drifts within a run: naive and ceiling are each measured in two equal halves,
    // one just before the drain and one just after, so that a drift does not favour or penalise the drain.
    const naive = [await measureNaive(sql, naiveSample)];
    const ceiling = [await measureCeiling(sql, ceilingBodies)];

    // ── the drain, by the real worker ──
    statements = 0;
    claims = 0;
    const chunksBefore = await appliedChunks();
    const runner = await run({
      connectionString: url,
      concurrency: 2,
      noHandleSignals: true,
      pollInterval: 200,
      logger: undefined,
      taskList: buildTaskList({ config, db, now: () => new Date() }),
    });
    const watcher = createDb({ url, max: 1 });
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    await watcher.sql`select graphile_worker.add_job('drain', job_key := 'drain')`;
    for (;;) {
      const [row] = await watcher.sql`select exists (select 1 from inbox_events where status = 'pending') as pending`;
      if (!row.pending) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const drainMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    const drainCpuMs = (cpu.user + cpu.system) / 1000;
    await runner.stop();
    // The express loop looks for fresh rows every 20 ms while the bulk loops run (docs/drain.md): a probe that finds
    // none is begin, claim, commit; the chunks the drain applied are counted by its own histogram.
    const drainChunks = (await appliedChunks()) - chunksBefore;
    const probes = Math.max(0, claims - drainChunks);
    const drainStatements = statements - 3 * probes;
    const drainClaims = drainChunks;
    const [outcome] = await watcher.sql`
      select count(*) filter (where status = 'processed')::int as processed, count(*) filter (where status = 'dead')::int as dead,
             (select count(*)::int from transactions where attribution_status = 'attributed') as attributed,
             (select count(*)::int from transactions where attribution_status = 'pending') as pending
        from inbox_events`;
    const eps = EVENTS / (drainMs / 1000);

    naive.push(await measureNaive(sql, naiveSample));
    ceiling.push(await measureCeiling(sql, ceilingBodies));
    const naiveEps = rate(naive);
    const ceilingRps = rate(ceiling);
    await watcher.close();
    await db.close();
    const large = LARGE > 0 ? await measureLarge(url) : null;

    const figures = {
      bench: 'drain',
      events: EVENTS,
      events_per_s: Math.round(eps),
      statements_per_chunk: Math.round(drainStatements / Math.max(1, drainClaims)),
      naive_ratio: Number((eps / naiveEps).toFixed(2)),
      ceiling_ratio: Number((eps / ceilingRps).toFixed(3)),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      large_events: LARGE,
      peak_rss_mb_large: large?.peakRssMb ?? null,
      large_events_per_s: large ? Math.round(LARGE / (large.ms / 1000)) : null,
    };
    const table: [string, string][] = [
      ['events generated (simulator)', `${EVENTS} in ${Math.round(genMs)} ms`],
      [`drain (graphile-worker, chunks of ${CHUNK}, ${config.drainConcurrency} at once)`, `${Math.round(drainMs)} ms, ${figures.events_per_s} events/s`],
      ['drain CPU of this process (JS, driver, GC)', `${Math.round(drainCpuMs)} ms, ${Math.round((drainCpuMs / drainMs) * 100)}% of the wall time`],
      ['outcome', `${outcome.processed} processed, ${outcome.dead} dead; charges ${outcome.attributed} attributed, ${outcome.pending} pending`],
      ['statements per chunk', `${figures.statements_per_chunk} (${drainStatements} over ${drainClaims} chunks; besides ${probes} empty express probes of 3)`],
      [
        `naive, statement per entity (${NAIVE_SAMPLE} events)`,
        `${Math.round(naiveEps)} events/s (before ${perSecond(naive[0])}, after ${perSecond(naive[1])}) → drain is ${figures.naive_ratio}×`,
      ],
      [
        `ceiling, bare unnest upsert (${CHUNK} rows)`,
        `${Math.round(ceilingRps)} rows/s (before ${perSecond(ceiling[0])}, after ${perSecond(ceiling[1])}) → drain is ${(figures.ceiling_ratio * 100).toFixed(1)}%`,
      ],
      ['peak RSS', `${figures.peak_rss_mb} MB`],
    ];
    if (large) {
      table.push([
        `large bodies: ${LARGE} events of 1 MiB, worker process`,
        `${Math.round(large.ms)} ms; worker peak RSS ${large.peakRssMb} MB (chunks of at most ${large.maxBytes} bytes)`,
      ]);
    }
    table.push(['load average at end (1, 5, 15 min)', loadavg().map((l) => l.toFixed(2)).join(', ')]);
    for (const [k, v] of table) console.log(`${k.padEnd(48)} ${v}`);
    console.log(JSON.stringify(figures));
  } finally {
    await stop();
  }
}

/**
 * The large-body run: `LARGE` events of 1 MiB each (made in SQL: no client memory), drained by the worker role in a
 * process of its own (the compiled `dist/src/main.js worker`, as deployed), whose peak RSS (VmHWM) is read from /proc while it drains.
 */
async function measureLarge(url: string): Promise<{ ms: number; peakRssMb: number; maxBytes: number }> {
  const db = createDb({ url, max: 1 });
  const { sql } = db;
  try {
    await sql`truncate inbox_events, orders, shipments, shipment_timeline, returns, transactions`;
    for (let i = 0; i < LARGE; i += 100) {
      await sql`
        insert into inbox_events (source_id, event_id, topic, body, event_time)
        select 'src-1', 'large-' || g, 'order.shipment.delivered',
               json_build_object('id', 5000000 + g, 'status', 'Completed', 'last_update_at', now(),
                                 'padding', repeat(md5(g::text), ${LARGE_BYTES / 32}))::text, now()
          from generate_series(${i}::int, ${Math.min(LARGE, i + 100) - 1}::int) g`;
    }
    const config = loadConfig({ DATABASE_URL: url, DRAIN_CHUNK_MAX_BYTES: process.env.DRAIN_CHUNK_MAX_BYTES });
    // As deployed: the compiled worker (tsx alone adds ~40 MB of RSS), with the image's V8 flags.
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: projectRoot, stdio: 'inherit' });
    const child = spawn(process.execPath, [path.join(projectRoot, 'dist', 'src', 'main.js'), 'worker'], {
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn', METRICS_PORT: '0', NODE_OPTIONS: process.env.LARGE_NODE_OPTIONS ?? '--max-semi-space-size=64' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let peakKb = 0;
    const readPeak = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        // the process is gone
      }
    };
    const started = performance.now();
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
      readPeak();
      const [row] = await sql`select exists (select 1 from inbox_events where status = 'pending') as pending`;
      if (!row.pending) break;
      if (child.exitCode !== null) throw new Error(`the worker exited (${child.exitCode}) with events pending`);
      if (Date.now() > deadline) throw new Error('the large-body drain did not finish in 10 minutes');
      await new Promise((r) => setTimeout(r, 50));
    }
    const ms = performance.now() - started;
    readPeak();
    child.kill('SIGTERM');
    await exited;
    await sql`truncate inbox_events, shipments`;
    return { ms, peakRssMb: Math.round(peakKb / 1024), maxBytes: config.drainChunkMaxBytes };
  } finally {
    await db.close();
  }
}

interface Measured {
  n: number;
  ms: number;
}
const rate = (parts: Measured[]) => parts.reduce((a, p) => a + p.n, 0) / (parts.reduce((a, p) => a + p.ms, 0) / 1000);
const perSecond = (p: Measured) => `${Math.round(p.n / (p.ms / 1000))}/s`;

/**
 * Generates the events and stores them in the inbox. Keeps only what naive and ceiling need: a worker process does
 * not carry 100 MB of seed data in its heap while it drains (it would make every major GC of the drain slower).
 */
async function seedInbox(sql: Sql): Promise<{ genMs: number; naiveSample: Ev[]; ceilingBodies: string[] }> {
  const t0 = performance.now();
  const events = generate();
  const genMs = performance.now() - t0;
  for (let i = 0; i < events.length; i += 5000) {
    const part = events.slice(i, i + 5000);
    await sql`
      insert into inbox_events (source_id, event_id, topic, body, event_time)
      select s, 'bench-' || (${i}::int + n), t, b, e::timestamptz
        from unnest(${part.map((e) => e.source)}::text[], ${part.map((e) => e.topic)}::text[],
                    ${part.map((e) => e.body)}::text[], ${part.map((e) => e.eventTime)}::text[])
             with ordinality as x(s, t, b, e, n)
       order by n`;
  }
  return {
    genMs,
    naiveSample: events.slice(0, NAIVE_SAMPLE / 2),
    ceilingBodies: events.map((e) => e.body).filter((b) => b.endsWith('}')).slice(0, 5000),
  };
}

/** Half of the naive sample (the same events each time), from empty tables. */
async function measureNaive(sql: Sql, sample: Ev[]): Promise<Measured> {
  await sql`truncate orders, shipments, shipment_timeline, returns, transactions`;
  const started = performance.now();
  for (const e of sample) await naiveApply(sql, e);
  const ms = performance.now() - started;
  await sql`truncate orders, shipments, shipment_timeline, returns, transactions`;
  return { n: sample.length, ms };
}

/** Half of the ceiling: one unnest upsert per 500 rows into one table, no parsing, from an empty table. */
async function measureCeiling(sql: Sql, valid: string[]): Promise<Measured> {
  await sql`truncate shipments`;
  const n = EVENTS / 2;
  const bodies = Array.from({ length: n }, (_, i) => valid[i % valid.length]);
  const started = performance.now();
  for (let i = 0; i < n; i += CHUNK) {
    const size = Math.min(CHUNK, n - i);
    const ids = Array.from({ length: size }, (_, k) => i + k + 1);
    await sql`
      insert into shipments as s (id, source_id, status, data, event_time, event_inbox_id)
      select id, 'src-1', 'Processing', d::jsonb, now(), id
        from unnest(${ids}::bigint[], ${bodies.slice(i, i + size)}::text[]) as x(id, d)
      on conflict (id) do update set status = excluded.status, data = excluded.data, event_time = excluded.event_time
       where (excluded.event_time, excluded.event_inbox_id) > (s.event_time, s.event_inbox_id)`;
  }
  const ms = performance.now() - started;
  await sql`truncate shipments`;
  return { n, ms };
}

/** The old way: parse, then one autocommit statement per entity, each waiting for its round trip and commit. */
async function naiveApply(sql: Sql, e: Ev) {
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(e.body);
  } catch {
    return;
  }
  const time = (p.event_time as string) ?? e.eventTime;
  if (e.topic.startsWith('billing.')) {
    await sql`
      insert into transactions as t (transaction_id, source_id, amount, reference_id, reference_type, client_id,
                                     attribution_status, event_time, event_inbox_id)
      values (${p.transaction_id as string}, ${e.source}, ${String(p.amount)}::numeric, ${p.reference_id as string},
              ${p.reference_type as string},
              (select client_id from shipments where id::text = ${p.reference_id as string}),
              'pending', ${time}::timestamptz, 0)
      on conflict (transaction_id) do update set amount = excluded.amount, event_time = excluded.event_time
       where excluded.event_time > t.event_time`;
    return;
  }
  const shipments = Array.isArray(p.shipments) ? (p.shipments as Record<string, unknown>[]) : p.id && e.topic.startsWith('order.shipment.') ? [p] : [];
  if (Array.isArray(p.shipments)) {
    await sql`
      insert into orders as o (id, source_id, status, data, event_time, event_inbox_id)
      values (${p.id as number}, ${e.source}, ${p.status as string}, ${e.body}::text::jsonb, ${time}::timestamptz, 0)
      on conflict (id) do update set status = excluded.status, data = excluded.data, event_time = excluded.event_time
       where excluded.event_time > o.event_time`;
  }
  for (const s of shipments) {
    await sql`
      insert into shipments as s (id, source_id, status, data, event_time, event_inbox_id)
      values (${s.id as number}, ${e.source}, ${s.status as string}, ${JSON.stringify(s)}::text::jsonb,
              ${(s.last_update_at as string) ?? time}::timestamptz, 0)
      on conflict (id) do update set status = excluded.status, data = excluded.data, event_time = excluded.event_time
       where excluded.event_time > s.event_time`;
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
