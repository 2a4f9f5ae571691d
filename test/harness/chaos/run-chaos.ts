import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createDb, type Sql } from '../../../src/db/client.js';
import { releaseStaleLocks } from '../../../src/worker/stale-locks.js';
import { storeInventoryItems } from '../../../src/ops/tenancy.js';
import { projectRoot } from '../../../src/paths.js';
import { startSimulator } from '../simulator/index.js';
import {
  type ChangeEvent,
  createWebhookSender,
  type Simulator,
  type WebhookMessage,
  type WebhookSender,
} from '../simulator/index.js';
import type { PollStream } from '../../../src/poll/streams.js';
import { enqueuePolls, pollJobName } from '../../../src/poll/enqueue.js';
import { type ChaosDatabase, startChaosDatabase } from './database.js';
import { startWharfService, type WharfService } from './service.js';
import {
  type AckedEvent,
  compareWithWorld,
  findLostAcknowledgements,
  readInboxAccount,
  type SentMessage,
  traceEntity,
} from './verify.js';

/**
 * The chaos run: the simulator drives wharf (web and worker as separate processes, loopback only) with signed
 * webhooks carrying the provider's habits (drops, duplicates, reordering, retries), while the harness SIGKILLs the
 * worker several times, the web once, and disrupts PostgreSQL once. Then it lets polling catch up and checks that
 * wharf's database equals the world. See docs/proof.md for what each check means.
 */

export interface ChaosOptions {
  seed: number;
  /** Provider accounts (one wharf source each). */
  clients: number;
  /** History before the run, found only by the first poll (backfill). */
  ordersPerClient: number;
  /** How long webhooks are generated (wall clock). */
  durationMs: number;
  /** New orders per second; updates are 5x that and billing changes 1.3x (about 11 events per new order). */
  ordersPerSecond: number;
  workerKills: number;
  webKills: number;
  postgresRestarts: number;
  dropRate: number;
  duplicateRate: number;
  reorderWindow: number;
  /**
   * Drop return webhooks too. Off by default: the provider has no return list to poll; wharf fetches by id the returns
   * charges name, but never re-reads a return it knows, so one whose last webhook was never sent keeps an older status
   * (docs/proof.md); on, the run shows that gap as differences.
   */
  dropReturns: boolean;
  /** fsync on (the service's setting) or off (CI). */
  durable: boolean;
  /** A server to use instead of an embedded one (its connections are cut instead of a restart). */
  databaseUrl?: string;
  /** Web and worker processes: deliveries are spread over the webs, kills go round each kind in turn. */
  webProcesses: number;
  workerProcesses: number;
  /** How long polling and the drain may take to catch up after the load. */
  settleTimeoutMs: number;
  log: (line: string) => void;
}

export const CHAOS_DEFAULTS: Omit<ChaosOptions, 'log'> = {
  seed: 1,
  clients: 4,
  ordersPerClient: 100,
  durationMs: 90_000,
  ordersPerSecond: 36,
  workerKills: 4,
  webKills: 2,
  postgresRestarts: 1,
  dropRate: 0.02,
  duplicateRate: 0.05,
  reorderWindow: 16,
  dropReturns: false,
  durable: true,
  webProcesses: 2,
  workerProcesses: 2,
  settleTimeoutMs: 180_000,
};

export interface ChaosReport {
  chaos: 'done';
  /** Distinct events wharf answered 2xx for. */
  events_acked: number;
  /** Acknowledged events missing from the inbox. */
  lost: number;
  /** Idempotency keys stored twice + inbox rows marked twice (docs/proof.md). */
  applied_twice: number;
  /** Charges the world attributes to a client that wharf has without one. */
  unattributed_attributable: number;
  matches_world: boolean;
  kills: { worker: number; web: number; postgres: number };
  web_processes: number;
  worker_processes: number;
  /** Exits nobody asked for (a crash, e.g. at a database restart): the goal is 0. */
  process_exits_unplanned: number;
  details: {
    events_generated: number;
    webhooks: { attempts: number; delivered: number; dropped: number; duplicates: number; retries: number; failed: number };
    inbox: { rows: number; by_status: Record<string, number>; duplicates_absorbed: number; via_poll: number };
    world: { orders: number; shipments: number; returns: number; transactions: number };
    unknowable: { returns: number };
    differences: number;
    first_differences: string[];
    lost_examples: AckedEvent[];
    /** Exits nobody asked for; `after_postgres`: those within 15 s of a database disruption. */
    unexpected_exits: { web: number; worker: number; after_postgres: number };
    postgres_disruption: string;
    stale_locks_released: number;
    /** Rounds of final polls until every cursor covered the world's last change (more than 1: a window was resumed). */
    poll_rounds: number;
    seconds: { load: number; catch_up: number; total: number };
  };
}

const SECOND = 1000;
const TICK_MS = 250;
const POLL_LAG_MS = 1000;
const STALE_LOCK_AFTER_MS = 4000;
const HEARTBEAT_MS = 1000;
const RETURN_TOPIC = /^return\./;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const log = opts.log;
  const logDir = mkdtempSync(path.join(tmpdir(), 'wharf-chaos-logs-'));
  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    const database = await startChaosDatabase({ label: 'chaos', durable: opts.durable, databaseUrl: opts.databaseUrl });
    cleanup.unshift(() => database.close());
    log(`database: ${database.kind} PostgreSQL${opts.durable ? ' (fsync on)' : ' (fsync off)'}`);

    // The world's clock starts now so webhook times, event times and poll windows all line up with the wall clock.
    // The rate limit is raised (not removed) so the poller still reads x-remaining-calls.
    const sim = await startSimulator({
      worldOptions: { seed: opts.seed, clients: opts.clients, ordersPerClient: opts.ordersPerClient, start: Date.now() },
      rateLimit: { limit: 1_000_000, windowMs: 60 * SECOND },
    });
    cleanup.unshift(() => sim.close());
    const history = sim.world.size();
    log(`simulator ${sim.url}: ${opts.clients} clients, history of ${history.orders} orders, ${history.transactions} charges`);

    const service = await startWharfService({
      webs: opts.webProcesses,
      workers: opts.workerProcesses,
      databaseUrl: database.url,
      providerBaseUrl: sim.url,
      logDir,
      env: {
        WORKER_CONCURRENCY: '4',
        POLL_INTERVAL_MS: String(5 * SECOND),
        POLL_LAG_MS: String(POLL_LAG_MS),
        POLL_BACKFILL_DAYS: '60',
        PROVIDER_CALLS_PER_MINUTE: '100000',
        HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
        STALE_LOCK_AFTER_MS: String(STALE_LOCK_AFTER_MS),
      },
    });
    cleanup.unshift(() => service.stop());
    log(
      `wharf: web ${service.webUrls.join(', ')} (pids ${service.webs.map((w) => w.pid).join(', ')}), ` +
        `worker pids ${service.workers.map((w) => w.pid).join(', ')}; logs in ${logDir}`,
    );

    const harnessDb = createDb({ url: database.url, max: 2, applicationName: 'chaos-harness' });
    cleanup.unshift(() => harnessDb.close());
    const { sql } = harnessDb;

    const sources = await registerSources(sim, database.url);
    const seeded = await seedInventory(sql, sim, sources);
    log(`inventory: ${seeded.items} items stored; ${seeded.attributed} storage charges the first polls brought attributed then`);

    // ─── load with faults ───
    const acked = new Map<string, AckedEvent>();
    let nextWeb = 0;
    const onDelivered = (m: WebhookMessage) => acked.set(m.id, { sourceId: sources.get(m.clientId)!.id, eventId: m.id });
    const senderOptions = {
      // Round robin over the webs, as a load balancer would (the provider retries a refused delivery: the next try may
      // land on the other web).
      target: (clientId: number) =>
        `${service.webUrls[nextWeb++ % service.webUrls.length]}/webhooks/shipbob/${sources.get(clientId)!.id}`,
      secretFor: (clientId: number) => [sim.world.clients[clientId - 1].secret],
      duplicateRate: opts.duplicateRate,
      reorderWindow: opts.reorderWindow,
      // About 40 s of retries (the provider retries for a day): covers a restart of either process or the database.
      retry: { maxAttempts: 14, baseDelayMs: 200, maxDelayMs: 4 * SECOND },
      onDelivered,
    };
    const sender = createWebhookSender({ ...senderOptions, seed: opts.seed, dropRate: opts.dropRate });
    const returnSender = opts.dropReturns
      ? sender
      : createWebhookSender({ ...senderOptions, seed: opts.seed + 1, dropRate: 0 });

    const loadStart = Date.now();
    const faults = scheduleFaults(opts, loadStart);
    const chaos = { worker: 0, web: 0, postgres: 0, lastWorkerKill: 0, disruption: 'none', disruptedAt: [] as number[], busy: false };
    const watchdog = setInterval(() => {
      if (chaos.busy) return;
      for (const p of [...service.webs, ...service.workers]) {
        if (p.pid === undefined) {
          log(`${p.role} exited on its own: restarting it`);
          chaos.busy = true;
          void p.ensureRunning().finally(() => (chaos.busy = false));
          return;
        }
      }
    }, 500);
    cleanup.unshift(async () => clearInterval(watchdog));

    const faultLoop = (async () => {
      for (const f of faults) {
        await sleep(Math.max(0, f.at - Date.now()));
        while (chaos.busy) await sleep(50);
        chaos.busy = true;
        try {
          await inflict(f.kind, service, database, chaos, log);
        } finally {
          chaos.busy = false;
        }
      }
    })();

    let events = 0;
    let carry = 0;
    const returnMessages: WebhookMessage[] = [];
    const allMessages: WebhookMessage[] = [];
    while (Date.now() - loadStart < opts.durationMs) {
      const tickStart = Date.now();
      // Keep world time at the wall clock: a change never happens "in the future" of the poll window by more than a tick.
      if (sim.world.now() < tickStart) sim.world.advance(tickStart - sim.world.now());
      const want = (opts.ordersPerSecond * TICK_MS) / SECOND + carry;
      const newOrders = Math.floor(want);
      carry = want - newOrders;
      const changes = sim.world.step({
        newOrders,
        updates: Math.round(newOrders * 5),
        billing: Math.round(newOrders * 1.3),
        durationMs: TICK_MS,
      });
      events += changes.length;
      const messages = enqueue(changes, sender, returnSender);
      allMessages.push(...messages);
      returnMessages.push(...messages.filter((m) => RETURN_TOPIC.test(m.topic)));
      await sleep(Math.max(0, TICK_MS - (Date.now() - tickStart)));
    }
    log(`load: ${events} events generated in ${((Date.now() - loadStart) / SECOND).toFixed(1)} s; waiting for deliveries`);
    await faultLoop;
    await Promise.all([sender.drain(), returnSender.drain()]);
    const loadSeconds = (Date.now() - loadStart) / SECOND;
    while (chaos.busy) await sleep(50);
    for (const p of [...service.webs, ...service.workers]) await p.ensureRunning();
    const stats = sumStats(sender, returnSender === sender ? undefined : returnSender);
    log(
      `webhooks: ${stats.attempts} attempts, ${acked.size} events acknowledged, ${stats.dropped} never sent, ` +
        `${stats.duplicates} duplicated, ${stats.retries} retries, ${stats.failed} given up`,
    );

    // ─── catch up: what an operator (or the next cron minute) would do ───
    const catchUpStart = Date.now();
    await sleep(Math.max(0, sim.world.now() + POLL_LAG_MS + SECOND - Date.now()));
    await sleep(Math.max(0, chaos.lastWorkerKill + STALE_LOCK_AFTER_MS + 2 * HEARTBEAT_MS - Date.now()));
    const released = await releaseStaleLocks(sql, { deadAfterMs: STALE_LOCK_AFTER_MS, releasedBy: 'chaos' });
    const staleLocks = released.reduce((n, r) => n + r.jobIds.length + r.queueNames.length, 0);
    if (released.length > 0) log(`released ${staleLocks} locks of ${released.length} killed worker(s)`);
    const sourceIds = [...sources.values()].map((s) => s.id);
    const deadline = catchUpStart + opts.settleTimeoutMs;
    const pollRounds = await pollEverything(sql, { sourceIds, until: new Date(sim.world.now()), deadline, log });
    // The polls woke the drain themselves; the returns stream works from the applied charges, so it runs after.
    await drainEverything(sql, deadline);
    await runPollJobs(sql, sourceIds.map((sourceId) => ({ sourceId, stream: 'returns' as const })), deadline);
    await drainEverything(sql, deadline);
    const catchUpSeconds = (Date.now() - catchUpStart) / SECOND;
    log(`caught up in ${catchUpSeconds.toFixed(1)} s`);

    // ─── checks ───
    const lost = await findLostAcknowledgements(sql, [...acked.values()]);
    const inbox = await readInboxAccount(sql);
    const [{ n: viaPoll }] = await sql<{ n: number }[]>`select count(*)::int as n from inbox_events where via = 'poll'`;
    const clientOf = (simClientId: number) => sources.get(simClientId)!.clientId;
    const announcedReturns = announcedReturnIds(returnMessages, [...sender.dropped, ...(returnSender === sender ? [] : returnSender.dropped)]);
    const world = await compareWithWorld(sql, sim.world.truth(), { clientOf, announcedReturns });
    // The first few differences, traced: what the webhooks carrying that entity became, and what the inbox holds.
    const dropped = new Set([...sender.dropped, ...(returnSender === sender ? [] : returnSender.dropped)].map((m) => m.id));
    const sent: SentMessage[] = allMessages.map((m) => ({
      id: m.id,
      body: m.body,
      fate: dropped.has(m.id) ? 'dropped' : acked.has(m.id) ? 'acked' : 'failed',
    }));
    for (let i = 0; i < Math.min(5, world.differences.length); i++) {
      const id = /^\w+ (\S+):/.exec(world.differences[i])?.[1];
      if (id) world.differences[i] += ` — ${await traceEntity(sql, id, sent)}`;
    }
    const unplanned = [...service.webs, ...service.workers].flatMap((p) => p.unexpectedExits);
    const pendingOrDead = (inbox.byStatus.pending ?? 0) + (inbox.byStatus.dead ?? 0);
    if (pendingOrDead > 0) world.differences.unshift(`inbox: ${pendingOrDead} rows pending or dead at the end`);

    return {
      chaos: 'done',
      events_acked: acked.size,
      lost: lost.length,
      applied_twice: inbox.keysStoredTwice + inbox.markedTwice,
      unattributed_attributable: world.unattributedAttributable,
      matches_world: world.differences.length === 0,
      kills: { worker: chaos.worker, web: chaos.web, postgres: chaos.postgres },
      web_processes: service.webs.length,
      worker_processes: service.workers.length,
      process_exits_unplanned: unplanned.length,
      details: {
        events_generated: events,
        webhooks: stats,
        inbox: { rows: inbox.rows, by_status: inbox.byStatus, duplicates_absorbed: inbox.duplicatesAbsorbed, via_poll: viaPoll },
        world: world.checked,
        unknowable: world.unknowable,
        differences: world.differences.length,
        first_differences: world.differences.slice(0, 10),
        lost_examples: lost.slice(0, 5),
        unexpected_exits: {
          web: service.webs.reduce((n, w) => n + w.unexpectedExits.length, 0),
          worker: service.workers.reduce((n, w) => n + w.unexpectedExits.length, 0),
          after_postgres: unplanned.filter((e) =>
            chaos.disruptedAt.some((t) => e.at >= t && e.at < t + 15 * SECOND),
          ).length,
        },
        postgres_disruption: chaos.disruption,
        stale_locks_released: staleLocks,
        poll_rounds: pollRounds,
        seconds: { load: loadSeconds, catch_up: catchUpSeconds, total: (Date.now() - started) / SECOND },
      },
    };
  } finally {
    for (const fn of cleanup) await fn().catch((err) => log(`cleanup: ${err instanceof Error ? err.message : err}`));
  }
}

type FaultKind = 'worker' | 'web' | 'postgres';

/** Fault times spread over the load: worker kills evenly, the web and the database between them. */
function scheduleFaults(opts: ChaosOptions, start: number): { kind: FaultKind; at: number }[] {
  const at = (fraction: number) => start + Math.round(opts.durationMs * fraction);
  // Offsets keep the web and database faults from landing on a worker kill (with the defaults: 0.45 and 0.63).
  const spread = (kind: FaultKind, n: number, offset: number) =>
    Array.from({ length: n }, (_, i) => ({ kind, at: at(Math.min(0.95, offset + (i + 1) / (n + 1) - 0.5)) }));
  return [
    ...spread('worker', opts.workerKills, 0.5),
    ...spread('web', opts.webKills, 0.45),
    ...spread('postgres', opts.postgresRestarts, 0.63),
  ].sort((a, b) => a.at - b.at);
}

async function inflict(
  kind: FaultKind,
  service: WharfService,
  database: ChaosDatabase,
  chaos: { worker: number; web: number; postgres: number; lastWorkerKill: number; disruption: string; disruptedAt: number[] },
  log: (line: string) => void,
): Promise<void> {
  const t0 = Date.now();
  if (kind === 'postgres') {
    chaos.disruptedAt.push(t0);
    chaos.disruption = await database.disrupt();
    chaos.postgres++;
    log(`postgres ${chaos.disruption} (${Date.now() - t0} ms)`);
    return;
  }
  // Kills go round the processes of that kind, so each one is hit.
  const pool = kind === 'web' ? service.webs : service.workers;
  const p = pool[chaos[kind] % pool.length];
  const pid = p.pid;
  await p.kill();
  if (kind === 'worker') chaos.lastWorkerKill = Date.now();
  chaos[kind]++;
  await p.start();
  log(`SIGKILL ${kind} ${pool.indexOf(p) + 1} of ${pool.length} (pid ${pid}); restarted as pid ${p.pid} in ${Date.now() - t0} ms`);
}

/** Hands changes to the senders (returns to the return sender); returns every message, dropped ones included. */
function enqueue(changes: ChangeEvent[], sender: WebhookSender, returnSender: WebhookSender): WebhookMessage[] {
  if (returnSender === sender) return sender.enqueue(changes);
  const isReturn = (c: ChangeEvent) => RETURN_TOPIC.test(c.topic);
  return [...sender.enqueue(changes.filter((c) => !isReturn(c))), ...returnSender.enqueue(changes.filter(isReturn))];
}

/** Returns at least one sent (not dropped) webhook announced. */
function announcedReturnIds(messages: readonly WebhookMessage[], dropped: readonly WebhookMessage[]): Set<number> {
  const droppedIds = new Set(dropped.map((m) => m.id));
  return new Set(messages.filter((m) => !droppedIds.has(m.id)).map((m) => (JSON.parse(m.body) as { id: number }).id));
}

function sumStats(a: WebhookSender, b?: WebhookSender) {
  const s = (k: keyof WebhookSender['stats']) => a.stats[k] + (b?.stats[k] ?? 0);
  return {
    attempts: s('sent'),
    delivered: s('delivered'),
    dropped: s('dropped'),
    duplicates: s('duplicates'),
    retries: s('retries'),
    failed: s('failed'),
  };
}

interface RegisteredSource {
  id: string;
  clientId: string;
}

/** One wharf source per simulator client, registered the way an operator does: `ops sources add … --json`. */
async function registerSources(sim: Simulator, databaseUrl: string): Promise<Map<number, RegisteredSource>> {
  const run = promisify(execFile);
  const added = await Promise.all(
    sim.world.clients.map(async (c) => {
      const clientId = `client-${c.id}`;
      const { stdout } = await run(
        process.execPath,
        ['--import', 'tsx', path.join('scripts', 'ops.ts'), 'sources', 'add', '--name', c.name, '--secret-env', 'CHAOS_SECRET',
          '--api-token-env', 'CHAOS_TOKEN', '--client', clientId, '--json'],
        // Secrets through the environment, not argv (docs/tenancy.md).
        { cwd: projectRoot, env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', CHAOS_SECRET: c.secret, CHAOS_TOKEN: c.token } },
      );
      const { id } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { id: string };
      return [c.id, { id, clientId }] as const;
    }),
  );
  return new Map(added);
}

/**
 * Storage (FC) charges are attributed through inventory items wharf knows; the provider announces none, so an
 * operator stores them, as `ops inventory set` or `load --apply` does: the first polls may have brought storage
 * charges already, which this attributes (src/ops/tenancy.ts). One transaction per source.
 */
async function seedInventory(sql: Sql, sim: Simulator, sources: Map<number, RegisteredSource>): Promise<{ items: number; attributed: number }> {
  const items = sim.world.truth().inventory;
  let attributed = 0;
  for (const [simClientId, source] of sources) {
    const w = await storeInventoryItems(sql, {
      sourceId: source.id,
      apply: true,
      items: items.filter((i) => i.client_id === simClientId).map((i) => ({ id: i.id, clientId: source.clientId, name: null, sku: null })),
    });
    attributed += w.attributed;
  }
  return { items: items.length, attributed };
}

/**
 * Polls orders and transactions of every source until each stream's cursor has reached `until` (the world's last
 * change): each round runs a poll job for the streams not there yet. A poll that resumes a window a killed worker left
 * open goes on with a fresh window up to now in the same run, so one round should do; a second means it did not.
 */
async function pollEverything(
  sql: Sql,
  p: { sourceIds: string[]; until: Date; deadline: number; log: (line: string) => void },
): Promise<number> {
  let rounds = 0;
  while (Date.now() < p.deadline) {
    const behind = await sql<{ source_id: string; stream: string }[]>`
      select s.id as source_id, st.stream
        from unnest(${p.sourceIds}::text[]) as s(id) cross join unnest(array['orders', 'transactions']) as st(stream)
        left join poll_cursors c on c.source_id = s.id and c.stream = st.stream
       where c.cursor_time is null or c.cursor_time < ${p.until.toISOString()}::timestamptz or c.window_end is not null`;
    if (behind.length === 0) return rounds;
    rounds++;
    p.log(`polling round ${rounds}: ${behind.length} streams behind the world's last change, poll jobs queued`);
    await runPollJobs(
      sql,
      behind.map((b) => ({ sourceId: b.source_id, stream: b.stream as PollStream })),
      p.deadline,
    );
  }
  throw new Error('polling did not catch up before the deadline');
}

/**
 * Queues the poller's own job for each (source, stream) (its job key and queue: it replaces a pending one and never
 * overlaps a running one) and waits for those jobs. A job that exhausted its attempts fails the wait with its error.
 */
async function runPollJobs(sql: Sql, streams: { sourceId: string; stream: PollStream }[], deadline: number): Promise<void> {
  const ids = await enqueuePolls(sql, streams);
  const jobs = new Map(ids.map((id, i) => [id, pollJobName(streams[i])]));
  for (;;) {
    const left = await sql<{ id: string; attempts: number; max_attempts: number; last_error: string | null }[]>`
      select id::text, attempts, max_attempts, last_error from graphile_worker._private_jobs
       where id = any(${[...jobs.keys()]}::bigint[])`;
    const dead = left.find((j) => j.attempts >= j.max_attempts);
    if (dead) throw new Error(`poll ${jobs.get(dead.id)} failed for good: ${dead.last_error}`);
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error('polling did not catch up before the deadline');
    await sleep(250);
  }
}

/**
 * Waits until no inbox row is pending, twice in a row. It does not wake the drain: webhooks and polls that stored
 * events did (the worker's cron is the safety net), and that is part of what the run checks.
 */
async function drainEverything(sql: Sql, deadline: number): Promise<void> {
  let quiet = 0;
  while (Date.now() < deadline) {
    const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from inbox_events where status = 'pending'`;
    quiet = n === 0 ? quiet + 1 : 0;
    if (quiet >= 2) return;
    await sleep(250);
  }
  throw new Error('the drain did not empty the inbox before the deadline');
}
