import { spawn } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { freePort } from '../../src/net.js';
import { projectRoot } from '../../src/paths.js';
import { freshDatabase } from '../helper.js';

// The web role serves /metrics on the private metrics port only (with its bearer token), never on the public port.

t.test('the web role: /metrics on METRICS_PORT behind the token, none on PORT', async (t) => {
  const { url } = await freshDatabase(t);
  const [port, metricsPort] = [await freePort(), await freePort()];
  const token = 'metrics-token-0123456789';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'src', 'main.ts'), 'web'], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH, DATABASE_URL: url, PORT: String(port), METRICS_PORT: String(metricsPort), METRICS_TOKEN: token, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  });
  let log = '';
  child.stdout.on('data', (c) => (log += c));
  const deadline = Date.now() + 30_000;
  while (!log.includes('wharf metrics on') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  t.ok(log.includes('wharf metrics on'), 'the metrics server started');

  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404, 'nothing on the public port');
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status, 401, 'the token is required');
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(res.status, 200);
  const body = await res.text();
  t.match(body, /^wharf_db_pool_max\{pool="web"\} 10$/m, 'the web pool bound');
  t.match(body, /^wharf_db_pool_max\{pool="metrics"\} 1$/m, 'and the metrics pool of its own');
  t.match(body, /# TYPE wharf_webhook_requests_total counter/, "the web's counters");
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status, 200, 'health on the metrics port too');
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status, 200);
});
