import t from 'tap';
import { createDb } from '../../src/db/client.js';
import { insertSource } from '../../src/intake/sources.js';
import { metrics } from '../../src/metrics.js';
import { startGaugeRefresher } from '../../src/ops/metrics-gauges.js';
import { buildMetricsApp } from '../../src/ops/metrics-server.js';
import { readStatus } from '../../src/ops/status.js';
import { freshDatabase, testConfig, testKeys } from '../helper.js';
import { runOpsCli } from './run-ops.js';

t.test('status and /metrics show the figures of a known scenario', async (t) => {
  const db = await freshDatabase(t);
  const { sql, url } = db;
  const sourceId = await insertSource(sql, testKeys, { name: 'acme', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
  // 3 pending (the oldest received 10 minutes ago), 2 dead, 1 ignored, 4 processed.
  await sql`
    insert into inbox_events (source_id, event_id, topic, body, status, received_at)
    select ${sourceId}, 'e' || i, 'order.shipped', '{}', s, now() - (i || ' minutes')::interval
      from unnest(array[10, 5, 1, 2, 3, 4, 6, 7, 8, 9], array['pending', 'pending', 'pending', 'dead', 'dead', 'ignored',
                  'processed', 'processed', 'processed', 'processed']) as u(i, s)`;
  // Quarantine counters: 2 bad signatures an hour ago and this hour, 1 stale timestamp, 5 bad signatures 2 days ago.
  await sql`
    insert into quarantine_counts (source_id, reason, bucket, status_code, count, bytes)
    values (${sourceId}, 'bad_signature', date_trunc('hour', now()), 401, 1, 10),
           (${sourceId}, 'bad_signature', date_trunc('hour', now()) - interval '1 hour', 401, 1, 10),
           (${sourceId}, 'stale_timestamp', date_trunc('hour', now()), 401, 1, 10),
           (${sourceId}, 'bad_signature', date_trunc('hour', now()) - interval '2 days', 401, 5, 50)`;
  await sql`
    insert into poll_cursors (source_id, stream, cursor_time, last_success_at, catches)
    values (${sourceId}, 'orders', now() - interval '1 hour', now() - interval '90 seconds', 7)`;
  await sql`insert into rate_budgets (key, tokens, calls, throttled) values ('budget-1', 100, 50, 3)`;
  await sql`
    insert into worker_heartbeats (worker_id, host, pid, last_seen_at)
    values ('pool-alive', 'h1', 11, now()), ('pool-dead', 'h2', 22, now() - interval '10 minutes')`;
  // Reconciliation: the day before yesterday counted equal, yesterday short (provider 40, wharf 38).
  const today = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  const day = (d: number) => new Date(today - d * 86_400_000);
  await sql`
    insert into reconcile_windows (source_id, stream, window_start, window_end, provider_count, wharf_count, repolled, state, checked_at)
    values (${sourceId}, 'orders', ${day(2)}, ${day(1)}, 12, 12, 0, 'reconciled', now()),
           (${sourceId}, 'orders', ${day(1)}, ${day(0)}, 40, 38, 2, 'short', now())`;

  const s = await readStatus(sql, { staleAfterMs: 60_000 });
  t.same(
    { ...s.inbox, oldestPendingAgeSeconds: undefined },
    { pending: 3, pendingCapped: false, oldestPendingAgeSeconds: undefined, dead: 2, ignored: 1 },
    'inbox figures',
  );
  t.ok(s.inbox.oldestPendingAgeSeconds! >= 600 && s.inbox.oldestPendingAgeSeconds! < 660, 'oldest pending is 10 minutes old');
  t.same(s.quarantine24h, [{ reason: 'bad_signature', count: 2 }, { reason: 'stale_timestamp', count: 1 }], 'quarantine, last 24 h');
  t.equal(s.cursors.length, 1);
  t.equal(s.cursors[0].catches, 7, 'poll catches of the cursor');
  t.ok(s.cursors[0].ageSeconds! >= 90 && s.cursors[0].ageSeconds! < 150, 'cursor age');
  t.same(s.rateBudgets.map((b) => [b.key, b.tokens, b.calls, b.throttled]), [['budget-1', 100, 50, 3]], 'rate budget');
  t.same(s.workers.map((w) => [w.workerId, w.alive]), [['pool-alive', true], ['pool-dead', false]], 'workers');
  t.same(
    s.reconcile.map((r) => [r.sourceId, r.stream, r.newestReconciled?.getTime(), r.short.map((w) => [w.windowStart.getTime(), w.providerCount, w.wharfCount])]),
    [[sourceId, 'orders', day(1).getTime(), [[day(1).getTime(), 40, 38]]]],
    'reconciliation: the newest reconciled window and the one short',
  );

  const cli = await runOpsCli(url, ['status', '--json']);
  t.equal(cli.code, 0, 'ops status --json succeeds');
  const j = JSON.parse(cli.stdout);
  t.equal(j.inbox.pending, 3, 'the CLI reports the same depth');
  t.equal(j.quarantine24h.length, 2);
  const human = await runOpsCli(url, ['status']);
  t.match(human.stdout, /3 pending \(oldest 10m \d+s\), 2 dead, 1 ignored/, 'the human status line');
  t.equal(j.reconcile[0].short.length, 1, 'the CLI reports the short window');
  const line = human.stdout.split('\n').find((l) => l.includes(sourceId) && l.includes(day(1).toISOString()) && l.includes('(40/38)'));
  t.ok(line, 'the reconciliation table: newest reconciled window end, the short window with provider/wharf counts');
  t.match(line, new RegExp(`${day(1).toISOString()}\\s.*\\b1\\b`), 'and how many windows are short');

  metrics.eventsApplied.inc({ topic: 'order.shipped' }, 4);
  // The private metrics server: gauges read by the refresher on its own one-connection pool, served from memory.
  const config = testConfig(url, { METRICS_GAUGE_INTERVAL_MS: '3600000' });
  let queries = 0;
  const gaugeDb = createDb({ url, max: 1, onQuery: () => queries++ });
  const gauges = startGaugeRefresher({ sql: gaugeDb.sql, config, pools: { web: 10 } });
  const app = await buildMetricsApp(config);
  t.teardown(async () => {
    await app.close();
    await gauges.stop();
    await gaugeDb.close(1);
  });
  await gauges.refresh();
  const afterRead = queries;
  t.ok(afterRead > 0, 'the refresher read the database');
  const scrapes = await Promise.all(Array.from({ length: 8 }, () => app.inject({ method: 'GET', url: '/metrics' })));
  t.equal(queries, afterRead, '8 scrapes ran no query');
  const res = scrapes[0];
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /text\/plain/);
  const body = res.body;
  const has = (line: string) => t.ok(body.split('\n').includes(line), line);
  has('wharf_inbox_depth 3');
  has('wharf_inbox_events{status="dead"} 2');
  has('wharf_inbox_events{status="ignored"} 1');
  has('wharf_quarantine_last_24h{reason="bad_signature"} 2');
  has(`wharf_poll_cursor_catches{source="${sourceId}",stream="orders"} 7`);
  has('wharf_rate_budget_throttled{budget="budget-1"} 3');
  has('wharf_workers_alive 1');
  has(`wharf_reconcile_short_windows{source="${sourceId}",stream="orders"} 1`);
  const age = Number(new RegExp(`^wharf_reconcile_newest_age_seconds\\{source="${sourceId}",stream="orders"\\} ([\\d.]+)$`, 'm').exec(body)?.[1]);
  t.ok(age >= 86_400 && age < 2 * 86_400, `wharf_reconcile_newest_age_seconds: the newest reconciled window ended yesterday at midnight (${age} s ago)`);
  has('wharf_status_read_ok 1');
  t.match(body, /^wharf_status_age_seconds 0\.\d+|^wharf_status_age_seconds 0$/m, 'gauges age');
  has('wharf_db_pool_max{pool="web"} 10');
  has('wharf_events_applied_total{topic="order.shipped"} 4');
  t.match(body, /^wharf_inbox_oldest_pending_age_seconds 6\d\d/m, 'oldest pending age gauge');
  for (const name of ['wharf_webhook_requests_total', 'wharf_webhook_duplicates_total', 'wharf_drain_chunk_duration_seconds',
    'wharf_dead_letters_total', 'wharf_poll_catches_total', 'wharf_provider_429_total', 'wharf_db_connections'])
    t.match(body, `# TYPE ${name} `, `${name} is exported`);
});

t.test('the metrics server asks for its bearer token when one is set, and serves health without it', async (t) => {
  const app = await buildMetricsApp(testConfig('postgres://x@127.0.0.1/none', { METRICS_TOKEN: 'tok-0123456789abcdef' }), {
    ready: async () => true,
  });
  t.teardown(() => app.close());
  t.equal((await app.inject('/metrics')).statusCode, 401, 'no token');
  t.equal((await app.inject({ url: '/metrics', headers: { authorization: 'Bearer wrong' } })).statusCode, 401, 'wrong token');
  const ok = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer tok-0123456789abcdef' } });
  t.equal(ok.statusCode, 200, 'right token');
  t.match(ok.body, /# TYPE wharf_webhook_requests_total counter/);
  t.equal((await app.inject('/healthz')).statusCode, 200);
  t.equal((await app.inject('/readyz')).statusCode, 200);
});
