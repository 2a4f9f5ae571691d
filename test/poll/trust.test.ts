import { Logger, run, runOnce } from 'graphile-worker';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { createDb } from '../../src/db/client.js';
import { MINUTE } from '../../src/config.js';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { insertSource } from '../../src/intake/sources.js';
import { startGaugeRefresher } from '../../src/ops/metrics-gauges.js';
import { buildMetricsApp } from '../../src/ops/metrics-server.js';
import { listDuePollStreams } from '../../src/poll/cursors.js';
import {
  ASSUMED_CALLS_PER_RUN,
  budgetFloorMs,
  chooseInterval,
  type IntervalPolicy,
  planPollIntervals,
} from '../../src/poll/intervals.js';
import { buildTaskList } from '../../src/worker/task-list.js';
import { sampleOpsMetrics } from '../../src/worker/ops-samples.js';
import { createWebhookSender } from '../harness/simulator/index.js';
import { freshDatabase, testConfig, testKeys } from '../helper.js';
import { runOpsCli } from '../ops/run-ops.js';
import { waitFor } from '../wait.js';
import { pollSetup } from './poll-setup.js';

// Webhook trust per source (src/poll/trust.ts) and the adaptive poll interval (src/poll/intervals.ts).

const quiet = new Logger(() => () => {});
const BASE = 5 * MINUTE;
const policy: IntervalPolicy = { baseMs: BASE, minMs: MINUTE, maxMs: 30 * MINUTE, missShare: 0.01, reliableShare: 0.001, minEvents: 200 };

t.test('the interval: base with too few events, shorter in proportion to misses down to the min, max when reliable', async (t) => {
  t.same(chooseInterval(policy, { events: 199, share: 0.5 }, 0), { intervalMs: BASE, reason: 'too_few_events' });
  t.same(chooseInterval(policy, { events: 0, share: null }, 0), { intervalMs: BASE, reason: 'too_few_events' });
  t.same(chooseInterval(policy, { events: 1000, share: 0.02 }, 0), { intervalMs: BASE / 2, reason: 'missing' }, 'twice the threshold: half');
  t.same(chooseInterval(policy, { events: 1000, share: 0.9 }, 0), { intervalMs: MINUTE, reason: 'missing' }, 'never below the min');
  t.same(chooseInterval(policy, { events: 1000, share: 0.01 }, 0), { intervalMs: BASE, reason: 'normal' }, 'at the threshold: base');
  t.same(chooseInterval(policy, { events: 1000, share: 0.005 }, 0), { intervalMs: BASE, reason: 'normal' });
  t.same(chooseInterval(policy, { events: 1000, share: 0.001 }, 0), { intervalMs: 30 * MINUTE, reason: 'reliable' });
  t.same(chooseInterval(policy, { events: 200, share: 0 }, 0), { intervalMs: 30 * MINUTE, reason: 'reliable' });
  // The budget floor stops shortening, but never pushes past the base (nor touches lengthening).
  t.same(chooseInterval(policy, { events: 1000, share: 0.9 }, 2 * MINUTE), { intervalMs: 2 * MINUTE, reason: 'missing' });
  t.same(chooseInterval(policy, { events: 1000, share: 0.9 }, 60 * MINUTE), { intervalMs: BASE, reason: 'missing' });
  t.same(chooseInterval(policy, { events: 1000, share: 0 }, 60 * MINUTE), { intervalMs: 30 * MINUTE, reason: 'reliable' });
  t.equal(budgetFloorMs(40, 60), 40_000, '40 calls a cycle at 60 calls a minute: every 40 s at most');
});

t.test('sources sharing a token split its budget share: the planned spend of shortened intervals stays within it', async (t) => {
  const { sql, url } = await freshDatabase(t);
  // PROVIDER_CALLS_PER_MINUTE 120 × POLL_BUDGET_SHARE 0.5 = 60 calls a minute for the polls of one token.
  const config = testConfig(url, { POLL_TRUST_MIN_EVENTS: '10' });
  t.equal(config.pollBudgetShare, 0.5);
  for (const [id, token] of [['a1', 'pat_shared'], ['a2', 'pat_shared'], ['a3', 'pat_shared'], ['solo', 'pat_solo'], ['new', 'pat_new']]) {
    await insertSource(sql, testKeys, { id, name: id, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', apiToken: token });
  }
  // Every source's webhooks miss half the changes today; 'new' has too few events to judge.
  await sql`
    insert into source_trust_days (source_id, day, webhook_applied, catches)
    select id, (now() at time zone 'UTC')::date, case when id = 'new' then 2 else 500 end, case when id = 'new' then 2 else 500 end
      from sources`;
  // Each stream of a1..a3 cost 10 calls a run, of solo 2: cost per cycle 40 and 8 calls.
  await sql`
    insert into poll_runs (source_id, stream, started_at, finished_at, duration_ms, calls, outcome)
    select s.id, st, now() - interval '1 minute', now(), 10, case when s.id = 'solo' then 2 else 10 end, 'ok'
      from sources s cross join unnest(array['orders', 'transactions', 'timelines', 'returns']) st
     where s.id <> 'new'`;
  const planned = await planPollIntervals(sql, config);
  const by = Object.fromEntries(planned.map((p) => [p.sourceId, p]));
  t.same(
    planned.map((p) => [p.sourceId, p.reason, p.budgetSharers, p.callsPerCycle]),
    [
      ['a1', 'missing', 3, 40],
      ['a2', 'missing', 3, 40],
      ['a3', 'missing', 3, 40],
      ['new', 'too_few_events', 1, 4 * ASSUMED_CALLS_PER_RUN],
      ['solo', 'missing', 1, 8],
    ],
  );
  // A third of 60 calls a minute each: 40 calls every 2 min (+ the 5 s the schedule may start early).
  t.equal(by.a1.intervalMs, 2 * MINUTE + 5000, 'the shared token holds its sources back to its budget share');
  t.equal(by.solo.intervalMs, MINUTE, 'a source alone on its token reaches the min (8 calls a cycle fit)');
  t.equal(by.new.intervalMs, BASE, 'too few events: the base holds');
  const spend = ['a1', 'a2', 'a3'].reduce((n, id) => n + by[id].callsPerCycle / ((by[id].intervalMs - 5000) / MINUTE), 0);
  t.ok(spend <= 60, `the shared token's polls plan ${spend.toFixed(1)} calls a minute, at most 60`);
  const rows = await sql`select source_id, interval_ms, reason, events from poll_intervals order by source_id`;
  t.same(
    rows.map((r) => [r.source_id, r.interval_ms, r.reason, Number(r.events)]),
    planned.map((p) => [p.sourceId, p.intervalMs, p.reason, p.events]),
    'recorded for the schedule and ops status',
  );
  await sql`update sources set enabled = false where id = 'new'`;
  await planPollIntervals(sql, config);
  const [gone] = await sql`select count(*)::int as n from poll_intervals where source_id = 'new'`;
  t.equal(gone.n, 0, 'a source no longer polled loses its row');
});

t.test('through the service: dropped webhooks give a high share and a shorter interval, reliable ones a longer one', async (t) => {
  const startedAt = Date.now();
  const { world, sql, db, config } = await pollSetup(
    t,
    // The world starts now, so its changes fall on today's UTC day and after the sources' creation (set below).
    { worldOptions: { seed: 61, clients: 2, ordersPerClient: 20, start: startedAt }, rateLimit: false },
    { POLL_TRUST_MIN_EVENTS: '20', METRICS_GAUGE_INTERVAL_MS: '3600000' },
  );
  const { url } = db;
  // The sources exist from just before the world's start: its history (backfilled by the first polls) predates them.
  await sql`update sources set created_at = ${new Date(startedAt - 1000)}`;
  await sampleOpsMetrics(sql, { now: new Date(), retentionDays: 7 }); // the window the counts below start from

  const taskList = buildTaskList({ config, db, now: () => new Date(world.now()) });
  const schedule = async () => {
    await sql`select graphile_worker.add_job('poll_schedule')`;
    await runOnce({ connectionString: url, taskList: { poll_schedule: taskList.poll_schedule }, logger: quiet });
  };
  /** A real worker runs the queued polls (which wake the drain) until nothing is queued or pending. */
  const runPolls = async () => {
    const runner = await run({ connectionString: url, taskList, logger: quiet, concurrency: 2, noHandleSignals: true });
    try {
      await waitFor(
        async () => {
          const [q] = await sql`select count(*)::int as n from graphile_worker.jobs`;
          const [p] = await sql`select count(*)::int as n from inbox_events where status = 'pending'`;
          return q.n === 0 && p.n === 0 ? true : undefined;
        },
        'the polls to run and their events to be applied',
        60_000,
        50,
      );
    } finally {
      await runner.stop();
    }
  };

  // As a source starts: the first schedule (no figures yet: the base interval) and the first polls, a backfill.
  await schedule();
  const first = await sql`select source_id, interval_ms, reason from poll_intervals order by source_id`;
  t.same(
    first.map((r) => [r.source_id, r.interval_ms, r.reason]),
    [['c1', BASE, 'too_few_events'], ['c2', BASE, 'too_few_events']],
    'before any count, the base interval holds',
  );
  await runPolls();
  const [backfill] = await sql`select coalesce(sum(catches), 0)::int as n from poll_cursors`;
  const [counted] = await sql`select coalesce(sum(catches), 0)::int as n from source_trust_days`;
  t.ok(backfill.n > 0, `the backfill of history counts ${backfill.n} catches on the cursors, as before`);
  t.equal(counted.n, 0, 'but none for trust: those changes predate the sources');

  // Then webhooks: client 1 loses four in ten, client 2 none.
  const app = await buildApp({ config, db });
  t.teardown(() => app.close());
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const sender = (dropRate: number) =>
    createWebhookSender({
      target: (clientId) => `${base}/webhooks/shipbob/c${clientId}`,
      secretFor: (clientId) => [world.clients[clientId - 1].secret],
      dropRate,
      duplicateRate: 0.05,
      reorderWindow: 8,
      seed: 7,
    });
  const lossy = sender(0.4);
  const reliable = sender(0);
  for (let i = 0; i < 4; i++) {
    const changes = world.step({ newOrders: 8, updates: 30, billing: 6, durationMs: 15_000 });
    lossy.enqueue(changes.filter((c) => c.clientId === 1));
    reliable.enqueue(changes.filter((c) => c.clientId === 2));
  }
  await Promise.all([lossy.drain(), reliable.drain()]);
  t.ok(lossy.stats.dropped > 10, `${lossy.stats.dropped} of client 1's webhooks never sent`);
  t.equal(reliable.stats.dropped, 0);
  t.equal(lossy.stats.failed + reliable.stats.failed, 0, 'every sent webhook was accepted');
  await drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });

  // The next poll cycle (made due by moving the last runs back past the base interval).
  world.advance(MINUTE);
  await sql`update poll_cursors set last_run_at = now() - interval '6 minutes'`;
  await schedule();
  await runPolls();

  // The ops sampler adds the applied events (the next minute's sample covers everything processed so far).
  await sampleOpsMetrics(sql, { now: new Date(Date.now() + MINUTE), retentionDays: 7 });
  const days = await sql<{ source_id: string; webhook: number; catches: number }[]>`
    select source_id, sum(webhook_applied)::int as webhook, sum(catches)::int as catches
      from source_trust_days group by source_id order by source_id`;
  const trust = Object.fromEntries(days.map((d) => [d.source_id, d]));
  t.ok(trust.c1.catches > 0 && trust.c1.catches <= lossy.stats.dropped, `client 1: ${trust.c1.catches} catches, at most one per dropped webhook`);
  const share1 = trust.c1.catches / (trust.c1.webhook + trust.c1.catches);
  t.ok(share1 > config.pollTrustMissShare, `client 1's share ${(share1 * 100).toFixed(1)}% is above POLL_TRUST_MISS_SHARE`);
  t.equal(trust.c2.catches, 0, 'client 2: no catches (its history predates the source, its webhooks all came)');
  t.ok(trust.c2.webhook >= config.pollTrustMinEvents, `client 2: ${trust.c2.webhook} webhook events, enough to judge`);

  // The next schedule chooses the intervals from those figures.
  await schedule();
  const chosen = Object.fromEntries(
    (await sql`select source_id, interval_ms, reason, share from poll_intervals`).map((r) => [r.source_id, r]),
  );
  t.equal(chosen.c1.reason, 'missing');
  t.ok(chosen.c1.interval_ms < BASE && chosen.c1.interval_ms >= config.pollIntervalMinMs, `client 1 polled every ${chosen.c1.interval_ms} ms`);
  t.equal(chosen.c1.share, share1, 'the share recorded is the measured one');
  t.same([chosen.c2.reason, chosen.c2.interval_ms], ['reliable', config.pollIntervalMaxMs], 'client 2 polled at the max');

  // The schedule polls each source at its own interval.
  const dueAfter = async (ago: string) => {
    await sql`update poll_cursors set last_run_at = now() - ${ago}::interval`;
    const due = await listDuePollStreams(sql, { intervalMs: config.pollIntervalMs });
    return [...new Set(due.map((d) => d.sourceId))];
  };
  t.same(await dueAfter('2 minutes'), ['c1'], 'two minutes after the last runs: client 1 only');
  t.same(await dueAfter('10 minutes'), ['c1'], 'past the base interval: client 2 still waits');
  t.same(await dueAfter('31 minutes'), ['c1', 'c2'], 'past the max: both');

  // /metrics: the share per source and window, and the interval.
  const gaugeDb = createDb({ url, max: 1 });
  const gauges = startGaugeRefresher({ sql: gaugeDb.sql, config, pools: {} });
  const metricsApp = await buildMetricsApp(config);
  t.teardown(async () => {
    await metricsApp.close();
    await gauges.stop();
    await gaugeDb.close(1);
  });
  await gauges.refresh();
  const body = (await metricsApp.inject({ method: 'GET', url: '/metrics' })).body;
  const value = (re: RegExp) => Number(body.match(re)?.[1]);
  t.equal(value(/^wharf_webhook_miss_share\{source="c1",window="recent"\} (\S+)$/m), share1, 'client 1 share on /metrics');
  t.equal(value(/^wharf_webhook_miss_share\{source="c2",window="recent"\} (\S+)$/m), 0, 'client 2 share on /metrics');
  t.equal(value(/^wharf_poll_interval_seconds\{source="c1",reason="missing"\} (\S+)$/m), chosen.c1.interval_ms / 1000);
  t.equal(value(/^wharf_poll_interval_seconds\{source="c2",reason="reliable"\} (\S+)$/m), config.pollIntervalMaxMs / 1000);
  t.match(body, /^wharf_webhook_trust_events\{source="c1",window="recent"\} \d+$/m);

  // ops status, as JSON and as text.
  const j = await runOpsCli(url, ['status', '--json']);
  t.equal(j.code, 0, j.stderr);
  const status = JSON.parse(j.stdout).trust as { sourceId: string; recent: { share: number }; interval: { ms: number; reason: string } }[];
  const mine = Object.fromEntries(status.map((s) => [s.sourceId, s]));
  t.same([mine.c1.recent.share, mine.c1.interval.ms, mine.c1.interval.reason], [share1, chosen.c1.interval_ms, 'missing']);
  t.same([mine.c2.recent.share, mine.c2.interval.ms, mine.c2.interval.reason], [0, config.pollIntervalMaxMs, 'reliable']);
  const text = await runOpsCli(url, ['status']);
  t.equal(text.code, 0, text.stderr);
  const line = (name: string) => text.stdout.split('\n').find((l) => l.startsWith(`${name} `) && /missing|reliable/.test(l)) ?? '';
  t.match(line(world.clients[0].name), `${(share1 * 100).toFixed(2)}%`, 'the text status shows client 1 share');
  t.match(line(world.clients[0].name), /missing/);
  t.match(line(world.clients[1].name), /0\.00%.*30m 0s\s+reliable/, 'and client 2 at 0% polled every 30 min');
});
