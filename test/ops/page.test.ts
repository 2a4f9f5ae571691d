import Fastify from 'fastify';
import type { Test } from 'tap';
import t from 'tap';
import { opsPageRoutes } from '../../src/ops/page/routes.js';
import { readOpsPage } from '../../src/ops/page/queries.js';
import { freshDatabase, testConfig } from '../helper.js';
import { populateOpsState, REASON_APPLY, REASON_NOT_OBJECT } from './page-fixture.js';

async function pageApp(t: Test, sql: import('../../src/db/client.js').Sql, url: string, env: Record<string, string> = {}, now?: Date) {
  const app = Fastify({ logger: false });
  const logged: Record<string, unknown>[] = [];
  await app.register(opsPageRoutes, { sql, config: testConfig(url, env), now: now && (() => now), log: (f) => logged.push(f) });
  t.teardown(() => app.close());
  return { app, logged };
}

const token = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

t.test('the overview shows the database’s figures for a populated state', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const f = await populateOpsState(sql);
  const d = await readOpsPage(sql, { now: f.now, staleAfterMs: 60_000 });
  t.same(d.inbox, { pending: 3, pendingCapped: false, oldestPendingAgeS: d.inbox.oldestPendingAgeS, dead: 7, deadCapped: false }, 'inbox figures');
  const by = Object.fromEntries(d.sources.map((s) => [s.name, s]));
  t.equal(by.acme.webhookEvents24h, 47, 'acme: every webhook event of the last minute');
  t.equal(by.globex.webhookEvents24h, 7);
  t.equal(by.globex.pollEvents24h, 13);
  t.equal(by.acme.catches24h, 1, 'catches since the first sample');
  t.equal(by.globex.catches24h, 10);
  t.equal(by.globex.catchShare24h, 10 / 17, 'globex: catches / (webhook events + catches)');
  t.equal(by.initech.catchShare24h, null, 'initech: nothing arrived');
  t.equal(by.acme.deadLetters, 4);
  t.equal(by.globex.deadLetters, 3);
  t.equal(by.acme.rejected24h, 3, 'rejected in 24 h (the 3-day-old one is not)');
  t.equal(by.globex.rejected24h, 1);
  const [lastWebhook] = await sql<{ at: Date }[]>`select max(received_at) as at from inbox_events where source_id = ${f.sources.acme} and via = 'webhook'`;
  t.same(by.acme.lastWebhookAt, lastWebhook.at, 'last webhook');
  t.same(by.globex.lastPollAt, new Date(Math.floor(f.now.getTime() / 60_000) * 60_000 - 60_000), 'last poll: the newest cursor run');
  t.equal(by.initech.subscription, 'not checked yet', 'subscription state: no check recorded for this source');
  t.equal(by.globex.subscription, 'topics_missing (order.delivered)', 'a subscription missing topics');
  t.equal(by.acme.subscription, 'ok');
  t.same(d.deadGroups.map((g) => [g.reason, g.count]), [[REASON_NOT_OBJECT, 4], [REASON_APPLY, 2], [null, 1]], 'dead letters by reason');
  t.equal(d.series.length, 145, '24 h of samples (144 earlier + the one just taken)');
  const latest = d.latest!;
  t.equal(latest.appliedPerMin, 57, 'events applied (marked processed) in the last minute');
  t.ok(latest.lagP50Ms !== null && latest.lagP50Ms >= 100 && latest.lagP50Ms <= 300, `lag p50 ${latest.lagP50Ms}`);
  t.ok(latest.lagP99Ms !== null && latest.lagP99Ms > 3000, `lag p99 ${latest.lagP99Ms} sees globex's slow ones`);
  t.same(d.pollRuns, [], 'no poll run recorded yet: an empty section');
  t.same(d.workers.map((w) => [w.workerId, w.alive]), [['worker-b2', false], ['worker-a1', true]]);
  t.same(d.lockReleases.map((l) => [l.workerId, l.jobs]), [['worker-z9', 2]]);
  const day = Math.floor(f.now.getTime() / 86_400_000) * 86_400_000;
  t.same(
    d.reconcile.map((r) => [r.sourceId, r.stream, r.newestReconciled?.getTime(), r.short.map((w) => [w.windowStart.getTime(), w.providerCount, w.wharfCount])]),
    [
      [f.sources.acme, 'orders', day, []],
      [f.sources.globex, 'orders', day - 86_400_000, [[day - 86_400_000, 40, 38]]],
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    'reconciliation per source: the newest reconciled window end and the windows still short',
  );

  const { app } = await pageApp(t, sql, url, {}, f.now);
  const res = await app.inject({ method: 'GET', url: '/' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /text\/html/);
  t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/);
  t.match(res.body, /data-k="pending">3</);
  t.match(res.body, /data-k="dead-total">7</);
  t.match(res.body, 'id="poll-runs"');
  const row = (id: string) => new RegExp(`<tr data-reconcile="${id}:orders">[\\s\\S]*?</tr>`).exec(res.body)?.[0] ?? '';
  const iso = (ms: number) => new Date(ms).toISOString();
  t.match(row(f.sources.acme), `data-k="reconcile-newest"><time datetime="${iso(day)}">`, 'acme: the newest reconciled window ends today at 00:00 UTC');
  t.match(row(f.sources.acme), 'data-k="reconcile-short">0<', 'acme: nothing short');
  t.match(row(f.sources.globex), `data-k="reconcile-newest"><time datetime="${iso(day - 86_400_000)}">`, 'globex: the newest reconciled window is the day before');
  t.match(row(f.sources.globex), 'data-k="reconcile-short">1<', 'globex: one window short');
  t.match(row(f.sources.globex), `<span data-window="${iso(day - 86_400_000)}">${iso(day - 86_400_000).slice(0, 10)} (40 / 38)</span>`, 'globex: which day, provider / wharf');
  t.notMatch(res.body, `data-reconcile="${f.sources.initech}:`, 'initech: never reconciled, no row');
  t.notMatch(res.body, 'http-equiv="refresh"', 'no reload unless asked');
  t.match((await app.inject({ method: 'GET', url: '/?refresh=1' })).body, '<meta http-equiv="refresh" content="10">', '?refresh: at least 10 s');
  t.match(res.body, 'apply failed: simulated &lt;b&gt;bug&lt;/b&gt; &amp; friends', 'reasons are escaped');
  t.notMatch(res.body, '<b>bug</b>');
  for (const a of ['uplot.iife.min.js', 'uplot.min.css', 'page.js']) {
    const r = await app.inject({ method: 'GET', url: `/assets/${a}` });
    t.equal(r.statusCode, 200, `asset ${a} is served by wharf`);
    t.ok(r.body.length > 100, `${a} has content`);
  }
  t.equal((await app.inject({ method: 'GET', url: '/assets/..%2Fpackage.json' })).statusCode, 404, 'only known assets');
});

t.test('a dead letter opens to its headers, raw body and error', async (t) => {
  const { sql, url } = await freshDatabase(t);
  await populateOpsState(sql);
  const [dead] = await sql<{ id: string }[]>`select id::text from inbox_events where last_error = ${REASON_APPLY} limit 1`;
  const { app } = await pageApp(t, sql, url);
  const res = await app.inject({ method: 'GET', url: `/dead/${dead.id}` });
  t.equal(res.statusCode, 200);
  t.match(res.body, 'ShipBob-Webhooks/1.0', 'headers');
  t.match(res.body, '<pre id="body">{&quot;id&quot;:', 'the raw body, as stored (escaped)');
  t.match(res.body, '&quot;status&quot;: &quot;Processing&quot;', 'and pretty-printed');
  t.match(res.body, 'apply failed: simulated &lt;b&gt;bug&lt;/b&gt;', 'the error');
  const [processed] = await sql<{ id: string }[]>`select id::text from inbox_events where status = 'processed' limit 1`;
  t.equal((await app.inject({ method: 'GET', url: `/dead/${processed.id}` })).statusCode, 404, 'a processed row is not a dead letter');
  t.equal((await app.inject({ method: 'GET', url: '/dead/abc' })).statusCode, 404);
});

t.test('replaying a group: a plan first, then the replay; cross-site and token-less posts are refused', async (t) => {
  const { sql, url } = await freshDatabase(t);
  await populateOpsState(sql);
  const { app, logged } = await pageApp(t, sql, url);
  const page = await app.inject({ method: 'GET', url: '/' });
  const csrf = token(page.body);
  t.ok(csrf, 'the page carries a form token');

  const noToken = await app.inject({ method: 'POST', url: '/replay', headers: FORM, payload: form({ reason: REASON_APPLY }) });
  t.equal(noToken.statusCode, 403, 'no token: refused');
  const forged = await app.inject({ method: 'POST', url: '/replay', headers: FORM, payload: form({ reason: REASON_APPLY, csrf: `${Date.now()}.AAAA` }) });
  t.equal(forged.statusCode, 403, 'a forged token: refused');
  const crossSite = await app.inject({
    method: 'POST',
    url: '/replay',
    headers: { ...FORM, 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' },
    payload: form({ reason: REASON_APPLY, csrf }),
  });
  t.equal(crossSite.statusCode, 403, 'a cross-site post, even with a token: refused');
  const otherOrigin = await app.inject({ method: 'POST', url: '/replay', headers: { ...FORM, origin: 'https://evil.example' }, payload: form({ reason: REASON_APPLY, csrf }) });
  t.equal(otherOrigin.statusCode, 403, 'another origin: refused');
  const [{ n: stillDead }] = await sql<{ n: number }[]>`select count(*)::int as n from inbox_events where last_error = ${REASON_APPLY} and status = 'dead'`;
  t.equal(stillDead, 2, 'nothing was replayed by the refused posts');

  const plan = await app.inject({ method: 'POST', url: '/replay/plan', headers: { ...FORM, 'sec-fetch-site': 'same-origin' }, payload: form({ reason: REASON_APPLY, csrf }) });
  t.equal(plan.statusCode, 200);
  t.match(plan.body, /data-k="plan-total">2</, 'the plan shows how many events');
  const [{ n: afterPlan }] = await sql<{ n: number }[]>`select count(*)::int as n from inbox_events where last_error = ${REASON_APPLY} and status = 'dead'`;
  t.equal(afterPlan, 2, 'the plan writes nothing');

  const stale = await app.inject({
    method: 'POST',
    url: '/replay',
    headers: { ...FORM, 'sec-fetch-site': 'same-origin' },
    payload: form({ reason: REASON_APPLY, csrf: token(plan.body), expected: '1' }),
  });
  t.equal(stale.statusCode, 409, 'a confirmation for another number than the group holds now');
  t.match(stale.body, /id="plan-changed"/, 'shows the new plan to confirm again');
  t.match(stale.body, /data-k="plan-total">2</);
  const done = await app.inject({
    method: 'POST',
    url: '/replay',
    headers: { ...FORM, 'sec-fetch-site': 'same-origin', host: 'ops.local', origin: 'http://ops.local' },
    payload: form({ reason: REASON_APPLY, csrf: token(plan.body), expected: '2' }),
  });
  t.equal(done.statusCode, 200);
  t.match(done.body, /data-k="requeued">2</);
  const rows = await sql<{ status: string; via: string }[]>`select status, via from inbox_events where last_error = ${REASON_APPLY}`;
  t.same(rows, [{ status: 'pending', via: 'replay' }, { status: 'pending', via: 'replay' }], 'the group is pending again, via replay');
  const [{ n: others }] = await sql<{ n: number }[]>`select count(*)::int as n from inbox_events where status = 'dead'`;
  t.equal(others, 5, 'the other groups are untouched');
  const [job] = await sql<{ n: number }[]>`select count(*)::int as n from graphile_worker._private_jobs j join graphile_worker._private_tasks k on k.id = j.task_id where k.identifier = 'drain'`;
  t.equal(job.n, 1, 'the drain was woken');
  t.same(logged.map((l) => [l.action, l.requeued]), [['replay', 2]], 'the replay is recorded');

  const nullGroup = await app.inject({ method: 'POST', url: '/replay', headers: FORM, payload: form({ reason_null: '1', csrf, expected: '1' }) });
  t.match(nullGroup.body, /data-k="requeued">1</, 'the group without a reason replays by itself');
});

t.test('OPS_PASSWORD puts every page route behind basic auth', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const { app } = await pageApp(t, sql, url, { OPS_PASSWORD: 'correct horse' });
  const none = await app.inject({ method: 'GET', url: '/' });
  t.equal(none.statusCode, 401);
  t.match(none.headers['www-authenticate'], /^Basic realm="wharf ops"/);
  const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
  t.equal((await app.inject({ method: 'GET', url: '/', headers: { authorization: basic('ops:wrong') } })).statusCode, 401, 'a wrong password');
  t.equal((await app.inject({ method: 'GET', url: '/assets/page.js' })).statusCode, 401, 'assets too');
  t.equal((await app.inject({ method: 'POST', url: '/replay', headers: FORM, payload: 'reason=x' })).statusCode, 401, 'the replay too');
  t.equal((await app.inject({ method: 'GET', url: '/', headers: { authorization: basic('ops:correct horse') } })).statusCode, 200, 'the password');
});

t.test('poll runs are listed newest first; without quarantine_counts or webhook_subscriptions the page degrades', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const f = await populateOpsState(sql);
  await sql`
    insert into poll_runs (source_id, stream, started_at, finished_at, duration_ms, pages, events, outcome, error)
    values (${f.sources.acme}, 'orders', now(), now(), 1234, 3, 250, 'ok', null),
           (${f.sources.globex}, 'transactions', now(), now(), 80, 0, 0, 'failed', 'provider answered 500')`;

  const d = await readOpsPage(sql, { now: f.now, staleAfterMs: 60_000 });
  t.same(d.has, { pollRuns: true, quarantineCounts: true, subscriptions: true });
  await sql`alter table quarantine_counts rename to quarantine_counts_away`;
  const without = await readOpsPage(sql, { now: f.now, staleAfterMs: 60_000 });
  await sql`alter table quarantine_counts_away rename to quarantine_counts`;
  t.equal(without.sources.find((s) => s.name === 'acme')?.rejected24h, 3, 'without quarantine_counts: counted in quarantine');
  t.same(d.pollRuns?.map((r) => [r.stream, r.outcome]), [['transactions', 'failed'], ['orders', 'ok']], 'newest poll runs first');
  const by = Object.fromEntries(d.sources.map((s) => [s.name, s]));
  t.equal(by.acme.rejected24h, 3, 'rejected requests from quarantine_counts (the 3-day-old bucket is not)');
  await sql`alter table webhook_subscriptions rename to webhook_subscriptions_away`;
  const untracked = await readOpsPage(sql, { now: f.now, staleAfterMs: 60_000 });
  await sql`alter table webhook_subscriptions_away rename to webhook_subscriptions`;
  t.equal(untracked.sources[0].subscription, null, 'without webhook_subscriptions: not tracked');
  const { app } = await pageApp(t, sql, url, {}, f.now);
  const res = await app.inject({ method: 'GET', url: '/' });
  t.match(res.body, 'id="poll-runs"');
  t.match(res.body, 'failed: provider answered 500');
  t.match(res.body, '1.2 s', 'a run’s duration');
});
