import type { Queryable, Sql } from '../db/client.js';
import { type ClaimedChunk, type ClaimLane, claimInboxChunk, claimInboxEventsById, type InboxRow } from '../inbox/claim.js';
import { type InboxMark, markInboxEvents } from '../inbox/mark.js';
import { inboxKeysOf } from '../apply/entity-keys.js';
import { normaliseEvent } from '../apply/normalise.js';
import { type AppliedChunk, type ApplyOptions, applyChunk } from './apply-chunk.js';
import { type ChunkResult, DrainPhases } from './chunk-result.js';
import type { ExpressLane, ExpressRun, ExpressRunParams } from './express-lane.js';

/**
 * The drain's loop: claim a chunk of pending inbox rows and apply it (apply-chunk.ts), one transaction per chunk.
 * See docs/drain.md for the failure modes; in short:
 * - an event that cannot be interpreted is marked dead by normalise and the rest of its chunk lands;
 * - a batch statement that PostgreSQL rejects for its data (SQLSTATE class 22, 23 or 54) rolls the chunk back and the
 *   chunk is bisected: halves retried in their own transactions, down to single events, which are marked dead;
 * - any other error (connection lost, serialization failure, deadlock, a bug) rolls back and is thrown: nothing is
 *   marked, the rows stay pending, the job retries.
 */

export { type ChunkResult, type DrainPhase, DrainPhases } from './chunk-result.js';

const emptyResult = (): ChunkResult => ({
  claimed: 0,
  processed: 0,
  dead: 0,
  ignored: 0,
  attributed: 0,
  refused: 0,
  deferred: 0,
  clamped: 0,
  pollCatches: {},
  byTopic: {},
  transactions: 0,
  phases: { claim: 0, normalise: 0, upsert: 0, attribution: 0, commit: 0 },
  applied: [],
  cutByBytes: false,
});

function add(into: ChunkResult, from: ChunkResult): ChunkResult {
  into.claimed += from.claimed;
  into.processed += from.processed;
  into.dead += from.dead;
  into.ignored += from.ignored;
  into.attributed += from.attributed;
  into.refused += from.refused;
  into.deferred += from.deferred;
  into.clamped += from.clamped;
  into.transactions += from.transactions;
  for (const p of DrainPhases) into.phases[p] += from.phases[p];
  into.applied.push(...from.applied);
  into.cutByBytes ||= from.cutByBytes;
  for (const [k, n] of Object.entries(from.pollCatches)) into.pollCatches[k] = (into.pollCatches[k] ?? 0) + n;
  for (const [k, t] of Object.entries(from.byTopic)) {
    const mine = (into.byTopic[k] ??= { processed: 0, dead: 0, ignored: 0 });
    mine.processed += t.processed;
    mine.dead += t.dead;
    mine.ignored += t.ignored;
  }
  return into;
}

function summarise(rows: readonly InboxRow[], marks: readonly InboxMark[], applied?: AppliedChunk): ChunkResult {
  const r = emptyResult();
  r.claimed = rows.length;
  r.transactions = 1;
  r.attributed = applied?.attributed ?? 0;
  r.refused = applied?.refused ?? 0;
  r.deferred = applied?.deferred ?? 0;
  r.clamped = applied?.clamped ?? 0;
  const topics = new Map(rows.map((row) => [row.id, row.topic ?? '']));
  for (const m of marks) {
    r[m.status]++;
    const t = (r.byTopic[topics.get(m.id) ?? ''] ??= { processed: 0, dead: 0, ignored: 0 });
    t[m.status]++;
  }
  for (const c of applied?.catches ?? []) r.pollCatches[c.stream] = (r.pollCatches[c.stream] ?? 0) + c.count;
  return r;
}

/** PostgreSQL rejected the data (not the connection, not a conflict between drains): bisect to find the culprit. */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}

/** One transaction: claim (by `claim`), then the chunk's statements (apply-chunk.ts). Throws whatever fails; nothing
 * is marked then. */
async function applyInTransaction(
  sql: Sql,
  claim: (tx: Queryable) => Promise<ClaimedChunk>,
  claimed: InboxRow[],
  opts: ApplyOptions,
) {
  const started = performance.now();
  let applied = started;
  const result = await sql.begin(async (tx) => {
    const { rows, cutByBytes } = await claim(tx);
    claimed.push(...rows);
    if (rows.length === 0) return emptyResult();
    const claimedAt = performance.now();
    const chunk = await applyChunk(tx, rows, opts);
    const r = { ...summarise(rows, chunk.marks, chunk), cutByBytes };
    applied = performance.now();
    r.phases.claim = claimedAt - started;
    Object.assign(r.phases, chunk.timings);
    const processed = new Set(chunk.marks.filter((m) => m.status === 'processed').map((m) => m.id));
    r.applied.push({ receivedAt: rows.filter((row) => row.via === 'webhook' && processed.has(row.id)).map((row) => row.receivedAt), committedAt: 0 });
    return r;
  });
  if (result.claimed > 0) {
    result.phases.commit = performance.now() - applied;
    for (const a of result.applied) a.committedAt = Date.now();
  }
  return result;
}

const byIds = (ids: readonly number[]) => async (tx: Queryable): Promise<ClaimedChunk> => ({
  rows: await claimInboxEventsById(tx, ids),
  cutByBytes: false,
});

/**
 * Drains one chunk of up to `size` pending events (oldest first) whose bodies fit in `maxBytes` together (an event
 * larger than that alone). Safe to run from several processes at once. Resolves with what it did; rejects on a
 * transient error (nothing marked: retry later).
 */
export async function drainChunk(
  sql: Sql,
  size: number,
  opts: ApplyOptions & { maxBytes?: number; lane?: ClaimLane } = {},
): Promise<ChunkResult> {
  const claimed: InboxRow[] = [];
  try {
    return await applyInTransaction(sql, (tx) => claimInboxChunk(tx, size, opts.maxBytes, opts.lane), claimed, opts);
  } catch (err) {
    if (!isDataError(err) || claimed.length === 0) throw err;
    const result = await bisect(
      sql,
      claimed.map((r) => r.id),
      err,
      opts,
    );
    result.transactions++; // the failed one
    return result;
  }
}

/** Applies `ids` in two halves, each in its own transaction, recursing into a half that fails; a single event that
 * fails is marked dead with PostgreSQL's message. Rows another drain took meanwhile are simply not claimed here. */
async function bisect(sql: Sql, ids: readonly number[], cause: unknown, opts: ApplyOptions): Promise<ChunkResult> {
  if (ids.length === 0) return emptyResult();
  if (ids.length === 1) {
    const result = emptyResult();
    const reason = `apply failed: ${(cause as Error).message ?? String(cause)}`.slice(0, 1000);
    await sql.begin(async (tx) => {
      const rows = await claimInboxEventsById(tx, ids);
      if (rows.length === 0) return;
      const n = normaliseEvent(rows[0]);
      const marks: InboxMark[] = [{ id: rows[0].id, status: 'dead', error: reason, keys: inboxKeysOf(rows[0].body, n) }];
      await markInboxEvents(tx, marks);
      add(result, summarise(rows, marks));
    });
    return result;
  }
  const half = Math.ceil(ids.length / 2);
  const result = emptyResult();
  for (const part of [ids.slice(0, half), ids.slice(half)]) {
    const claimed: InboxRow[] = [];
    try {
      add(result, await applyInTransaction(sql, byIds(part), claimed, opts));
    } catch (err) {
      if (!isDataError(err)) throw err;
      result.transactions++;
      add(result, await bisect(sql, claimed.map((r) => r.id), err, opts));
    }
  }
  return result;
}

/** How long the express loop waits when its sources have nothing pending, while bulk loops still run. */
const EXPRESS_IDLE_MS = 5;
/** How long after an express chunk with rows the bulk loops take turns (one full chunk at a time). */
const EXPRESS_BUSY_MS = 250;
/** The longest a bulk chunk waits, between its statements, for the express chunk in flight. */
const GIVE_WAY_MAX_MS = 100;
/** The longest a bulk loop waits, before its next chunk, for the express chunk in flight (it holds no locks then). */
const EXPRESS_START_WAIT_MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface DrainResult extends ChunkResult {
  chunks: number;
  /** False when the time budget ran out with events possibly left: the caller re-queues the drain. */
  emptied: boolean;
}

/**
 * Drains chunk after chunk until a chunk comes back short (the inbox held no more claimable rows) or `budgetMs` is
 * spent. `concurrency` loops (default 1) run at once, each chunk its own transaction on its own connection (the pool
 * must have that many): one loop's JavaScript overlaps another's SQL. They take disjoint chunks (SKIP LOCKED) and lock
 * shared rows in the same order, so they never deadlock. When one loop fails, the others stop after their current
 * chunk and the first error is thrown. `onChunk` sees each chunk's result (metrics).
 *
 * Lanes (docs/drain.md "Fairness"): the `concurrency` loops claim `bulk` chunks (the backlogged sources: every source
 * without lanes); with `expressPerSource` > 0 one more loop claims `express` chunks (the sources with at
 * most that many pending rows), so a backlog drains in full chunks beside a lane that is at most one small chunk away
 * from any other source's fresh event. That loop runs in `expressLane`'s thread when one is given (express-lane.ts:
 * the bulk chunks' JavaScript then never holds it up), else here. A bulk loop starts its next chunk only after the
 * express chunk in flight, if any, and while the express lane has work the bulk loops take turns (the two lanes share
 * a few cores). The express loop waits a moment when it finds nothing while the bulk loops run, and ends once they
 * have ended and it finds nothing.
 */
export async function drainInbox(
  sql: Sql,
  opts: {
    chunkSize: number;
    chunkMaxBytes?: number;
    budgetMs: number;
    concurrency?: number;
    /** DRAIN_EXPRESS_PER_SOURCE: the express lane's bound on a light source's pending rows (0: no express loop). */
    expressPerSource?: number;
    /** Where the express loop runs (its own thread); in this event loop when absent. */
    expressLane?: ExpressLane;
    onChunk?: (r: ChunkResult, ms: number) => void;
    /** WEBHOOK_TOLERANCE_MS: how far an event time may lead its arrival (apply-chunk.ts). */
    futureToleranceMs?: number;
  },
): Promise<DrainResult> {
  const deadline = performance.now() + opts.budgetMs;
  const total: DrainResult = { ...emptyResult(), chunks: 0, emptied: false };
  const bulkLoops = Math.max(1, opts.concurrency ?? 1);
  const perSource = opts.expressPerSource ?? 0;
  const loops = bulkLoops + (perSource > 0 ? 1 : 0);
  let failed = false;
  let emptiedLoops = 0;
  let bulkRunning = bulkLoops;
  // While the express lane has work (it claimed rows lately), bulk chunks go one at a time: fewer full chunks compete
  // with the express chunk for the cores and the database.
  let expressBusyUntil = 0;
  const counted = (r: ChunkResult, ms: number) => {
    opts.onChunk?.(r, ms);
    add(total, r);
    total.chunks++;
  };
  // The express chunk in flight: a bulk loop starts its next chunk after it (priority on 2 cores), at most one wait.
  let expressInFlight: Promise<unknown> | undefined;
  // The thread serves one drain at a time; a drain running beside another in this process loops here instead.
  const thread = perSource > 0 && opts.expressLane && !opts.expressLane.busy() ? opts.expressLane : undefined;
  const expressPending = (maxMs: number) =>
    thread ? thread.inFlight(maxMs) : expressInFlight && Promise.race([expressInFlight, sleep(maxMs)]);
  // Inside a bulk chunk the wait is bounded: a source may change class between claims, and the express chunk may then
  // be waiting for this chunk's row locks.
  const giveWay = () => expressPending(GIVE_WAY_MAX_MS) ?? Promise.resolve();
  let bulkSlot: Promise<void> = Promise.resolve();
  // The express loop: in the lane's thread, or here (its state then read from this drain's own: no finish or stop).
  const expressParams: ExpressRunParams = {
    chunkSize: opts.chunkSize,
    perSource,
    maxBytes: opts.chunkMaxBytes,
    futureToleranceMs: opts.futureToleranceMs,
    budgetMs: opts.budgetMs,
    idleMs: EXPRESS_IDLE_MS,
  };
  const expressChunk = (r: ChunkResult, ms: number) => {
    expressBusyUntil = performance.now() + EXPRESS_BUSY_MS;
    counted(r, ms);
  };
  let express: ExpressRun | undefined;
  const bulk = async () => {
    try {
      while (!failed) {
        let release: (() => void) | undefined;
        if (performance.now() < expressBusyUntil) {
          const previous = bulkSlot;
          bulkSlot = new Promise<void>((resolve) => {
            release = resolve;
          });
          await previous;
        }
        await expressPending(EXPRESS_START_WAIT_MS);
        const started = performance.now();
        const r = await drainChunk(sql, opts.chunkSize, {
          futureToleranceMs: opts.futureToleranceMs,
          maxBytes: opts.chunkMaxBytes,
          lane: { lane: 'bulk', perSource },
          giveWay,
        }).finally(() => release?.());
        counted(r, performance.now() - started);
        // A short chunk emptied its sources, unless the byte bound cut it or it left deferred rows (claimable again at
        // once).
        if (r.claimed < opts.chunkSize && !r.cutByBytes && r.deferred === 0) {
          emptiedLoops++;
          return;
        }
        if (performance.now() >= deadline) return;
      }
    } catch (err) {
      failed = true;
      express?.stop();
      throw err;
    } finally {
      if (--bulkRunning === 0) express?.finish();
    }
  };
  // The bulk loops start first (their first chunk does not wait for an express one), then the express loop.
  const bulkRuns = Array.from({ length: bulkLoops }, bulk);
  express =
    perSource === 0
      ? undefined
      : thread
        ? thread.run(expressParams, expressChunk)
        : {
            finish() {},
            stop() {},
            done: runExpressLoop(sql, expressParams, {
              mode: () => (failed ? 'stop' : bulkRunning === 0 ? 'finish' : 'run'),
              onChunk: expressChunk,
              track: (chunk) => {
                expressInFlight = chunk.catch(() => undefined);
              },
              pause: sleep,
            }),
          };
  const expressDone = express?.done.then(
    (emptied) => {
      if (emptied) emptiedLoops++;
    },
    (err: unknown) => {
      failed = true;
      throw err;
    },
  );
  const settled = await Promise.allSettled([...bulkRuns, ...(expressDone ? [expressDone] : [])]);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  total.emptied = emptiedLoops === loops;
  return total;
}

/**
 * The express loop, wherever it runs (drainInbox's event loop, or the lane's thread: express-thread.ts): express
 * chunks one after the other, a pause of `idleMs` after one that finds nothing, until `mode()` says the bulk loops
 * have ended (`finish`: at the first chunk that finds nothing, or past the budget: it outlives the budget while a bulk
 * loop finishes its chunk, which would otherwise leave a gap of up to a full chunk's time, once per budget, with no
 * fresh event applied) or failed (`stop`: after the chunk in flight). `track` sees each chunk as it starts (the bulk
 * loops wait for it); `onChunk` each one that claimed rows. Resolves with whether it ended on a chunk that found
 * nothing; rejects with a chunk's error.
 */
export async function runExpressLoop(
  sql: Sql,
  p: ExpressRunParams,
  control: {
    mode: () => 'run' | 'finish' | 'stop';
    onChunk: (r: ChunkResult, ms: number) => void;
    track: (chunk: Promise<ChunkResult>) => void;
    pause: (ms: number) => Promise<unknown>;
  },
): Promise<boolean> {
  const deadline = performance.now() + p.budgetMs;
  while (control.mode() !== 'stop') {
    const started = performance.now();
    const chunk = drainChunk(sql, p.chunkSize, {
      lane: { lane: 'express', perSource: p.perSource },
      maxBytes: p.maxBytes,
      futureToleranceMs: p.futureToleranceMs,
    });
    control.track(chunk);
    const r = await chunk;
    if (r.claimed > 0) control.onChunk(r, performance.now() - started);
    const mode = control.mode();
    if (mode === 'stop') return false;
    if (mode === 'finish' && (r.claimed === 0 || performance.now() >= deadline)) return r.claimed === 0;
    if (r.claimed === 0) await control.pause(p.idleMs);
  }
  return false;
}
