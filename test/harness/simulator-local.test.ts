import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { freePort } from '../../src/net.js';
import { projectRoot } from '../../src/paths.js';
import { freshDatabase, TEST_ENCRYPTION_KEY } from '../helper.js';
import { waitFor } from '../wait.js';

// `npm run simulator:local` against a running wharf: it registers its clients as sources and their webhooks land
// and are applied, with no other step.

function start(args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: projectRoot, env: { PATH: process.env.PATH, ...env } });
  child.stdout?.on('data', (c) => (output += c));
  child.stderr?.on('data', (c) => (output += c));
  return { child, output: () => output };
}

async function stop(child: ChildProcess) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

t.test('npm run simulator:local feeds a running wharf: sources registered, webhooks applied', async (t) => {
  const db = await freshDatabase(t);
  const [port, metricsPort, simPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const env = { DATABASE_URL: db.url, WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, PORT: String(port), METRICS_PORT: String(metricsPort), HOST: '127.0.0.1', LOG_LEVEL: 'warn', PUBLIC_URL: `http://127.0.0.1:${port}` };
  const wharf = start([path.join('src', 'main.ts'), 'all'], { ...env, PROVIDER_BASE_URL: `http://127.0.0.1:${simPort}` });
  t.teardown(() => stop(wharf.child));
  await waitFor(
    async () => {
      if (wharf.child.exitCode !== null) throw new Error(`wharf exited: ${wharf.output()}`);
      return (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok).catch(() => false)) ? true : undefined;
    },
    'wharf listening',
    30_000,
  );
  const sim = start([path.join('scripts', 'simulator-local.ts'), '--port', String(simPort), '--clients', '2', '--orders', '5', '--interval', '200'], env);
  t.teardown(() => stop(sim.child));

  const applied = await waitFor(
    async () => {
      if (sim.child.exitCode !== null) throw new Error(`the simulator exited: ${sim.output()}`);
      const [{ n }] = await db.sql<{ n: number }[]>`
        select count(*)::int as n from inbox_events where source_id like 'sim-c%' and via = 'webhook' and status = 'processed'`;
      return n > 0 ? n : undefined;
    },
    'a simulated webhook applied',
    40_000,
    200,
  );
  t.ok(applied > 0, `${applied} simulated webhooks applied`);
  const sources = await db.sql`select id from sources order by id`;
  t.same(sources.map((s) => s.id), ['sim-c1', 'sim-c2'], 'one source per simulator client');
  t.match(sim.output(), new RegExp(`http://127.0.0.1:${port}/webhooks/shipbob/sim-c1`), 'it prints the webhook URLs');
  const [{ rejected }] = await db.sql<{ rejected: number }[]>`select count(*)::int as rejected from quarantine where reason = 'bad_signature'`;
  t.equal(rejected, 0, 'every signature verified');
});
