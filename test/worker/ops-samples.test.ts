import t from 'tap';
import { insertSource } from '../../src/intake/sources.js';
import { crontab } from '../../src/worker/crontab.js';
import { sampleOpsMetrics } from '../../src/worker/ops-samples.js';
import { buildTaskList } from '../../src/worker/task-list.js';
import { freshDatabase, testConfig, testKeys } from '../helper.js';

const MIN = 60_000;

t.test('the sampler writes one row per window, counts what the window applied and received, and is idempotent', async (t) => {
  const { sql } = await freshDatabase(t);
  const src = await insertSource(sql, testKeys, { name: 'acme', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
  const base = Math.floor(Date.now() / MIN) * MIN - 10 * MIN;
  const at = (ms: number) => new Date(base + ms);

  // The first sample (window: the minute before) sees nothing yet.
  const first = await sampleOpsMetrics(sql, { now: at(5_000), retentionDays: 7 });
  t.same(first.at, at(0), 'keyed by the window’s end');
  t.equal(first.windowMs, MIN);

  // Within the next minute: 4 webhook events processed (lags 100-400 ms), 2 polled and processed, 1 pending.
  const rows: [string, string, number | null][] = [
    ['webhook', 'processed', 100], ['webhook', 'processed', 200], ['webhook', 'processed', 300], ['webhook', 'processed', 400],
    ['poll', 'processed', 10], ['poll', 'processed', 10], ['webhook', 'pending', null],
  ];
  for (const [i, [via, status, lag]] of rows.entries()) {
    const received = at(10_000 + i * 1000);
    await sql`
      insert into inbox_events (source_id, event_id, body, via, status, received_at, processed_at)
      values (${src}, ${`e${i}`}, '{}', ${via}, ${status}, ${received}, ${lag === null ? null : new Date(received.getTime() + lag)})`;
  }
  await sql`insert into poll_cursors (source_id, stream, catches) values (${src}, 'orders', 2)`;
  const second = await sampleOpsMetrics(sql, { now: at(MIN + 1_000), retentionDays: 7 });
  t.same(second.at, at(MIN));
  t.equal(second.applied, 6);
  const again = await sampleOpsMetrics(sql, { now: at(MIN + 30_000), retentionDays: 7 });
  t.equal(again.at, null, 'a second run in the same minute writes nothing');

  const [row] = await sql<{ pending: number; applied: number; p50: number; p99: number; lagCount: number }[]>`
    select inbox_pending as pending, applied, lag_p50_ms as p50, lag_p99_ms as p99, lag_count as "lagCount"
      from ops_samples where at = ${at(MIN)}`;
  t.equal(row.pending, 1);
  t.equal(row.applied, 6);
  t.equal(row.lagCount, 4, 'lag counts webhook events only');
  t.equal(row.p50, 250, 'p50 of 100..400 ms');
  t.ok(row.p99 > 390 && row.p99 <= 400, `p99 ${row.p99}`);
  const per = await sql`select webhook_events, poll_events, catches from ops_source_samples where at = ${at(MIN)}`;
  t.same([...per], [{ webhook_events: 5, poll_events: 2, catches: 2 }], 'per-source arrivals and catches');
  const trust = await sql`
    select day::text, webhook_applied::int as webhook, poll_applied::int as poll, catches::int from source_trust_days`;
  t.same(
    [...trust],
    [{ day: at(10_000).toISOString().slice(0, 10), webhook: 4, poll: 2, catches: 0 }],
    'the applied events added to the source’s day (catches come from the drain, not from the sampler)',
  );

  // Two silent minutes are folded into one window; catches count only what is new since the last sample.
  await sql`update poll_cursors set catches = 5`;
  const third = await sampleOpsMetrics(sql, { now: at(3 * MIN + 10), retentionDays: 7 });
  t.equal(third.windowMs, 2 * MIN, 'the window reaches back to the previous sample');
  const per3 = await sql`select webhook_events, catches from ops_source_samples where at = ${at(3 * MIN)}`;
  t.same([...per3], [{ webhook_events: 0, catches: 3 }]);
  const [state] = await sql<{ last: Date }[]>`select last_webhook_at as last from ops_source_state where source_id = ${src}`;
  t.same(state.last, at(16_000), 'the newest webhook is carried in the state');
});

t.test('samples older than the retention are pruned by the sampler; concurrent runs write one row', async (t) => {
  const { sql } = await freshDatabase(t);
  const now = new Date(Math.floor(Date.now() / MIN) * MIN + 1000);
  await sql`
    insert into ops_samples (at, window_ms, inbox_pending, pending_capped, dead, applied, lag_count, max_inbox_id, scan_from_id)
    select ${now}::timestamptz - i * interval '1 day' - interval '1 minute', 60000, 0, false, 0, 0, 0, 0, 0
      from generate_series(1, 9) as i`;
  const results = await Promise.all([1, 2, 3].map(() => sampleOpsMetrics(sql, { now, retentionDays: 7 })));
  t.equal(results.filter((r) => r.at !== null).length, 1, 'one of three concurrent runs samples the minute');
  const [{ n, oldest }] = await sql<{ n: number; oldest: Date }[]>`select count(*)::int as n, min(at) as oldest from ops_samples`;
  t.equal(n, 7, '6 days within the retention + the new sample');
  t.ok(oldest.getTime() >= now.getTime() - 7 * 86_400_000, 'nothing older than 7 days');
});

t.test('the task is registered and scheduled every minute', async (t) => {
  const { sql, url } = await freshDatabase(t);
  t.match(crontab, /^\* \* \* \* \* sample_ops_metrics /m);
  const tasks = buildTaskList({ config: testConfig(url), db: { sql, close: async () => {} }, now: () => new Date() });
  t.type(tasks.sample_ops_metrics, 'function');
  await (tasks.sample_ops_metrics as (p: unknown, h: unknown) => Promise<void>)({}, {});
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from ops_samples`;
  t.equal(n, 1, 'a run writes a sample');
});
