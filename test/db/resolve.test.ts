import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { loadConfig } from '../../src/config.js';
import { embeddedStateFile, findRunningDatabase, resolveDatabase } from '../../src/db/resolve.js';
import { freePort } from '../../src/net.js';
import { freshDatabase } from '../helper.js';
import { runOpsCli } from '../ops/run-ops.js';

function tempDir(t: Test) {
  const dir = mkdtempSync(path.join(tmpdir(), 'wharf-resolve-'));
  chmodSync(dir, 0o755); // the embedded server runs as `postgres` when we are root
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a running npm start records its embedded server; ops find it there, and nothing once it stopped', async (t) => {
  const dir = tempDir(t);
  const config = loadConfig({ EMBEDDED_PG_DIR: path.join(dir, 'pg'), EMBEDDED_PG_PORT: String(await freePort()) });
  const file = embeddedStateFile(config);
  await t.rejects(findRunningDatabase(config), { code: 'no_database' }, 'before npm start: no database, no server started');
  t.notOk(existsSync(path.join(dir, 'pg')), 'and no data directory created');

  const service = await resolveDatabase(config, () => {});
  t.teardown(() => service.stop());
  t.ok(existsSync(file), 'the service writes its state file');
  t.equal(JSON.parse(readFileSync(file, 'utf8')).pid, process.pid, 'with its pid');
  t.same(await findRunningDatabase(config), { url: service.url, embedded: true }, 'ops connect to that server');

  await service.stop();
  t.notOk(existsSync(file), 'stopping removes the state file');
  await t.rejects(findRunningDatabase(config), { code: 'no_database' }, 'and ops find no database again');
});

t.test('ops without DATABASE_URL and without a running npm start exit 1 and create nothing', async (t) => {
  const dir = tempDir(t);
  const r = await runOpsCli('', ['status', '--json'], { EMBEDDED_PG_DIR: path.join(dir, 'pg'), EMBEDDED_PG_PORT: String(await freePort()) });
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, /no database: DATABASE_URL is unset/);
  t.match(r.stderr, /set DATABASE_URL/);
  t.same(JSON.parse(r.stdout).error, 'no_database', 'stdout: one JSON document saying so');
  t.notOk(existsSync(path.join(dir, 'pg')), 'no embedded cluster was created');
});

t.test('ops use the server a state file records, and refuse a stale one', async (t) => {
  const db = await freshDatabase(t);
  const dir = tempDir(t);
  const env = { EMBEDDED_PG_DIR: path.join(dir, 'pg') };
  const file = embeddedStateFile(loadConfig(env));
  const port = Number(new URL(db.url).port);
  writeFileSync(file, JSON.stringify({ url: db.url, port, dataDir: path.join(dir, 'pg'), pid: process.pid, startedAt: new Date().toISOString() }));
  const ok = await runOpsCli('', ['status', '--json'], env);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(JSON.parse(ok.stdout).inbox.pending, 0, 'status read the recorded server');

  const dead = await freePort();
  writeFileSync(file, JSON.stringify({ url: db.url.replace(`:${port}/`, `:${dead}/`), port: dead, dataDir: '', pid: 1, startedAt: '' }));
  const stale = await runOpsCli('', ['status'], env);
  t.equal(stale.code, 1);
  t.match(stale.stderr, /is not running/);
});
