import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { insertSource } from '../../src/intake/sources.js';
import { freePort } from '../../src/net.js';
import { projectRoot } from '../../src/paths.js';
import { freshDatabase, TEST_ENCRYPTION_KEY, testKeys } from '../helper.js';
import { shipmentBody } from '../apply/factory.js';
import { delivery, newSecret } from '../intake/factory.js';
import { waitFor } from '../wait.js';

/**
 * deploy/: the alert rules parse, and every metric they and the dashboard name is one wharf exports, read from the
 * /metrics of a real service (`src/main.ts all` on a fresh database) after one webhook went through it.
 */

const RULES = path.join(projectRoot, 'deploy', 'prometheus', 'wharf-alerts.yml');
const DASHBOARD = path.join(projectRoot, 'deploy', 'grafana', 'wharf-dashboard.json');
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const rules = (): Rule[] => (parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

/** Metric names an expression references (histogram series map to their family). */
function referencedMetrics(expr: string): string[] {
  return [...new Set([...expr.matchAll(/\bwharf_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')))];
}

function dashboardExprs(): string[] {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { targets: { expr: string }[] }[] };
  return d.panels.flatMap((p) => p.targets.map((x) => x.expr));
}

t.test('the alert rules parse, each alert with a runbook line', async (t) => {
  const all = rules();
  const names = all.map((r) => r.alert);
  for (const wanted of [
    'WharfInboxOldestPendingAge',
    'WharfApplyLagP99',
    'WharfDeadLettersRising',
    'WharfPollCursorStale',
    'WharfSubscriptionDisabled',
    'WharfSourceDisabled',
    'WharfProvider429',
    'WharfQuarantineSpike',
    'WharfWorkerHeartbeatMissing',
  ])
    t.ok(names.includes(wanted), `${wanted} is defined`);
  for (const r of all) {
    t.ok(r.expr && typeof r.expr === 'string', `${r.alert} has an expression`);
    t.ok(r.annotations?.runbook && r.annotations.runbook.length > 20, `${r.alert} has a runbook line`);
    t.ok(r.labels?.severity, `${r.alert} has a severity`);
  }
  if (PROMTOOL) {
    const r = spawnSync(PROMTOOL, ['check', 'rules', RULES], { encoding: 'utf8' });
    t.equal(r.status, 0, `promtool check rules: ${r.stdout}${r.stderr}`);
    t.match(r.stdout, new RegExp(`SUCCESS: ${all.length} rules found`), 'promtool found every rule');
  } else {
    t.comment('promtool not installed (apt-get install prometheus; .ci/run does): checked by YAML parse and structure only');
  }
});

t.test('every metric the alert rules and the dashboard reference is exported by a running wharf', async (t) => {
  const db = await freshDatabase(t);
  const secret = newSecret();
  // A source with an API token: its streams are polled, so each exports a cursor age although none has polled yet.
  const sourceId = await insertSource(db.sql, testKeys, { name: 'acme', secret, apiToken: 'token-never-used', clientId: null });
  const [port, metricsPort, closed] = await Promise.all([freePort(), freePort(), freePort()]);
  let stderr = '';
  const service = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'src', 'main.ts'), 'all'], {
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: db.url,
      WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      // The database gauges are read on a timer: often, so the scrape sees the worker that started after the first read.
      METRICS_GAUGE_INTERVAL_MS: '200',
      // Nothing listens there: a poll that runs fails fast instead of reaching out.
      PROVIDER_BASE_URL: `http://127.0.0.1:${closed}`,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  service.stderr?.on('data', (c) => (stderr += c));
  const exited = new Promise((resolve) => service.once('exit', resolve));
  t.teardown(async () => {
    if (service.exitCode === null) {
      service.kill('SIGTERM');
      await exited;
    }
  });
  // A check that throws ends the wait: the service died.
  const alive = () => {
    if (service.exitCode !== null) throw new Error(`the service exited (${service.exitCode}): ${stderr}`);
  };
  await waitFor(
    async () => {
      alive();
      return (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok).catch(() => false)) ? true : undefined;
    },
    'the web role',
    30_000,
  );

  const d = delivery(secret, { topic: 'order.shipment.delivered', payload: shipmentBody(4242, 1) });
  const res = await fetch(`http://127.0.0.1:${port}/webhooks/shipbob/${sourceId}`, { method: 'POST', headers: d.headers, body: d.body });
  t.equal(res.status, 200, 'a webhook is stored');
  await waitFor(
    async () => {
      alive();
      const [row] = await db.sql`select status from inbox_events where event_id = ${d.id}`;
      if (row && row.status !== 'pending' && row.status !== 'processed') throw new Error(`the event is ${row.status}`);
      return row?.status === 'processed' ? true : undefined;
    },
    'the event applied',
    30_000,
  );

  // /metrics of the process: on the metrics port when it serves one, else on the web port.
  const scrape = async () => {
    for (const p of [metricsPort, port]) {
      const r = await fetch(`http://127.0.0.1:${p}/metrics`).catch(() => undefined);
      if (r?.ok) return r.text();
    }
    return undefined;
  };
  // The lag is observed when the chunk commits, in the worker: wait until the scrape shows it.
  const text = await waitFor(
    async () => {
      alive();
      const body = await scrape();
      return body && /^wharf_webhook_to_applied_seconds_count [1-9]/m.test(body) ? body : undefined;
    },
    'the lag observed',
    15_000,
  );
  const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  t.ok(exported.size > 20, `the scrape lists ${exported.size} metric families`);

  const fromRules = rules().flatMap((r) => referencedMetrics(r.expr));
  const fromDashboard = dashboardExprs().flatMap(referencedMetrics);
  t.ok(fromRules.length >= 8 && fromDashboard.length >= 20, 'both files name metrics');
  t.same([...new Set(fromRules)].filter((m) => !exported.has(m)), [], 'every metric of the alert rules is exported');
  t.same([...new Set(fromDashboard)].filter((m) => !exported.has(m)), [], 'every metric of the dashboard is exported');

  // The new series carry the figures of what just happened.
  const sample = (re: RegExp) => Number(re.exec(text)?.[1] ?? Number.NaN);
  t.ok(sample(/^wharf_webhook_request_duration_seconds_count\{outcome="stored"\} (\d+)/m) >= 1, 'the request duration of the stored webhook');
  t.ok(sample(/^wharf_drain_phase_duration_seconds_count\{phase="upsert"\} (\d+)/m) >= 1, 'drain phase timings');
  t.ok(sample(/^wharf_drain_phase_duration_seconds_count\{phase="commit"\} (\d+)/m) >= 1, 'including the commit');
  t.ok(sample(/^wharf_source_cache_lookups_total\{result="miss"\} (\d+)/m) >= 1, 'a source cache miss');
  for (const stream of ['orders', 'transactions', 'timelines', 'returns'])
    t.match(text, new RegExp(`^wharf_poll_cursor_age_seconds\\{source="${sourceId}",stream="${stream}"\\} \\d`, 'm'), `cursor age of the never-polled ${stream} stream`);
  t.match(text, /^wharf_db_pool_connections\{pool="[a-z-]+",use="(in_use|idle)"\} \d+/m, 'pool connections by use');
  t.match(text, /^wharf_sources\{state="enabled"\} 1$/m, 'sources by state');
  t.equal(sample(/^wharf_workers_alive (\d+)/m), 1, 'one live worker');
  t.notMatch(text, /token-never-used/, 'no token in the metrics');
  t.comment(stderr.slice(0, 2000));
});
