import t from 'tap';
import { CHAOS_DEFAULTS, runChaos } from './chaos/run-chaos.js';

// The chaos run of `npm run test:chaos`, small enough for CI (~2,000 events, 20 s of load): two web and two worker
// processes on their own embedded PostgreSQL (never the test server: it is restarted), SIGKILLed and restarted while
// the simulator's webhooks arrive with drops, duplicates and reordering; then polling catches up.

t.test('after worker and web SIGKILLs and a PostgreSQL restart, wharf equals the world and lost nothing', async (t) => {
  const report = await runChaos({
    ...CHAOS_DEFAULTS,
    seed: 7,
    clients: 2,
    ordersPerClient: 30,
    durationMs: 20_000,
    ordersPerSecond: 8,
    workerKills: 3,
    webKills: 2,
    webProcesses: 2,
    workerProcesses: 2,
    postgresRestarts: 1,
    durable: false,
    databaseUrl: undefined,
    settleTimeoutMs: 60_000,
    log: (line) => t.comment(line),
  });
  const d = report.details;
  t.comment(JSON.stringify(report));
  t.same(report.kills, { worker: 3, web: 2, postgres: 1 }, 'every planned fault happened (kills go round: each process is hit)');
  t.equal(report.web_processes, 2, 'two web processes, deliveries spread over both');
  t.equal(report.worker_processes, 2, 'two worker processes draining and polling at once');
  // postgres.js is patched (patches/postgres+3.4.9.patch): a database restart must not end any process.
  t.equal(report.process_exits_unplanned, 0, `no process exited on its own (${JSON.stringify(d.unexpected_exits)})`);
  t.ok(report.events_acked > 1000, `${report.events_acked} events acknowledged`);
  t.ok(d.webhooks.dropped > 0 && d.inbox.via_poll > 0, `${d.webhooks.dropped} webhooks never sent; polling brought ${d.inbox.via_poll} events`);
  t.ok(d.webhooks.retries > 0, `${d.webhooks.retries} retried deliveries (the web was down for a while)`);
  t.equal(d.webhooks.failed, 0, 'no delivery was given up: retries covered every outage');
  t.equal(report.lost, 0, 'every acknowledged event is in the inbox');
  t.equal(report.applied_twice, 0, 'no event stored twice, no inbox row marked twice');
  t.equal(report.unattributed_attributable, 0, 'every charge the world attributes is attributed');
  t.same(d.first_differences, [], `the database equals the world (${JSON.stringify(d.world)})`);
  t.ok(report.matches_world);
});
