import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import t from 'tap';
import { freePort } from '../../src/net.js';
import { projectRoot } from '../../src/paths.js';
import { freshDatabase, TEST_ENCRYPTION_KEY } from '../helper.js';
import { waitFor } from '../wait.js';
import { populateOpsState, REASON_APPLY } from './page-fixture.js';

/**
 * The ops page in a real browser (Debian's chromium driven by playwright-core) against the real service (`wharf web`,
 * which serves the page on its private METRICS_PORT) on a real database holding a populated state. Screenshots go to
 * .artifacts/ (git-ignored). Skipped, saying so, only on a developer machine without chromium; CI installs it
 * (.ci/run) and fails here without it.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(projectRoot, '.artifacts');
const absent = !existsSync(CHROMIUM);
if (absent && process.env.CI) throw new Error(`chromium is not installed at ${CHROMIUM}: .ci/run installs it (apt-get install chromium)`);

t.setTimeout(180_000);

async function startService(url: string, metricsPort: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'src', 'main.ts'), 'web'], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH, DATABASE_URL: url, PORT: String(await freePort()), METRICS_PORT: String(metricsPort), LOG_LEVEL: 'warn', WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

t.test('the ops page in chromium shows the database’s numbers (reconciliation included), draws its charts, opens a dead letter and replays a group after confirming', { skip: absent ? `chromium not found at ${CHROMIUM} (apt-get install chromium): browser test skipped` : false }, async (t) => {
  const { sql, url } = await freshDatabase(t);
  const f = await populateOpsState(sql);
  const metricsPort = await freePort();
  const service = await startService(url, metricsPort);
  t.teardown(() => {
    if (service.exitCode === null) service.kill('SIGTERM');
  });
  const base = `http://127.0.0.1:${metricsPort}`;
  await waitFor(() => fetch(`${base}/healthz`).then((r) => (r.ok ? true : undefined), () => undefined), 'the service’s metrics port', 60_000, 200);

  mkdirSync(ARTIFACTS, { recursive: true });
  const profile = mkdtempSync(path.join(tmpdir(), 'wharf-chromium-'));
  chmodSync(profile, 0o755);
  t.teardown(() => rmSync(profile, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  t.teardown(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await page.goto(`${base}/`);
  await page.waitForSelector('#chart-depth canvas');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ops-page.png'), fullPage: true });

  // The numbers shown equal the database's.
  const text = (sel: string) => page.locator(sel).first().innerText();
  const [db] = await sql<{ pending: number; dead: number }[]>`
    select count(*) filter (where status = 'pending')::int as pending, count(*) filter (where status = 'dead')::int as dead from inbox_events`;
  t.equal(await text('[data-k="pending"]'), String(db.pending), `pending shown = ${db.pending}`);
  t.equal(await text('[data-k="dead-total"]'), String(db.dead), `dead shown = ${db.dead}`);
  const expected = await sql<{ id: string; webhook: number; dead: number; rejected: number; lastWebhook: Date | null }[]>`
    select s.id,
           (select count(*)::int from inbox_events e where e.source_id = s.id and e.via = 'webhook' and e.received_at > now() - interval '24 hours') as webhook,
           (select count(*)::int from inbox_events e where e.source_id = s.id and e.status = 'dead') as dead,
           (select coalesce(sum(count), 0)::int from quarantine_counts q
             where q.source_id = s.id and q.bucket >= date_trunc('hour', now() - interval '24 hours')) as rejected,
           (select max(received_at) from inbox_events e where e.source_id = s.id and e.via = 'webhook') as "lastWebhook"
      from sources s order by s.name`;
  const [catches] = await sql<{ n: number }[]>`select sum(catches)::int as n from poll_cursors where source_id = ${f.sources.globex}`;
  for (const e of expected) {
    const row = page.locator(`tr[data-source="${e.id}"]`);
    const cell = (k: string) => row.locator(`[data-k="${k}"]`).innerText();
    t.equal(await cell('webhook-24h'), String(e.webhook), `${e.id}: webhook events 24 h`);
    t.equal(await cell('dead'), String(e.dead), `${e.id}: dead letters`);
    t.equal(await cell('rejected-24h'), String(e.rejected), `${e.id}: rejected 24 h`);
    const shown = await row.locator('[data-k="last-webhook"] time').getAttribute('datetime').catch(() => null);
    t.equal(shown, e.lastWebhook?.toISOString() ?? null, `${e.id}: last webhook`);
  }
  const globex = page.locator(`tr[data-source="${f.sources.globex}"]`);
  t.equal(await globex.locator('[data-k="catches-24h"]').innerText(), String(catches.n), 'globex: poll catches');
  t.equal(await globex.locator('[data-k="catch-share"]').innerText(), `${((catches.n / (catches.n + 7)) * 100).toFixed(1)}%`, 'globex: catch share');
  const groups = await sql<{ n: number }[]>`select count(*)::int as n from inbox_events where status = 'dead' group by last_error order by 1 desc`;
  t.same(await page.locator('[data-k="group-count"]').allInnerTexts(), groups.map((g) => String(g.n)), 'dead-letter groups and their counts');

  // Reconciliation: per source, the newest reconciled window and the windows still short, as the database holds them.
  const windows = await sql<{ sourceId: string; newest: Date | null; short: number; first: Date | null; provider: number | null; wharf: number | null }[]>`
    select source_id as "sourceId", max(window_end) filter (where state = 'reconciled') as newest,
           count(*) filter (where state = 'short')::int as short,
           min(window_start) filter (where state = 'short') as first,
           min(provider_count) filter (where state = 'short') as provider, min(wharf_count) filter (where state = 'short') as wharf
      from reconcile_windows where stream = 'orders' group by source_id`;
  t.equal(windows.length, 2, 'two sources have windows');
  for (const w of windows) {
    const row = page.locator(`tr[data-reconcile="${w.sourceId}:orders"]`);
    t.equal(await row.locator('[data-k="reconcile-newest"] time').first().getAttribute('datetime'), w.newest?.toISOString() ?? null, `${w.sourceId}: newest reconciled window`);
    t.equal(await row.locator('[data-k="reconcile-short"]').innerText(), String(w.short), `${w.sourceId}: windows short`);
    const shown = await row.locator('[data-k="reconcile-short-windows"] [data-window]').allInnerTexts();
    t.same(shown, w.first ? [`${w.first.toISOString().slice(0, 10)} (${w.provider} / ${w.wharf})`] : [], `${w.sourceId}: the short window, provider / wharf`);
  }
  t.equal(await page.locator(`tr[data-reconcile^="${f.sources.initech}:"]`).count(), 0, 'a source never reconciled has no row');

  // Each chart renders: a canvas with drawn pixels.
  for (const id of ['chart-depth', 'chart-lag', 'chart-applied']) {
    const drawn = await page.evaluate((chartId) => {
      const canvas = document.querySelector(`#${chartId} canvas`) as HTMLCanvasElement | null;
      if (!canvas || canvas.width === 0) return 0;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
      return n;
    }, id);
    t.ok(drawn > 500, `${id} draws (${drawn} painted pixels)`);
  }

  // A dead letter's detail opens.
  const group = page.locator('#dead-groups tr', { hasText: 'simulated <b>bug</b>' });
  await group.locator('summary').click();
  await group.locator('a[data-dead-id]').first().click();
  await page.waitForSelector('#dead-letter');
  t.match(await text('#error'), REASON_APPLY, 'the error');
  t.match(await text('#headers'), 'ShipBob-Webhooks/1.0', 'the headers');
  t.match(await text('#body'), /^\{"id":\d+,"status":"Processing"/, 'the raw body, as stored');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ops-dead-letter.png'), fullPage: true });

  // The replay asks for confirmation, then replays.
  await page.goto(`${base}/`);
  await page.locator('#dead-groups tr', { hasText: 'simulated <b>bug</b>' }).locator('button', { hasText: 'Replay' }).click();
  await page.waitForSelector('#plan');
  t.equal(await text('[data-k="plan-total"]'), '2', 'the plan: 2 events');
  const [before] = await sql<{ n: number }[]>`select count(*)::int as n from inbox_events where last_error = ${REASON_APPLY} and status = 'dead'`;
  t.equal(before.n, 2, 'nothing replayed before confirming');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ops-replay-confirm.png'), fullPage: true });
  await page.locator('#confirm').click();
  await page.waitForSelector('#done');
  t.equal(await text('[data-k="requeued"]'), '2', 'requeued 2');
  const after = await sql<{ status: string; via: string }[]>`select status, via from inbox_events where last_error = ${REASON_APPLY}`;
  t.same(after, [{ status: 'pending', via: 'replay' }, { status: 'pending', via: 'replay' }], 'the group is pending again, via replay');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ops-replay-done.png'), fullPage: true });
  t.same(errors, [], 'no script error on the page');
});
