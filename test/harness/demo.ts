import pino from 'pino';
import { keyRingOf, loadConfig, SECOND } from '../../src/config.js';
import { withKeyRing } from '../../src/secrets/key-file.js';
import { createDb, type Sql } from '../../src/db/client.js';
import { throwawayDatabase } from '../../src/db/embedded.js';
import { runMigrations } from '../../src/db/migrate.js';
import { insertSource } from '../../src/intake/sources.js';
import { storeInventoryItems } from '../../src/ops/tenancy.js';
import { freePort } from '../../src/net.js';
import { PollStreams } from '../../src/poll/streams.js';
import { createWebhookSender, startSimulator, type Truth } from './simulator/index.js';
import { startWeb } from '../../src/web.js';
import { startWorker } from '../../src/worker/runner.js';
import { kickDrain } from '../../src/drain/kick-drain.js';
import { enqueuePolls } from '../../src/poll/enqueue.js';

/**
 * `npm run demo`: wharf end to end on a throwaway embedded PostgreSQL. The simulator's world changes every second
 * and sends webhooks with the provider's habits, a tenth of them never sent; the service (web + worker, in this
 * process) stores and drains them while the poller, on a short interval, finds what the webhooks missed. At the end a
 * last poll of every stream, then wharf's database is compared with the simulator's world.
 */

export interface DemoOptions {
  /** How long changes flow. Default 40 s. */
  durationMs?: number;
  clients?: number;
  dropRate?: number;
  out: (line: string) => void;
}

export interface DemoSummary {
  received: number;
  applied: number;
  pollCatches: number;
  dead: number;
  matchesWorld: boolean;
  mismatches: string[];
}

/** Inbox and poller figures, one statement. */
export async function readDemoFigures(sql: Sql) {
  const [row] = await sql<{ received: number; applied: number; pending: number; dead: number; catches: number }[]>`
    select count(*)::int as received,
           count(*) filter (where status = 'processed')::int as applied,
           count(*) filter (where status = 'pending')::int as pending,
           count(*) filter (where status = 'dead')::int as dead,
           (select coalesce(sum(catches), 0)::int from poll_cursors) as catches
      from inbox_events`;
  return row;
}

/**
 * Where wharf's database differs from the world: each shipment's status and client, each transaction's amount and
 * client (charges on returns excepted: no endpoint lists returns, so one whose webhook was dropped stays unknown).
 * Clients are `client-<simulator client id>`. Returns at most 10 differences.
 */
export async function diffWithWorld(sql: Sql, truth: Truth): Promise<string[]> {
  const diffs: string[] = [];
  const ships = new Map(
    (await sql<{ id: string; status: string; client_id: string | null }[]>`select id, status, client_id from shipments`).map(
      (s) => [Number(s.id), s],
    ),
  );
  for (const s of truth.shipments) {
    const mine = ships.get(s.id);
    if (mine?.status !== s.status || mine.client_id !== `client-${s.client_id}`) {
      diffs.push(`shipment ${s.id}: ${mine ? `${mine.status}/${mine.client_id}` : 'missing'} vs ${s.status}/client-${s.client_id}`);
    }
  }
  const txns = new Map(
    (
      await sql<{ transaction_id: string; amount: number; client_id: string | null }[]>`
        select transaction_id, amount::float8 as amount, client_id from transactions`
    ).map((x) => [x.transaction_id, x]),
  );
  for (const x of truth.transactions) {
    if (x.reference_type === 'Return') continue;
    const mine = txns.get(x.transaction_id);
    const want = x.client_id === null ? null : `client-${x.client_id}`;
    if (mine?.amount !== x.amount || mine.client_id !== want) {
      diffs.push(`transaction ${x.transaction_id}: ${mine ? `${mine.amount}/${mine.client_id}` : 'missing'} vs ${want}`);
    }
  }
  return diffs.slice(0, 10);
}

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const out = opts.out;
  const durationMs = opts.durationMs ?? 40 * SECOND;
  // Always its own embedded server (never DATABASE_URL): the demo must not write into a real database.
  const pg = await throwawayDatabase('demo', { durable: false });
  const stops: (() => Promise<void>)[] = [() => pg.stop()];
  try {
    await runMigrations(pg.url);
    // The world's clock starts now and follows the wall clock, so the service's own clock matches the provider's.
    const sim = await startSimulator({ worldOptions: { seed: 7, clients: opts.clients ?? 3, start: Date.now() } });
    stops.unshift(() => sim.close());
    const { world } = sim;
    const config = withKeyRing(loadConfig({
      DATABASE_URL: pg.url,
      PORT: String(await freePort()),
      LOG_LEVEL: 'warn',
      PROVIDER_BASE_URL: sim.url,
      POLL_INTERVAL_MS: String(10 * SECOND),
      POLL_OVERLAP_MS: String(10 * SECOND),
      POLL_LAG_MS: String(2 * SECOND),
      // The world's history reaches back 30 days, and charges may be back-dated by up to 3 more.
      POLL_BACKFILL_DAYS: '35',
    }));
    const web = await startWeb(config, pg.url);
    stops.unshift(() => web.stop());
    const worker = await startWorker(config, pg.url, pino({ level: 'warn', name: 'wharf-demo' }));
    stops.unshift(() => worker.stop());
    const { sql } = createDb({ url: pg.url, max: 2 });
    stops.unshift(() => sql.end({ timeout: 1 }));

    for (const c of world.clients) {
      await insertSource(sql, keyRingOf(config), {
        id: `client-${c.id}`,
        name: c.name,
        secret: c.secret,
        clientId: `client-${c.id}`,
        apiToken: c.token,
      });
    }
    // Storage charges attribute through inventory items wharf knows; an operator loads them (as `ops inventory load
    // --apply` does: storage charges the first polls brought are attributed then), no event announces them.
    const inventory = world.truth().inventory;
    for (const c of world.clients) {
      await storeInventoryItems(sql, {
        sourceId: `client-${c.id}`,
        apply: true,
        items: inventory.filter((i) => i.client_id === c.id).map((i) => ({ id: i.id, clientId: `client-${c.id}`, name: null, sku: null })),
      });
    }
    out(`simulator ${sim.apiUrl}, wharf ${web.url}, ${world.clients.length} sources, ${opts.dropRate ?? 0.1} of webhooks dropped`);

    const sender = createWebhookSender({
      target: (clientId) => `${web.url}/webhooks/shipbob/client-${clientId}`,
      secretFor: (clientId) => [world.clients[clientId - 1].secret],
      dropRate: opts.dropRate ?? 0.1,
      duplicateRate: 0.05,
      reorderWindow: 16,
    });
    // cron runs poll_schedule each minute; the demo is shorter, so it asks for the schedule itself every few seconds.
    const schedule = () =>
      sql`select graphile_worker.add_job('poll_schedule', job_key := 'poll_schedule', job_key_mode := 'preserve_run_at')`;
    const started = Date.now();
    let lastTick = started;
    let nextReport = started;
    while (Date.now() - started < durationMs) {
      await new Promise((r) => setTimeout(r, SECOND));
      const t = Date.now();
      sender.enqueue(world.step({ newOrders: 3, updates: 12, billing: 4, durationMs: t - lastTick }));
      lastTick = t;
      if (t >= nextReport) {
        await schedule();
        const f = await readDemoFigures(sql);
        out(
          `${String(Math.round((t - started) / 1000)).padStart(3)} s  received ${f.received}  applied ${f.applied}  ` +
            `pending ${f.pending}  poll catches ${f.catches}  dead ${f.dead}  webhooks dropped ${sender.stats.dropped}`,
        );
        nextReport = t + 5 * SECOND;
      }
    }
    await sender.drain();
    out('changes stopped; a last poll of every stream, then the drain…');
    await new Promise((r) => setTimeout(r, config.pollLagMs + 500)); // the last changes fall inside the poll window
    await enqueuePolls(
      sql,
      world.clients.flatMap((c) => PollStreams.map((stream) => ({ sourceId: `client-${c.id}`, stream }))),
    );
    // Settled: no poll job left and nothing pending (each poll kicks no drain, so the cron line or a kick does).
    const deadline = Date.now() + 60 * SECOND;
    for (;;) {
      const [{ jobs }] = await sql<{ jobs: number }[]>`
        select count(*)::int as jobs from graphile_worker.jobs where task_identifier = 'poll_stream'`;
      const f = await readDemoFigures(sql);
      if (jobs === 0 && f.pending === 0) break;
      if (Date.now() > deadline) {
        out(`gave up waiting: ${jobs} poll jobs, ${f.pending} pending events`);
        break;
      }
      if (jobs === 0) await kickDrain(sql);
      await new Promise((r) => setTimeout(r, 250));
    }
    const f = await readDemoFigures(sql);
    const mismatches = await diffWithWorld(sql, world.truth());
    return {
      received: f.received,
      applied: f.applied,
      pollCatches: f.catches,
      dead: f.dead,
      matchesWorld: mismatches.length === 0,
      mismatches,
    };
  } finally {
    for (const stop of stops) await stop().catch(() => {});
  }
}
