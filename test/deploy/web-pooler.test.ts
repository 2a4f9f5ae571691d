import { execFileSync, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { freePort } from '../../src/net.js';
import { startWeb } from '../../src/web.js';
import { delivery } from '../intake/factory.js';
import { addSource } from '../intake/factory.js';
import { freshDatabase, testConfig } from '../helper.js';
import { waitFor } from '../wait.js';

/**
 * WEB_DATABASE_URL through PgBouncer in transaction mode (Debian's `pgbouncer`; .ci/run installs it). Each
 * transaction may land on another server connection, so a prepared statement or any session state the web role
 * relied on would break here: concurrent deliveries through a pool of two server connections must all be stored.
 */

const PGBOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => existsSync(p));

/** True once something accepts TCP connections on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

t.test('the web role serves webhooks through PgBouncer in transaction mode (WEB_DATABASE_URL)', { skip: PGBOUNCER ? false : 'pgbouncer is not installed (apt-get install pgbouncer; .ci/run installs it)' }, async (t) => {
  const db = await freshDatabase(t);
  const direct = new URL(db.url);
  const dir = mkdtempSync(path.join(tmpdir(), 'wharf-pgbouncer-'));
  chmodSync(dir, 0o755); // pgbouncer runs as the postgres user when we are root
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  writeFileSync(path.join(dir, 'users.txt'), `"${direct.username}" ""\n`);
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${direct.hostname} port=${direct.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      // Two server connections for a web pool of ten: transactions must share them.
      'default_pool_size = 2',
      'max_client_conn = 100',
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
  );
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot
    ? { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) }
    : {};
  const bouncer = spawn(PGBOUNCER!, [path.join(dir, 'pgbouncer.ini')], { ...ids, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  bouncer.stdout?.on('data', (c) => (output += c));
  bouncer.stderr?.on('data', (c) => (output += c));
  const bouncerExited = new Promise((resolve) => bouncer.once('exit', resolve));
  t.teardown(async () => {
    if (bouncer.exitCode === null) {
      bouncer.kill('SIGTERM');
      await bouncerExited;
    }
  });
  await waitFor(
    async () => {
      if (bouncer.exitCode !== null) throw new Error(`pgbouncer exited (${bouncer.exitCode}): ${output}`);
      return (await accepts(port)) ? true : undefined;
    },
    'pgbouncer listening',
    10_000,
  );

  const pooled = new URL(db.url);
  pooled.port = String(port);
  const config = testConfig(db.url, { WEB_DATABASE_URL: pooled.toString(), DB_POOL_MAX: '10', HOST: '127.0.0.1' });
  t.equal(config.webDatabaseUrl, pooled.toString(), 'WEB_DATABASE_URL is read');
  const source = await addSource(db.sql);
  const web = await startWeb(config, config.webDatabaseUrl!);
  t.teardown(() => web.stop(Date.now() + 5000));

  const ready = await fetch(`${web.url}/readyz`);
  t.equal(ready.status, 200, '/readyz answers 200 through the pooler');

  const deliveries = Array.from({ length: 60 }, () => delivery(source.secret));
  const answers = await Promise.all(
    deliveries.map((d) =>
      fetch(`${web.url}/webhooks/shipbob/${source.id}`, { method: 'POST', headers: d.headers, body: d.body }).then(async (r) => ({
        status: r.status,
        body: await r.text(),
      })),
    ),
  );
  t.same(
    answers.filter((a) => a.status !== 200),
    [],
    'every delivery is acknowledged (no "prepared statement does not exist", no lost session state)',
  );
  // The same ids again: answered from the stored rows (the duplicate path's queries through the pooler too).
  const again = await Promise.all(
    deliveries.slice(0, 10).map((d) =>
      fetch(`${web.url}/webhooks/shipbob/${source.id}`, { method: 'POST', headers: d.headers, body: d.body }).then((r) => r.json()),
    ),
  );
  t.same(again, deliveries.slice(0, 10).map(() => ({ status: 'duplicate' })), 'duplicates are recognised through the pooler');
  const [{ count }] = await db.sql<{ count: number }[]>`select count(*)::int as count from inbox_events where source_id = ${source.id}`;
  t.equal(count, 60, 'every event is stored once, on the real database');

  // Proof that the traffic went through PgBouncer: without it the web role cannot reach its database.
  bouncer.kill('SIGTERM');
  await bouncerExited;
  // /readyz asks the database at most once a second: wait for a fresh answer.
  const down = await waitFor(
    async () => {
      const r = await fetch(`${web.url}/readyz`);
      return r.status === 503 ? r.status : undefined;
    },
    '/readyz to see the pooler gone',
    10_000,
    100,
  );
  t.equal(down, 503, 'with PgBouncer stopped, /readyz answers 503');
});
