import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import t from 'tap';
import { createDb } from '../../src/db/client.js';
import { type EmbeddedPostgres, startEmbeddedPostgres, tempDataDir } from '../../src/db/embedded.js';
import { runMigrations } from '../../src/db/migrate.js';
import { freePort } from '../../src/net.js';
import { insertSources } from '../apply/factory.js';

// A database restart under load neither crashes nor hangs a process (patches/postgres+3.4.9.patch). This file runs its
// own throwaway PostgreSQL, which it may stop and start (never the machine's or the test run's shared server). First
// the three ways postgres.js 3.4.9 went wrong when a backend died, one at a time; then the restarts: a child process
// (restart-child.ts) runs intake, drain, plain queries, transactions and reserved connections on one pool while its
// backends are terminated and the server restarted. Unpatched, the child dies with `TypeError: Cannot read properties
// of null (reading 'write')` in nextWrite; with only that write guarded, a reserve() could wait for ever.

const ROUNDS = 6;
const CONNECT_TIMEOUT_MS = 2000;
/** No operation of the child may be pending longer: the connect timeout plus a generous margin (a loaded 2-core VM). */
const DEADLINE_MS = CONNECT_TIMEOUT_MS + 8000;

t.setTimeout(100_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One short-lived admin connection per use: the server it talks to is restarted between uses. */
async function withAdmin<T>(url: string, f: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    return await f(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

type Settled = { state: 'resolved'; value: unknown } | { state: 'rejected'; error: unknown } | { state: 'pending' };

/** How `p` stands after at most `ms`: a hang is 'pending'. */
function settle(p: Promise<unknown>, ms: number): Promise<Settled> {
  return Promise.race([
    p.then(
      (value) => ({ state: 'resolved' as const, value }),
      (error) => ({ state: 'rejected' as const, error }),
    ),
    sleep(ms).then(() => ({ state: 'pending' as const })),
  ]);
}

const dataDir = tempDataDir('restart');
const port = await freePort();
const start = () => startEmbeddedPostgres({ dataDir, port, durable: false, database: 'wharf_restart' });
let pg: EmbeddedPostgres = await start();
t.teardown(async () => {
  await pg.stop();
  rmSync(pg.dataDir, { recursive: true, force: true });
});
const url = pg.url;
await runMigrations(url);
await withAdmin(url, async (sql) => {
  await insertSources(sql, 1);
  await sql`create table restart_probe (id text primary key, via text not null, n int not null default 0)`;
});

interface Final {
  type: 'final';
  final: { ok: boolean; error?: string };
  acked: { intake: string[]; tx: string[]; reserved: string[]; reservedPairs: string[] };
  rolledBack: string[];
  stats: Record<string, { ok: number; failed: number; maxMs: number }>;
  errors: Record<string, number>;
  stillPending: string[];
}

/** Terminates backend `pid` and waits until it is gone (and its client has had a moment to see the close). */
async function kill(pid: number) {
  await withAdmin(url, async (sql) => {
    await sql`select pg_terminate_backend(${pid})`;
    while ((await sql`select 1 from pg_stat_activity where pid = ${pid}`).length > 0) await sleep(10);
  });
  await sleep(50);
}

t.test('a reserved connection whose backend died: its queries fail, no crash, and its release leaves the pool whole', async (t) => {
  const db = createDb({ url, max: 1, applicationName: 'restart-reserved' });
  t.teardown(() => db.close(1));
  const reserved = await db.sql.reserve();
  const [{ pid }] = await reserved`select pg_backend_pid() as pid`;
  await kill(pid);
  // (3.4.9: the first write after the close threw from setImmediate, an uncaught TypeError: porsager/postgres#1208.)
  t.equal((await settle(reserved`select 1`, 3000)).state, 'rejected', 'a query on it fails');
  t.equal((await settle(reserved`select 1`, 3000)).state, 'rejected', 'and the next one too');
  reserved.release();
  // (3.4.9 with the write guarded: the release put the dead connection in the open queue; from then on a query on the
  // pool failed and a reserve() waited for ever.)
  const after = await settle(db.sql`select 2 as two`, 5000);
  t.equal(after.state, 'resolved', 'the pool answers again (it reconnects)');
  const again = await settle(
    db.sql.reserve().then(async (r) => {
      await r`select 3`;
      r.release();
    }),
    5000,
  );
  t.equal(again.state, 'resolved', 'and reserves again');
});

t.test('a transaction whose connection died cannot touch that connection’s next session', async (t) => {
  const db = createDb({ url, max: 1, applicationName: 'restart-stale-tx' });
  t.teardown(() => db.close(1));
  let secondInserted!: () => void;
  const inserted = new Promise<void>((r) => (secondInserted = r));
  const first = db.sql.begin(async (tx) => {
    const [{ pid }] = await tx`select pg_backend_pid() as pid`;
    await kill(pid);
    await tx`select 1`.catch(() => {});
    await Promise.race([inserted, sleep(3000)]); // the pool has reconnected the connection for the second one
    throw new Error('the first transaction gives up'); // its automatic rollback is sent now
  });
  // Queued behind the first on the only connection: it gets the reconnected one.
  const second = db.sql.begin(async (tx) => {
    await tx`insert into restart_probe (id, via) values ('stale-a', 'stale')`;
    secondInserted();
    await sleep(300);
    await tx`insert into restart_probe (id, via) values ('stale-b', 'stale')`;
  });
  const [a, b] = await Promise.all([settle(first, 8000), settle(second, 8000)]);
  t.equal(a.state, 'rejected', 'the first transaction fails');
  t.equal(b.state, 'resolved', 'the second commits');
  const rows = await db.sql<{ id: string }[]>`select id from restart_probe where via = 'stale' order by id`;
  // (3.4.9: the first one's rollback ran in the second's session: stale-a rolled back, stale-b autocommitted, and the
  // second "committed" by halves.)
  t.same(rows.map((r) => r.id), ['stale-a', 'stale-b'], 'and is stored whole');
});

t.test('a reserve() waiting for the only connection settles when that connection dies', async (t) => {
  const db = createDb({ url, max: 1, applicationName: 'restart-queued-reserve' });
  t.teardown(() => db.close(1));
  const busy = db.sql`select pg_sleep(3)`.catch((e) => e);
  let pid: number | undefined;
  while (pid === undefined) {
    [{ pid } = { pid: undefined }] = await withAdmin(url, (sql) => sql<{ pid: number }[]>`
      select pid from pg_stat_activity where application_name = 'restart-queued-reserve' and query like 'select pg_sleep%'`);
    if (pid === undefined) await sleep(20);
  }
  const reserving = settle(
    db.sql.reserve().then(async (r) => {
      await r`select 1`;
      r.release();
    }),
    5000,
  );
  await sleep(50);
  await kill(pid);
  // (3.4.9: the pool handed the queued reserve to the reconnecting connection, which dropped it: porsager/postgres#1195.)
  t.equal((await reserving).state, 'resolved', 'the reserve gets the reconnected connection');
  await busy;
});

t.test('PostgreSQL restarts and backends terminated mid-transaction under load: no crash, no hang, nothing acknowledged lost', async (t) => {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(path.dirname(fileURLToPath(import.meta.url)), 'restart-child.ts'), url],
    {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      env: {
        ...process.env,
        RESTART_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
        RESTART_INTAKE_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
        RESTART_DEADLINE_MS: String(DEADLINE_MS),
      },
    },
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr?.on('data', (c) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));

  const stuck: unknown[] = [];
  let okSoFar = 0;
  let final: Final | undefined;
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  let gotFinal!: () => void;
  const finalReceived = new Promise<void>((r) => (gotFinal = r));
  child.on('message', (msg: { type: string; ok?: number }) => {
    if (msg.type === 'ready') ready();
    else if (msg.type === 'progress') okSoFar = msg.ok ?? okSoFar;
    else if (msg.type === 'stuck' || msg.type === 'late') stuck.push(msg);
    else if (msg.type === 'final') {
      final = msg as Final;
      gotFinal();
    }
  });
  await Promise.race([isReady, exited]);
  t.notOk(exitedEarly, `the child started ${stderr}`);
  if (exitedEarly) return;

  /** Waits until the child has done `more` successful operations (the pool serves again), at most `ms`. */
  const progressed = async (more: number, ms: number) => {
    const target = okSoFar + more;
    const until = Date.now() + ms;
    while (okSoFar < target && Date.now() < until && !exitedEarly) await sleep(50);
    return okSoFar >= target;
  };

  let terminated = 0;
  let terminatedInTransaction = 0;
  let recoveredRounds = 0;
  let restarts = 0;
  const started = Date.now();
  for (let round = 0; round < ROUNDS && !exitedEarly; round++) {
    if (await progressed(50, 8000)) recoveredRounds++;
    // Terminate every backend of the child, a few times over, while its transactions run.
    for (let burst = 0; burst < 3 && !exitedEarly; burst++) {
      const rows = await withAdmin(url, (sql) => sql<{ in_tx: boolean }[]>`
        select pg_terminate_backend(pid), xact_start is not null as in_tx
          from pg_stat_activity where application_name = 'restart-child' and backend_type = 'client backend'`);
      terminated += rows.length;
      terminatedInTransaction += rows.filter((r) => r.in_tx).length;
      await sleep(100 + Math.random() * 150);
    }
    await progressed(20, 3000);
    // Restart the server: fast shutdown (every backend is terminated, mid-transaction or not), down a moment, start.
    await pg.stop();
    await sleep(100 + Math.random() * 400);
    pg = await start();
    restarts++;
  }
  if (await progressed(50, 8000)) recoveredRounds++;
  t.comment(
    `${restarts} restarts in ${((Date.now() - started) / 1000).toFixed(1)} s; ${terminated} backends terminated, ${terminatedInTransaction} in a transaction`,
  );

  if (child.connected) child.send({ type: 'stop' });
  const settled = await Promise.race([finalReceived.then(() => 'final'), exited.then(() => 'exit'), sleep(20_000).then(() => 'timeout')]);
  const exit = await Promise.race([exited, sleep(10_000).then(() => undefined)]);

  t.equal(settled, 'final', 'the child finished its load and its final round and reported');
  t.same(exit, { code: 0, signal: null }, 'the child never exited on its own (no uncaught exception)');
  t.notMatch(stderr, /TypeError|uncaught|unhandled/i, 'nothing uncaught on stderr');
  if (stderr.trim()) t.comment(stderr.trim().slice(0, 2000));
  t.same(stuck, [], `no operation stayed pending longer than ${DEADLINE_MS} ms`);
  t.ok(terminatedInTransaction > 0, 'backends were terminated mid-transaction');
  t.equal(recoveredRounds, ROUNDS + 1, 'the pool served again after every round');
  if (!final) return;
  t.same(final.final, { ok: true }, 'the final round of work succeeded');
  t.same(final.stillPending, [], 'nothing left pending');
  t.comment(`operations: ${JSON.stringify(final.stats)}`);
  t.comment(`errors: ${JSON.stringify(final.errors)}`);
  const failed = Object.values(final.stats).reduce((a, s) => a + s.failed, 0);
  t.ok(failed > 0, 'the chaos did make operations fail (the test hit the restarts)');

  // Everything the child was told is committed is in the database; no transaction is there by halves.
  await withAdmin(url, async (sql) => {
    const { intake, tx, reserved, reservedPairs } = final!.acked;
    t.ok(intake.length > 100 && tx.length > 10 && reserved.length > 5, `acknowledged: ${intake.length} intake, ${tx.length} tx, ${reserved.length} reserved`);
    const [inbox] = await sql`select count(*)::int as n from inbox_events where event_id = any(${intake}::text[])`;
    t.equal(inbox.n, intake.length, 'every acknowledged intake event is stored');
    const [pendingRows] = await sql`select count(*)::int as n from inbox_events where status = 'pending'`;
    t.equal(pendingRows.n, 0, 'and the final drain emptied the inbox');
    const [txRows] = await sql`select count(*)::int as n from restart_probe where id = any(${tx}::text[]) and n = 1`;
    t.equal(txRows.n, tx.length, 'every committed transaction is stored whole');
    const [halves] = await sql`select count(*)::int as n from restart_probe where via = 'tx' and n <> 1`;
    t.equal(halves.n, 0, 'no transaction committed by halves');
    const [rolled] = await sql`select count(*)::int as n from restart_probe where id = any(${final!.rolledBack}::text[])`;
    t.equal(rolled.n, 0, 'no rolled-back transaction is stored');
    const [res] = await sql`select count(*)::int as n from restart_probe where id = any(${reserved}::text[])`;
    t.equal(res.n, reserved.length, 'every acknowledged insert on a reserved connection is stored');
    const pairs = await sql<{ pair: string; n: number }[]>`
      select left(id, length(id) - 2) as pair, count(*)::int as n from restart_probe where via = 'pair' group by 1`;
    t.same(pairs.filter((p) => p.n !== 2), [], 'a manual transaction on a reserved connection is stored whole or not at all');
    const stored = new Set(pairs.map((p) => p.pair));
    t.same(reservedPairs.filter((p) => !stored.has(p)), [], 'every committed one is stored');
  });
});
