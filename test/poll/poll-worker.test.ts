import { Logger, run, runOnce } from 'graphile-worker';
import t from 'tap';
import { waitFor } from '../wait.js';
import { MINUTE } from '../../src/config.js';
import { parsePollStreamPayload } from '../../src/worker/tasks/poll_stream.js';
import { buildTaskList } from '../../src/worker/task-list.js';
import { pollSetup } from './poll-setup.js';

// poll_schedule and poll_stream run by graphile-worker itself, against the simulator.

const quiet = new Logger(() => () => {});

t.test('poll payloads are validated before anything runs', async (t) => {
  t.same(parsePollStreamPayload({ sourceId: 'c1', stream: 'orders' }), { sourceId: 'c1', stream: 'orders' });
  t.same(parsePollStreamPayload({ sourceId: 'c1', stream: 'returns' }), { sourceId: 'c1', stream: 'returns' });
  t.equal(parsePollStreamPayload({ sourceId: 'c1', stream: 'refunds' }), null);
  t.equal(parsePollStreamPayload({ sourceId: '', stream: 'orders' }), null);
  t.equal(parsePollStreamPayload('c1/orders'), null);
});

t.test('the schedule queues one keyed job per due stream in its own queue; the jobs poll; then nothing is due', async (t) => {
  const { world, sql, db, config } = await pollSetup(t, {
    worldOptions: { seed: 41, clients: 2, ordersPerClient: 30 },
    rateLimit: false,
  });
  const { url } = db;
  await sql`insert into sources (id, name, api_token) values ('hooks-only', 'Webhooks only', null)`;
  await sql`insert into sources (id, name, api_token, enabled) values ('off', 'Disabled', 'pat_x', false)`;
  world.advance(MINUTE);
  const taskList = buildTaskList({ config, db, now: () => new Date(world.now()) });
  /**
   * Runs a real worker until the queue is empty, then stops it. The queue's rows are the signal: `job:complete` fires
   * before graphile-worker has written the completion, and stop() may not wait for that write.
   */
  const runJobs = async () => {
    const runner = await run({ connectionString: url, taskList, logger: quiet, concurrency: 2, noHandleSignals: true });
    try {
      await waitFor(
        async () => ((await sql`select count(*)::int as n from graphile_worker.jobs`)[0].n === 0 ? true : undefined),
        'the job queue to empty',
        30_000,
        20,
      );
    } finally {
      await runner.stop();
    }
  };

  await sql`select graphile_worker.add_job('poll_schedule')`;
  // Only poll_schedule may run here: the jobs it queues are inspected before they run.
  await runOnce({ connectionString: url, taskList: { poll_schedule: taskList.poll_schedule }, logger: quiet });
  const jobs = await sql<{ key: string; queue_name: string; payload: { sourceId: string; stream: string } }[]>`
    select j.key, q.queue_name, j.payload
      from graphile_worker._private_jobs j
      join graphile_worker._private_tasks k on k.id = j.task_id
      left join graphile_worker._private_job_queues q on q.id = j.job_queue_id
     where k.identifier = 'poll_stream' order by j.key`;
  t.same(
    jobs.map((j) => [j.key, j.queue_name, `${j.payload.sourceId}/${j.payload.stream}`]),
    ['c1', 'c2'].flatMap((s) =>
      ['orders', 'returns', 'timelines', 'transactions'].map((stream) => [`poll:${s}:${stream}`, `poll:${s}:${stream}`, `${s}/${stream}`]),
    ),
    'enabled sources with a token only; job key = queue name = poll:<source>:<stream>',
  );

  await sql`select graphile_worker.add_job('poll_schedule')`;
  const [{ n }] = await sql`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'poll_stream'`;
  await runOnce({ connectionString: url, taskList: { poll_schedule: taskList.poll_schedule }, logger: quiet });
  const [{ m }] = await sql`select count(*)::int as m from graphile_worker.jobs where task_identifier = 'poll_stream'`;
  t.equal(m, n, 'scheduling again while jobs wait adds none (the job key)');

  await runJobs();
  const left = await sql`select task_identifier, key, last_error from graphile_worker.jobs`;
  t.same(left, [], 'every job ran and succeeded');
  const [inbox] = await sql`select count(distinct source_id)::int as sources, count(*)::int as events
                              from inbox_events where via = 'poll'`;
  t.equal(inbox.sources, 2);
  t.ok(inbox.events >= world.size().orders, `${inbox.events} events polled`);
  const [applied] = await sql`select count(*) filter (where status = 'pending')::int as pending, (select count(*)::int from orders) as orders
                                from inbox_events`;
  t.same(applied, { pending: 0, orders: world.size().orders }, 'the polls woke the drain (no cron runs here), which applied them');

  await sql`select graphile_worker.add_job('poll_schedule')`;
  await runJobs();
  const [after] = await sql`select count(*)::int as n from graphile_worker.jobs`;
  t.equal(after.n, 0, 'nothing is due within POLL_INTERVAL_MS of the last run');

  await sql`select graphile_worker.add_job('poll_stream', ${JSON.stringify({ sourceId: 'c1', stream: 'nope' })}::json)`;
  await runJobs();
  const [bad] = await sql`select count(*)::int as n from graphile_worker.jobs`;
  t.equal(bad.n, 0, 'an invalid payload is dropped (logged), not retried');
});
