import t from 'tap';
import { DAY, MINUTE } from '../../src/config.js';
import { listPollRuns, prunePollRuns } from '../../src/poll/poll-runs.js';
import { createProviderClient } from '../../src/provider/client.js';
import { pollSettings } from '../../src/poll/context.js';
import { runPollStream } from '../../src/poll/run-stream.js';
import { createRateBudget } from '../../src/provider/rate-budget.js';
import { API_VERSION } from '../../src/provider/shapes.js';
import { metrics, registry } from '../../src/metrics.js';
import { runOpsCli } from '../ops/run-ops.js';
import { pollSetup } from './poll-setup.js';

// poll_runs, the sync-run log: one row per run with its window, pages, events, calls and outcome; `ops polls` lists
// them; retention prunes them. Against the simulator over HTTP.

t.test('each poll run is logged with what it did, a failed one with its error, and ops polls lists them', async (t) => {
  const { world, poll, sql, sim, db, config, now } = await pollSetup(t, { worldOptions: { seed: 11, clients: 1, ordersPerClient: 120 } });
  world.advance(MINUTE);
  const first = await poll(1, 'orders', { settings: { orderPageLimit: 50 } });
  const again = await poll(1, 'orders');

  const runs = await listPollRuns(sql, { sourceId: 'c1', limit: 10 });
  t.equal(runs.length, 2, 'one row per run');
  const [newest, oldest] = runs;
  t.same(
    { outcome: oldest.outcome, stream: oldest.stream, pages: oldest.pages, inserted: oldest.inserted, calls: oldest.calls, error: oldest.error },
    { outcome: 'ok', stream: 'orders', pages: first.pages, inserted: first.inserted, calls: first.calls, error: null },
    'the first run: its pages, new events and HTTP calls',
  );
  t.equal(oldest.windowFrom, null, 'it started from no cursor');
  t.ok(oldest.windowTo instanceof Date, 'and ended at the cursor it committed');
  t.same(newest.windowFrom, oldest.windowTo, 'the next run starts where that one ended');
  t.equal(newest.calls, again.calls, 'an idle run: its one call');
  t.ok(oldest.durationMs >= 0 && oldest.providerMs >= 0, 'durations recorded');

  // A refused token: the run fails, and says why (never the token).
  const client = createProviderClient({
    baseUrl: sim.url,
    version: API_VERSION,
    token: 'not-a-token-of-the-simulator',
    budget: createRateBudget(sql, { token: 'not-a-token-of-the-simulator', callsPerMinute: 6000 }),
    retryBaseMs: 5,
  });
  await t.rejects(runPollStream({ sql, client, sourceId: 'c1', now, settings: pollSettings(config) }, 'transactions'));
  const [failed] = await listPollRuns(sql, { outcome: 'error', limit: 5 });
  t.equal(failed.stream, 'transactions');
  t.match(failed.error, /40[13]/, 'the error is the provider’s refusal');
  t.notMatch(failed.error ?? '', /not-a-token/, 'no token in the log');

  const metricsText = await registry.getSingleMetricAsString('wharf_poll_run_duration_seconds');
  t.match(metricsText, /wharf_poll_run_duration_seconds_count\{stream="orders",outcome="ok"\} [1-9]/, 'the poll run duration metric');
  const calls = await metrics.providerRequests.get();
  t.ok(calls.values.some((v) => v.labels.endpoint === 'GET /order' && v.labels.status === '200' && v.value >= first.calls), 'provider calls by endpoint and status');

  const cli = await runOpsCli(db.url, ['polls', '--source', 'c1', '--json']);
  t.equal(cli.code, 0, cli.stderr);
  const listed = JSON.parse(cli.stdout).runs;
  t.same(listed.map((r: { outcome: string; stream: string }) => [r.stream, r.outcome]), [['transactions', 'error'], ['orders', 'ok'], ['orders', 'ok']], 'ops polls --json, newest first');
  const human = await runOpsCli(db.url, ['polls', '--stream', 'orders']);
  t.equal(human.code, 0);
  t.match(human.stdout, /started\s+source\s+stream\s+outcome/, 'a table for people');
  t.equal(human.stdout.trim().split('\n').length, 3, 'header and the two orders runs');

  // Retention: rows older than POLL_RUN_RETENTION_DAYS go.
  t.equal(await prunePollRuns(sql, { before: new Date(Date.now() - DAY), batchSize: 2 }), 0, 'recent runs are kept');
  t.equal(await prunePollRuns(sql, { before: new Date(Date.now() + DAY), batchSize: 2 }), 3, 'older ones are deleted, in batches');
});
