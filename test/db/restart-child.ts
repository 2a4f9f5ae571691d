/**
 * The load of test/db/restart.test.ts, in its own process so that a crash of postgres.js is an exit the test sees:
 * `restart-child.ts <database url>` (IPC channel required). Until the parent sends `stop`, it runs at once, on one
 * real pool (createDb): intake inserts through the real group committer, drain chunks, plain queries, sql.begin
 * transactions (some rolled back on purpose) and reserved connections (autocommit inserts and a manual transaction).
 * Every operation is tracked with its start time; one still pending after DEADLINE_MS is reported as stuck.
 * On `stop` it ends the load, does a final round of each kind of work, and reports what it was told was committed.
 */
import { performance } from 'node:perf_hooks';
import { createDb } from '../../src/db/client.js';
import { drainChunk, drainInbox } from '../../src/drain/drain-inbox.js';
import type { Queryable } from '../../src/db/client.js';
import type { NewInboxEvent } from '../../src/inbox/insert-events.js';
import { createGroupCommitter } from '../../src/intake/group-commit.js';
import { shipmentBody } from '../apply/factory.js';

const url = process.argv[2];
const CONNECT_TIMEOUT_MS = Number(process.env.RESTART_CONNECT_TIMEOUT_MS ?? 2000);
const INTAKE_TIMEOUT_MS = Number(process.env.RESTART_INTAKE_TIMEOUT_MS ?? 2000);
const DEADLINE_MS = Number(process.env.RESTART_DEADLINE_MS ?? 10_000);
const APPLICATION = 'restart-child';

const send = (msg: object) => process.send?.(msg);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

const db = createDb({ url, max: 8, connectTimeoutMs: CONNECT_TIMEOUT_MS, applicationName: APPLICATION });
const { sql } = db;

// ─── tracking: every operation settles, or is reported ───
interface Pending {
  kind: string;
  started: number;
  reported: boolean;
}
const pending = new Map<number, Pending>();
const stats: Record<string, { ok: number; failed: number; maxMs: number }> = {};
const errors: Record<string, number> = {};
let seq = 0;

const codeOf = (err: unknown) => {
  const e = err as { code?: string; message?: string; name?: string };
  return e?.code ?? e?.name ?? String(err).slice(0, 60);
};

function track<T>(kind: string, p: Promise<T>): Promise<T> {
  const id = ++seq;
  const entry: Pending = { kind, started: performance.now(), reported: false };
  pending.set(id, entry);
  const s = (stats[kind] ??= { ok: 0, failed: 0, maxMs: 0 });
  const done = (ok: boolean) => {
    pending.delete(id);
    const ms = performance.now() - entry.started;
    s.maxMs = Math.max(s.maxMs, Math.round(ms));
    if (ok) s.ok++;
    else s.failed++;
    if (entry.reported) send({ type: 'late', kind, ms: Math.round(ms) });
  };
  p.then(
    () => done(true),
    (err) => {
      done(false);
      const c = codeOf(err);
      errors[c] = (errors[c] ?? 0) + 1;
    },
  );
  return p;
}

const watchdog = setInterval(() => {
  const now = performance.now();
  for (const p of pending.values()) {
    if (!p.reported && now - p.started > DEADLINE_MS) {
      p.reported = true;
      send({ type: 'stuck', kind: p.kind, ageMs: Math.round(now - p.started) });
    }
  }
}, 100);

// ─── what the child was told is committed ───
const acked = { intake: [] as string[], tx: [] as string[], reserved: [] as string[], reservedPairs: [] as string[] };
const rolledBack: string[] = [];
let n = 0;
const tag = `${process.pid}`;

// The intake's own path: the group committer, its insert statement, on the same pool. Each statement it sends is
// tracked too (the committer's own timeout answers a request; the statement underneath must still settle).
const trackedSql = ((strings: TemplateStringsArray, ...values: never[]) =>
  track('intake statement', sql(strings, ...values))) as unknown as Queryable;
const committer = createGroupCommitter({ sql: trackedSql, maxInFlight: 3, maxBatchRows: 200, maxBatchBytes: 256 * 1024, maxQueuedRows: 5000 });

const event = (i: number): NewInboxEvent => ({
  sourceId: 'src-1',
  eventId: `evt-${tag}-${i}`,
  topic: 'order.shipment.tracking.updated',
  body: JSON.stringify(shipmentBody(i, i)),
  headers: { 'webhook-id': `evt-${tag}-${i}` },
  eventTime: null,
  via: 'webhook',
});

async function intakeOnce() {
  const e = event(++n);
  await track('intake submit', committer.submit(e, INTAKE_TIMEOUT_MS));
  acked.intake.push(e.eventId);
}

async function drainOnce() {
  await track('drain chunk', drainChunk(sql, 50));
}

async function plainOnce() {
  const i = ++n;
  // Small statements go out on the next turn (setImmediate), large ones (>= 1 KiB) at once: both paths.
  if (i % 4 === 0) await track('plain query', sql`select length(${'x'.repeat(3000)}::text) as n`);
  else await track('plain query', sql`select pg_sleep(0.002), ${i}::int as i`);
}

async function transactionOnce() {
  const id = `tx-${tag}-${++n}`;
  const fail = n % 5 === 0;
  await track(
    'begin',
    sql.begin(async (tx) => {
      await track('tx statement', tx`insert into restart_probe (id, via) values (${id}, 'tx')`);
      await track('tx statement', tx`select pg_sleep(0.01)`);
      if (fail) {
        rolledBack.push(id);
        throw new Error('deliberate rollback');
      }
      await track('tx statement', tx`update restart_probe set n = n + 1 where id = ${id}`);
    }),
  );
  acked.tx.push(id);
}

async function reservedOnce() {
  const r = await track('reserve', sql.reserve());
  try {
    const id = `res-${tag}-${++n}`;
    await track('reserved query', r`insert into restart_probe (id, via) values (${id}, 'reserved')`);
    acked.reserved.push(id);
    // A manual transaction on the reserved connection: both rows or neither.
    const pair = `pair-${tag}-${++n}`;
    await track('reserved query', r`begin`);
    await track('reserved query', r`insert into restart_probe (id, via) values (${`${pair}-a`}, 'pair')`);
    await track('reserved query', r`select pg_sleep(0.005)`);
    await track('reserved query', r`insert into restart_probe (id, via) values (${`${pair}-b`}, 'pair')`);
    await track('reserved query', r`commit`);
    acked.reservedPairs.push(pair);
  } finally {
    r.release();
  }
}

let stopping = false;
async function loop(body: () => Promise<void>) {
  while (!stopping) {
    try {
      await body();
    } catch {
      await pause(5 + Math.random() * 20); // the database is away: do not spin
    }
    await pause(Math.random() * 3);
  }
}

const loops = [
  ...Array.from({ length: 8 }, () => loop(intakeOnce)),
  loop(drainOnce),
  loop(drainOnce),
  loop(plainOnce),
  loop(plainOnce),
  loop(transactionOnce),
  loop(transactionOnce),
  loop(reservedOnce),
];

/** After the chaos every kind of work must succeed again (a connection the last round killed may fail once). */
async function finalRound() {
  const attempt = async (what: string, f: () => Promise<unknown>) => {
    let last: unknown;
    for (let i = 0; i < 3; i++) {
      try {
        return await f();
      } catch (err) {
        last = err;
        await pause(200);
      }
    }
    throw new Error(`final ${what} failed: ${String(last)}`);
  };
  await attempt('plain query', () => track('final', sql`select 1 as one`));
  await attempt('intake', intakeOnce);
  await attempt('transaction', async () => {
    const id = `tx-${tag}-final`;
    await track('final', sql.begin((tx) => tx`insert into restart_probe (id, via, n) values (${id}, 'tx', 1)`));
    acked.tx.push(id);
  });
  await attempt('reserved', reservedOnce);
  // Everything acknowledged gets drained: the inbox ends empty.
  await attempt('drain', () => track('final', drainInbox(sql, { chunkSize: 500, budgetMs: 20_000 })));
}

process.on('message', async (msg: { type: string }) => {
  if (msg.type !== 'stop') return;
  stopping = true;
  await Promise.all(loops);
  await committer.close();
  let final: { ok: boolean; error?: string } = { ok: true };
  try {
    await finalRound();
  } catch (err) {
    final = { ok: false, error: String(err) };
  }
  clearInterval(watchdog);
  clearInterval(progress);
  send({ type: 'final', final, acked, rolledBack, stats, errors, stillPending: [...pending.values()].map((p) => p.kind) });
  await db.close(2);
  process.disconnect?.();
});

// Progress (operations that succeeded so far), so the parent can tell the pool recovers after each restart.
const progress = setInterval(() => {
  let ok = 0;
  for (const s of Object.values(stats)) ok += s.ok;
  send({ type: 'progress', ok });
}, 250);
process.on('disconnect', () => clearInterval(progress));

await sql`select 1`;
send({ type: 'ready' });
