import { createServer, type Socket, connect } from 'node:net';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { createDb } from '../../src/db/client.js';
import { freePort } from '../../src/net.js';
import { createTestDatabase } from '../db.js';
import { testConfig } from '../helper.js';
import { addSource, delivery } from './factory.js';

// 503 within a bounded time when the database is unreachable, and never an acknowledgement for what is not stored.

t.test('nothing listens where the database should be: 503 fast, nothing acknowledged', async (t) => {
  const port = await freePort();
  const url = `postgres://postgres:s3cretpw@127.0.0.1:${port}/nowhere`;
  const config = testConfig(url, { INTAKE_TIMEOUT_MS: '1000', DB_CONNECT_TIMEOUT_MS: '1000' });
  const db = createDb({ url, max: 4, connectTimeoutMs: 1000 });
  const app = await buildApp({ config, db });
  t.teardown(async () => {
    await app.close();
    await db.close(0);
  });
  const started = Date.now();
  const res = await app.inject({ method: 'POST', url: '/webhooks/shipbob/src_x', headers: delivery('whsec_AAAA').headers, payload: '{}' });
  t.equal(res.statusCode, 503);
  t.same(res.json(), { error: 'DB_UNAVAILABLE', message: 'database unavailable, retry later' });
  t.notMatch(res.body, 's3cretpw');
  // Bounded by the timeouts (1 s each), not by the OS's TCP give-up (minutes): a generous bound, not a speed claim.
  t.ok(Date.now() - started < 20_000, `answered in ${Date.now() - started} ms`);
  const ready = await app.inject('/readyz');
  t.equal(ready.statusCode, 503);
});

/** A TCP proxy in front of PostgreSQL that can swallow traffic (a partition) and cut every connection. */
async function startProxy(target: URL) {
  const sockets = new Set<Socket>();
  let blackhole = false;
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => {
      if (!blackhole) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!blackhole) client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    partition() {
      blackhole = true;
    },
    heal() {
      blackhole = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

t.test('the database stops answering mid-flight: 503 within INTAKE_TIMEOUT_MS, nothing stored, then recovery', async (t) => {
  const database = await createTestDatabase(t.name);
  const direct = createDb({ url: database.url, max: 2 });
  const proxy = await startProxy(new URL(database.url));
  const viaProxy = new URL(database.url);
  viaProxy.port = String(proxy.port);
  const config = testConfig(viaProxy.toString(), { INTAKE_TIMEOUT_MS: '500' });
  const db = createDb({ url: viaProxy.toString(), max: config.dbPoolMax, connectTimeoutMs: 1000 });
  const app = await buildApp({ config, db });
  t.teardown(async () => {
    proxy.heal();
    await app.close();
    await db.close(0);
    await proxy.close();
    await direct.close(1);
    await database.drop();
  });
  const source = await addSource(direct.sql);
  const post = (d: ReturnType<typeof delivery>) =>
    app.inject({ method: 'POST', url: `/webhooks/shipbob/${source.id}`, headers: d.headers, payload: d.body });
  t.equal((await post(delivery(source.secret))).statusCode, 200, 'healthy first (the source is now cached)');

  proxy.partition();
  const lost = Array.from({ length: 20 }, () => delivery(source.secret));
  const started = Date.now();
  const answers = await Promise.all(lost.map(post));
  const elapsed = Date.now() - started;
  t.same(new Set(answers.map((a) => a.statusCode)), new Set([503]), 'every request 503, none acknowledged');
  t.ok(elapsed < 20_000, `answered within the timeouts, not hung on the partition (${elapsed} ms; timeout 500 ms)`);

  proxy.heal();
  const [{ n }] = await direct.sql`select count(*)::int as n from inbox_events where event_id in ${direct.sql(lost.map((d) => d.id))}`;
  t.equal(n, 0, 'nothing of what was refused is stored');
  // The pool reconnects: the provider's retry of a refused delivery is stored.
  const retry = delivery(source.secret, { id: lost[0].id, body: lost[0].body });
  let status = 0;
  for (let i = 0; i < 20 && status !== 200; i++) status = (await post(retry)).statusCode;
  t.equal(status, 200, 'recovered');
});
