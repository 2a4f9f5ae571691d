import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { secretKey, verify } from '../../src/intake/signature.js';
import { createWebhookSender, createWorld, type WebhookSenderOptions } from './simulator/index.js';

// The webhook sender against a tiny local receiver: signatures, retries, and the provider's habits.

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A receiver that records every delivery and answers with `status(delivery)`. */
async function startReceiver(status: (r: Received, all: Received[]) => number = () => 204) {
  const received: Received[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const r = { headers: req.headers, body: Buffer.concat(chunks) };
    received.push(r);
    res.writeHead(status(r, received)).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received };
}

const world = createWorld({ seed: 11, clients: 3, ordersPerClient: 50 });
const secretOf = (clientId: number) => world.clients[clientId - 1].secret;
const events = world.step({ newOrders: 40, updates: 120, billing: 40 });

function sender(url: string, options: Partial<WebhookSenderOptions> = {}) {
  return createWebhookSender({ target: () => url, secretFor: (id) => [secretOf(id)], ...options });
}

const header = (r: Received, name: string) => String(r.headers[name]);
function byWebhookId(received: Received[]): Map<string, Received[]> {
  const groups = new Map<string, Received[]>();
  for (const r of received) groups.set(header(r, 'webhook-id'), [...(groups.get(header(r, 'webhook-id')) ?? []), r]);
  return groups;
}
function verifies(r: Received, clientId: number, nowMs = Date.now()) {
  return verify({
    id: header(r, 'webhook-id'),
    timestamp: header(r, 'webhook-timestamp'),
    signature: header(r, 'webhook-signature'),
    body: r.body,
    keys: [secretKey(secretOf(clientId))],
    nowMs,
    toleranceMs: 5 * 60_000,
  });
}

t.test('delivers every event once, signed so that intake verification accepts it', async (t) => {
  const receiver = await startReceiver();
  const s = sender(receiver.url);
  const messages = s.enqueue(events);
  await s.drain();

  t.ok(events.length > 100);
  t.equal(receiver.received.length, events.length);
  t.same(s.stats, { sent: events.length, delivered: events.length, dropped: 0, duplicates: 0, retries: 0, failed: 0 });
  const byId = new Map(messages.map((m, i) => [m.id, events[i]]));
  for (const r of receiver.received) {
    const event = byId.get(header(r, 'webhook-id'));
    if (!event) throw new Error('unknown webhook-id');
    t.equal(verifies(r, event.clientId), null);
    t.match(header(r, 'webhook-id'), /^msg_[0-9A-Za-z]{27}$/);
    t.equal(header(r, 'x-webhook-topic'), event.topic);
    t.equal(header(r, 'content-type'), 'application/json');
    t.same(JSON.parse(r.body.toString()), event.payload);
  }
  t.ok(verifies(receiver.received[0], 2) !== null || events[0].clientId === 2, 'another client secret does not verify');
});

t.test('signs with every secret during rotation', async (t) => {
  const receiver = await startReceiver();
  const s = createWebhookSender({
    target: () => receiver.url,
    secretFor: () => ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', secretOf(1)],
  });
  s.enqueue(events.slice(0, 1));
  await s.drain();
  t.match(header(receiver.received[0], 'webhook-signature'), /^v1,\S+ v1,\S+$/);
  t.equal(verifies(receiver.received[0], 1), null);
});

t.test('retries a 500 under the same webhook-id with a new timestamp', async (t) => {
  // The first attempt of each message fails.
  const receiver = await startReceiver((r, all) =>
    all.filter((x) => x.headers['webhook-id'] === r.headers['webhook-id']).length === 1 ? 500 : 200,
  );
  let clock = Date.now();
  const s = sender(receiver.url, { retry: { baseDelayMs: 5 }, now: () => (clock += 1000) });
  s.enqueue(events.slice(0, 20));
  await s.drain();

  t.same(s.stats, { sent: 40, delivered: 20, dropped: 0, duplicates: 0, retries: 20, failed: 0 });
  const attempts = byWebhookId(receiver.received);
  t.equal(attempts.size, 20);
  for (const [, [first, second]] of attempts) {
    t.not(header(first, 'webhook-timestamp'), header(second, 'webhook-timestamp'));
    t.equal(first.body.toString(), second.body.toString());
    const clientId = events.find((e) => JSON.stringify(e.payload) === second.body.toString())?.clientId ?? 0;
    t.equal(verifies(second, clientId, Number(header(second, 'webhook-timestamp')) * 1000), null);
  }
});

t.test('gives up after maxAttempts and records the failure', async (t) => {
  const receiver = await startReceiver(() => 503);
  const s = sender(receiver.url, { retry: { maxAttempts: 3, baseDelayMs: 1 } });
  const [message] = s.enqueue(events.slice(0, 1));
  await s.drain();
  t.equal(receiver.received.length, 3);
  t.same(s.failed, [message]);
  t.match(s.stats, { sent: 3, retries: 2, failed: 1, delivered: 0 });
});

t.test('retries when the receiver is unreachable', async (t) => {
  const s = sender('http://127.0.0.1:9/nothing-listens', { retry: { maxAttempts: 2, baseDelayMs: 1 } });
  s.enqueue(events.slice(0, 2));
  await s.drain();
  t.match(s.stats, { sent: 4, retries: 2, failed: 2 });
});

t.test('drops and duplicates the configured shares, the same ones for the same seed', async (t) => {
  const receiver = await startReceiver();
  const habits = { seed: 7, dropRate: 0.2, duplicateRate: 0.2, reorderWindow: 16 };
  const s = sender(receiver.url, habits);
  const messages = s.enqueue(events);
  await s.drain();

  const dropped = new Set(s.dropped.map((m) => m.id));
  t.ok(Math.abs(dropped.size / events.length - 0.2) < 0.07, `dropped ${dropped.size} of ${events.length}`);
  const copies = byWebhookId(receiver.received);
  t.equal(copies.size, messages.length - dropped.size, 'every message not dropped arrives');
  t.ok(
    [...copies.keys()].every((id) => !dropped.has(id)),
    'no dropped message arrives',
  );
  const twice = [...copies.values()].filter((c) => c.length === 2).length;
  t.equal(twice, s.stats.duplicates);
  t.ok(Math.abs(twice / copies.size - 0.2) < 0.07, `duplicated ${twice} of ${copies.size}`);
  t.equal(receiver.received.length, s.stats.delivered);

  const again = sender(receiver.url, habits);
  const replay = again.enqueue(events);
  await again.drain();
  t.same(
    again.dropped.map((m) => m.id),
    s.dropped.map((m) => m.id),
  );
  t.same(
    replay.map((m) => m.id),
    messages.map((m) => m.id),
  );
});

t.test('reorders deliveries within the window', async (t) => {
  const receiver = await startReceiver();
  const s = sender(receiver.url, { reorderWindow: 8, concurrency: 1 });
  const messages = s.enqueue(events.slice(0, 64));
  await s.drain();
  const order = receiver.received.map((r) => header(r, 'webhook-id'));
  t.not(order.join(), messages.map((m) => m.id).join(), 'not in enqueue order');
  t.same(order.slice().sort(), messages.map((m) => m.id).sort(), 'but all of them');
  for (let w = 0; w < 64; w += 8) {
    t.same(
      order.slice(w, w + 8).sort(),
      messages
        .slice(w, w + 8)
        .map((m) => m.id)
        .sort(),
      'within its window',
    );
  }
});
