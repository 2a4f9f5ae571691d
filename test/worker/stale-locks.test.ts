import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { Sql } from '../../src/db/client.js';
import { findStaleLocks } from '../../src/worker/stale-locks.js';
import { projectRoot } from '../../src/paths.js';
import { freshDatabase } from '../helper.js';
import { runOpsCli } from '../ops/run-ops.js';
import { waitFor } from '../wait.js';

const DEAD_AFTER_MS = 600;

/** A worker child process and a way to await the lines it prints. */
function startSlowWorker(t: Test, url: string) {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(projectRoot, 'test', 'worker', 'fixtures', 'slow-worker.ts')],
    { cwd: projectRoot, env: { PATH: process.env.PATH, DATABASE_URL: url, HEARTBEAT_MS: '100' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  child.stdout!.on('data', (c) => {
    out += c;
    for (const w of [...waiters]) {
      const m = out.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const line = (re: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const m = out.match(re);
      if (m) return resolve(m);
      waiters.push({ re, resolve });
      child.once('exit', () => reject(new Error(`worker exited before printing ${re}`)));
    });
  return { child, line };
}

async function addSlowJob(sql: Sql, hangThroughAttempt: number): Promise<string> {
  const [job] = await sql<{ id: string }[]>`
    select id::text from graphile_worker.add_job('slow', json_build_object('hangThroughAttempt', ${hangThroughAttempt}::int), max_attempts := 5)`;
  return job.id;
}

const until = <T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 15_000) => waitFor(check, what, timeoutMs, 100);

t.test('a SIGKILLed worker’s lock is found and released, the job completes, and a live slow worker keeps its lock', async (t) => {
  const { sql, url } = await freshDatabase(t);

  // Worker A takes job A and is killed mid-job: its lock stays behind.
  const jobA = await addSlowJob(sql, 1);
  const a = startSlowWorker(t, url);
  await a.line(new RegExp(`started ${jobA} 1`));
  const [ready] = await a.line(/ready (\S+)/).then((m) => [m[1]]);
  await until(async () => (await sql`select 1 from worker_heartbeats where worker_id = ${ready}`)[0], 'worker A’s heartbeat');
  a.child.kill('SIGKILL');
  await new Promise((r) => a.child.once('exit', r));

  // Worker B takes job B and stays alive, working on it for longer than the threshold.
  const jobB = await addSlowJob(sql, 99);
  const b = startSlowWorker(t, url);
  await b.line(new RegExp(`started ${jobB} 1`));

  const stale = await until(async () => {
    const locks = await findStaleLocks(sql, { deadAfterMs: DEAD_AFTER_MS });
    return locks.some((l) => l.id === jobA) ? locks : undefined;
  }, 'job A to look abandoned');
  t.same(
    stale.map((l) => [l.kind, l.id, l.task]),
    [['job', jobA, 'slow']],
    'only the dead worker’s job is listed',
  );
  t.ok(stale[0].lastSeenAt, 'with the dead worker’s last heartbeat');

  await until(async () => {
    const [r] = await sql`select 1 from graphile_worker._private_jobs where id = ${jobB}::bigint and locked_at < now() - ${DEAD_AFTER_MS}::int * interval '1 millisecond'`;
    return r;
  }, 'job B to be older than the threshold');
  t.same(
    (await findStaleLocks(sql, { deadAfterMs: DEAD_AFTER_MS })).map((l) => l.id),
    [jobA],
    'job B, locked longer than the threshold by a live worker, is not listed',
  );

  const dry = await runOpsCli(url, ['clear-stale-locks', '--dead-after', `${DEAD_AFTER_MS}ms`]);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, /dry run/, 'without --apply it is a dry run');
  const [stillLocked] = await sql`select locked_by from graphile_worker._private_jobs where id = ${jobA}::bigint`;
  t.ok(stillLocked.locked_by, 'the dry run released nothing');

  const applied = await runOpsCli(url, ['clear-stale-locks', '--dead-after', `${DEAD_AFTER_MS}ms`, '--apply', '--json']);
  t.equal(applied.code, 0, applied.stderr);
  const report = JSON.parse(applied.stdout);
  t.same(report.released.map((r: { jobIds: string[] }) => r.jobIds), [[jobA]], 'apply releases job A');

  const audit = await sql`select worker_id, job_ids, released_by from lock_releases`;
  t.equal(audit.length, 1, 'one audit row');
  t.same(audit[0].job_ids, [jobA]);
  t.equal(audit[0].released_by, 'ops:clear-stale-locks');

  await b.line(new RegExp(`done ${jobA}`));
  await until(async () => {
    const [r] = await sql`select 1 from graphile_worker._private_jobs where id = ${jobA}::bigint`;
    return r ? undefined : true;
  }, 'job A to complete');
  t.pass('job A completed on the live worker after the release');
  const [bRow] = await sql`select locked_by from graphile_worker._private_jobs where id = ${jobB}::bigint`;
  t.ok(bRow.locked_by, 'job B is still locked by its live worker');
});
