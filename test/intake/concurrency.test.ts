import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { createWebhookSender, createWorld, PROVIDER_HABITS } from '../harness/simulator/index.js';
import { addSource, type Delivery, delivery, intakeApp } from './factory.js';

// Real sockets: a listening intake under concurrent load, and the provider simulator delivering to it.

async function listen(app: Awaited<ReturnType<typeof intakeApp>>['app']) {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

function send(agent: Agent, url: string, d: Delivery): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: d.headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(d.body);
  });
}

t.test('1,000 concurrent deliveries with 10% duplicates store exactly 900 events', async (t) => {
  const { app, sql, source } = await intakeApp(t, { RATE_LIMIT_MAX: '100000' });
  const base = await listen(app);
  const agent = new Agent({ keepAlive: true, maxSockets: 1000 });
  t.teardown(() => agent.destroy());
  const originals = Array.from({ length: 900 }, () => delivery(source.secret));
  // Retries of 100 of them: same webhook-id and body, a later attempt's timestamp and signature.
  const retries = originals
    .slice(0, 100)
    .map((d) => delivery(source.secret, { id: d.id, body: d.body, timestamp: Number(d.timestamp) + 1 }));
  const all = [...originals, ...retries].sort(() => Math.random() - 0.5);
  const statuses = await Promise.all(all.map((d) => send(agent, `${base}/webhooks/shipbob/${source.id}`, d)));
  t.equal(statuses.filter((s) => s === 200).length, 1000, 'every delivery acknowledged');
  const [row] = await sql`
    select count(*)::int as n, sum(duplicate_count)::int as dups,
           count(*) filter (where duplicate_count = 1)::int as retried
      from inbox_events`;
  t.same(row, { n: 900, dups: 100, retried: 100 });
});

t.test('the provider simulator delivers to wharf: every sent event stored once, nothing failed', async (t) => {
  const { app, sql } = await intakeApp(t, { RATE_LIMIT_MAX: '100000' });
  const base = await listen(app);
  const world = createWorld({ seed: 5, clients: 2, ordersPerClient: 20 });
  const sourceIds = new Map<number, string>();
  for (const c of [1, 2]) sourceIds.set(c, (await addSource(sql, { secret: world.clients[c - 1].secret })).id);
  const sender = createWebhookSender({
    ...PROVIDER_HABITS,
    target: (clientId) => `${base}/webhooks/shipbob/${sourceIds.get(clientId)}`,
    secretFor: (clientId) => [world.clients[clientId - 1].secret],
  });
  const messages = sender.enqueue(world.step({ newOrders: 20, updates: 60, billing: 20 }));
  await sender.drain();
  t.equal(sender.stats.failed, 0);
  const sent = new Set(messages.filter((m) => !sender.dropped.includes(m)).map((m) => m.id));
  const rows = await sql<{ event_id: string }[]>`select event_id from inbox_events`;
  t.equal(rows.length, sent.size);
  t.same(new Set(rows.map((r) => r.event_id)), sent);
  const [{ dups }] = await sql`select coalesce(sum(duplicate_count), 0)::int as dups from inbox_events`;
  t.equal(dups, sender.stats.delivered - sent.size, 'every extra delivery counted as a duplicate');
});
