import t from 'tap';
import { createDb } from '../../src/db/client.js';
import { freshDatabase } from '../helper.js';

// postgres.js 3.4.9 crashes the process (an uncatchable TypeError in nextWrite) when a connection's backend dies
// while a small write is queued, and can then leave the pool unable to flush. patches/postgres+3.4.9.patch fixes both.
t.test('the pool survives its backends being terminated mid-load, and serves again afterwards', async (t) => {
  const { sql: admin, url } = await freshDatabase(t);
  const db = createDb({ url, max: 4 });
  t.teardown(() => db.close(1));
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  process.on('uncaughtException', onCrash);
  t.teardown(() => process.off('uncaughtException', onCrash));

  let stop = false;
  let failed = 0;
  const load = Array.from({ length: 16 }, async () => {
    while (!stop) {
      await db.sql`select 1 as one`.catch(() => failed++);
      await new Promise((r) => setImmediate(r)); // a fast-failing loop must not starve the timers
    }
  });
  for (let round = 0; round < 5; round++) {
    await new Promise((r) => setTimeout(r, 30));
    await admin`select pg_terminate_backend(pid) from pg_stat_activity
                where datname = current_database() and pid <> pg_backend_pid()`;
  }
  stop = true;
  await Promise.all(load);
  t.same(crashes, [], 'no uncaught exception');
  t.ok(failed > 0, 'queries on terminated connections were rejected (the test did hit the race)');
  // A connection killed after the last round fails once more; after that every connection must answer.
  await Promise.all(Array.from({ length: 8 }, () => db.sql`select 1`.catch(() => {})));
  const rows = await Promise.race([
    Promise.all(Array.from({ length: 8 }, () => db.sql`select 2 as two`)),
    new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5000)),
  ]);
  t.not(rows, 'hung', 'every connection flushes again after reconnecting');
});

t.test('a reserved connection whose backend died rejects its queries instead of crashing the process', async (t) => {
  const { sql: admin, url } = await freshDatabase(t);
  const db = createDb({ url, max: 2 });
  t.teardown(() => db.close(1));
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  process.on('uncaughtException', onCrash);
  t.teardown(() => process.off('uncaughtException', onCrash));

  const reserved = await db.sql.reserve();
  const [{ pid }] = await reserved`select pg_backend_pid() as pid`;
  await admin`select pg_terminate_backend(${pid})`;
  await reserved`select 1`.catch(() => {});
  const second = await Promise.race([
    reserved`select 1`.then(
      () => 'answered',
      () => 'rejected',
    ),
    new Promise<string>((r) => setTimeout(() => r('hung'), 3000)),
  ]);
  reserved.release();
  await new Promise((r) => setImmediate(r));
  t.same(crashes, [], 'no uncaught exception');
  t.not(second, 'hung', 'the query settles');
});
