import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runOnce } from 'graphile-worker';
import { waitFor } from '../wait.js';
import t, { type Test } from 'tap';
import type postgres from 'postgres';
import { createDb, type Sql } from '../../src/db/client.js';
import { drainChunk, drainInbox } from '../../src/drain/drain-inbox.js';
import { buildTaskList } from '../../src/worker/task-list.js';
import { chargeBody, insertInbox, insertSources, shipmentBody } from '../apply/factory.js';
import { freshDatabase, testConfig } from '../helper.js';

// The drain as the worker runs it (graphile-worker, the real task list), and drains that die mid-chunk.

const quiet = { logger: undefined, noHandleSignals: true, concurrency: 2 } as const;

async function seed(sql: Sql, n: number) {
  await insertSources(sql, 1);
  const events = [];
  for (let i = 1; i <= n; i++) {
    events.push({ topic: 'order.shipment.tracking.updated', body: shipmentBody(i, i) });
    events.push({ topic: 'billing.charge.created', body: chargeBody(`T${i}`, i, i) });
  }
  await insertInbox(sql, events);
  return events.length;
}

t.test('the drain task, run by graphile-worker, applies the whole inbox', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const n = await seed(sql, 300);
  const config = testConfig(url);
  const db = createDb({ url, max: 2 });
  t.teardown(() => db.close(1));
  await sql`select graphile_worker.add_job('drain', job_key := 'drain')`;
  await runOnce({ ...quiet, connectionString: url, taskList: buildTaskList({ config, db, now: () => new Date() }) });
  const [row] = await sql`select count(*) filter (where status = 'processed')::int as processed, count(*)::int as n from inbox_events`;
  t.same({ ...row }, { processed: n, n });
  const [att] = await sql`select count(*)::int as n from transactions where attribution_status = 'attributed'`;
  t.equal(att.n, 300);
});

t.test('a drain whose time budget runs out re-queues itself and the next run finishes', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const n = await seed(sql, 400);
  const config = testConfig(url, { DRAIN_CHUNK_SIZE: '20', DRAIN_TIME_BUDGET_MS: '100' });
  const db = createDb({ url, max: 2 });
  t.teardown(() => db.close(1));
  await sql`select graphile_worker.add_job('drain', job_key := 'drain')`;
  const { EventEmitter } = await import('node:events');
  const events = new EventEmitter();
  let runs = 0;
  events.on('job:success', ({ job }) => {
    if (job.task_identifier === 'drain') runs++;
  });
  await runOnce({ ...quiet, connectionString: url, events, taskList: buildTaskList({ config, db, now: () => new Date() }) });
  t.ok(runs >= 2, `${runs} drain runs`);
  const [row] = await sql`select count(*) filter (where status = 'processed')::int as processed from inbox_events`;
  t.equal(row.processed, n);
});

/** Holds a row lock on charge T1 so that a drain stops inside its chunk, after writing shipments, until released. */
async function blockChunk(sql: Sql) {
  await sql`insert into transactions (transaction_id, source_id, amount, event_time, event_inbox_id)
            values ('T1', 'src-1', 0, '-infinity', 0)`;
  const holder = await sql.reserve();
  await holder`begin`;
  await holder`select 1 from transactions where transaction_id = 'T1' for update`;
  return holder;
}

type Reserved = postgres.ReservedSql;

/**
 * The backend of `application` that waits for the holder's lock. Only that one: with concurrent chunks another backend
 * may be waiting for a sibling chunk's lock instead.
 */
async function waitForLockWait(sql: Sql, application: string, holder: Reserved): Promise<number> {
  const [{ pid: holderPid }] = await holder`select pg_backend_pid() as pid`;
  return waitFor(
    async () => {
      const [row] = await sql`
        select pid from pg_stat_activity
         where application_name = ${application} and ${holderPid}::int = any(pg_blocking_pids(pid))`;
      return row?.pid as number | undefined;
    },
    'a chunk waiting on the held lock',
    30_000,
    20,
  );
}

async function assertNothingApplied(t: Test, sql: Sql, n: number) {
  const [row] = await sql`
    select (select count(*)::int from inbox_events where status = 'pending' and attempts = 0) as pending,
           (select count(*)::int from shipments) as shipments`;
  t.same({ ...row }, { pending: n, shipments: 0 }, 'every event pending, nothing applied');
}

async function assertAppliedOnce(t: Test, sql: Sql, n: number) {
  const r = await drainChunk(sql, 500);
  t.equal(r.processed, n, 'the next drain applies everything');
  const [row] = await sql`
    select (select count(*)::int from inbox_events where status = 'processed' and attempts = 1) as once,
           (select count(*)::int from shipments) as shipments,
           (select count(*)::int from transactions where attribution_status = 'attributed') as attributed`;
  t.same({ ...row }, { once: n, shipments: n / 2, attributed: n / 2 }, 'each event applied once');
}

t.test('a chunk aborted mid-transaction (statement cancelled) rolls back, throws (retry) and marks nothing', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const n = await seed(sql, 100);
  const holder = await blockChunk(sql);
  const db = createDb({ url, max: 1, applicationName: 'drain-aborted' });
  t.teardown(() => db.close(1));
  const running = drainChunk(db.sql, 500);
  const pid = await waitForLockWait(sql, 'drain-aborted', holder);
  await sql`select pg_cancel_backend(${pid})`;
  await t.rejects(running, 'the drain throws: the job will retry');
  await holder`rollback`;
  holder.release();
  await assertNothingApplied(t, sql, n);
  await assertAppliedOnce(t, sql, n);
});

t.test('a drain of concurrent chunks, one aborted: the others commit, the drain throws (retry), the aborted chunk stays pending', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const n = await seed(sql, 100);
  const holder = await blockChunk(sql);
  const db = createDb({ url, max: 3, applicationName: 'drain-concurrent' });
  t.teardown(() => db.close(1));
  const running = drainInbox(db.sql, { chunkSize: 60, budgetMs: 60_000, concurrency: 3 });
  const failure = running.then(
    () => null,
    (err: unknown) => err,
  );
  const pid = await waitForLockWait(sql, 'drain-concurrent', holder);
  await sql`select pg_cancel_backend(${pid})`;
  // Release the test's lock before awaiting the drain: it throws only once every loop has finished its chunk, and a
  // sibling chunk may be waiting for the same lock.
  await holder`rollback`;
  holder.release();
  t.ok(await failure, 'the drain throws: the job will retry');
  // Which chunks committed depends on timing (a sibling loop may even re-claim the aborted chunk's rows once they are
  // unlocked); what must hold is that nothing was marked without being applied, and that the retry finishes the rest
  // with every event applied exactly once.
  const [row] = await sql`
    select count(*)::int as pending from inbox_events where status = 'pending' and attempts = 0`;
  t.ok(row.pending < n, `${n - row.pending} events of the other chunks committed`);
  const r = await drainInbox(sql, { chunkSize: 60, budgetMs: 60_000, concurrency: 3 });
  t.equal(r.processed, row.pending, 'the retry applies exactly what was left');
  const [after] = await sql`select count(*) filter (where status = 'processed' and attempts = 1)::int as once from inbox_events`;
  t.equal(after.once, n, 'each event applied once');
});

t.test('a drain process killed mid-chunk loses nothing and applies nothing twice', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const n = await seed(sql, 100);
  const holder = await blockChunk(sql);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(path.dirname(fileURLToPath(import.meta.url)), 'drain-child.ts'), url], {
    stdio: 'ignore',
  });
  const pid = await waitForLockWait(sql, 'drain-child', holder);
  child.kill('SIGKILL');
  await once(child, 'exit');
  await holder`rollback`;
  holder.release();
  // The server notices the dead client once its statement stops waiting; its transaction never commits.
  await waitFor(
    async () => ((await sql`select 1 from pg_stat_activity where pid = ${pid}`).length === 0 ? true : undefined),
    'the killed child\'s backend to end',
    30_000,
    20,
  );
  await assertNothingApplied(t, sql, n);
  await assertAppliedOnce(t, sql, n);
});
