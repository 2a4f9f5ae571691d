import { connect, type Socket } from 'node:net';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { insertSource, setSourceEnabled } from '../../src/intake/sources.js';
import { metrics } from '../../src/metrics.js';
import { readStatus } from '../../src/ops/status.js';
import { testKeys } from '../helper.js';
import { addSource, delivery, listeningIntake, newMessageId, newSecret } from './factory.js';

// The public endpoint against someone who knows no secret, through the real web role (a listening server, its own
// pool, the server's timeouts) on a real PostgreSQL.

/** Statements the web pool has sent so far (src/web.ts counts them for /metrics). */
async function webStatements(): Promise<number> {
  const m = await metrics.dbStatements.get();
  return m.values.find((v) => v.labels.pool === 'web')?.value ?? 0;
}

/** A raw HTTP/1.1 exchange: writes `head` (and `body` if given), collects what comes back until the socket closes. */
function rawRequest(port: number, head: string, body?: Buffer) {
  const socket: Socket = connect(port, '127.0.0.1');
  let received = '';
  const closed = new Promise<{ at: number }>((resolve) => socket.on('close', () => resolve({ at: Date.now() })));
  const answered = new Promise<string>((resolve) =>
    socket.on('data', (c) => {
      received += c.toString('latin1');
      if (received.includes('\r\n\r\n')) resolve(received);
    }),
  );
  socket.on('error', () => {});
  socket.write(head);
  if (body) socket.write(body);
  return { socket, closed, answered, received: () => received };
}

const withDeadline = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);

t.test('cheap rejection: random source ids cost no body read and no query per request, and write nothing', async (t) => {
  const { post, sql, port, source } = await listeningIntake(t, { UNVERIFIED_LIMIT_MAX: '100000' });
  t.equal((await post(delivery(source.secret))).status, 200, 'warm: the directory of sources is loaded');
  await new Promise((r) => setTimeout(r, 1100)); // past the directory's miss-reload interval: one reload is allowed

  const before = await webStatements();
  const started = Date.now();
  const body = JSON.stringify({ pad: 'x'.repeat(60_000) });
  const answers = await Promise.all(
    Array.from({ length: 300 }, (_, i) => post(delivery(newSecret(), { body }), { sourceId: `src_random_${i}` })),
  );
  const seconds = Math.ceil((Date.now() - started) / 1000);
  t.same(new Set(answers.map((a) => a.status)), new Set([404]), '300 random ids: 404');
  const spent = (await webStatements()) - before;
  // The contract is a rate, not a count: at most one directory reload per second however many ids (on a loaded
  // machine the 300 requests take several seconds).
  t.ok(spent <= seconds + 1 && spent < 300 / 10, `300 random ids in ${seconds} s cost ${spent} statements`);

  // A declared 1 MB body is refused at once, before any of it is sent, and the connection is closed.
  const r = rawRequest(
    port,
    'POST /webhooks/shipbob/src_nobody HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n',
  );
  const head = await withDeadline(r.answered, 5000, 'an answer without sending the body');
  t.match(head, /^HTTP\/1\.1 404 /, '404 without the body');
  t.match(head.toLowerCase(), /connection: close/, 'and the connection is closed, so the body is never drained');
  await withDeadline(r.closed, 5000, 'connection closed');

  const [q] = await sql`select (select count(*)::int from quarantine) as samples, (select count(*)::int from quarantine_counts) as counters`;
  t.same(q, { samples: 0, counters: 0 }, 'no quarantine row for unknown sources');
});

t.test('a source added a moment ago is found (within a second); a disabled one is refused', async (t) => {
  const { post, sql } = await listeningIntake(t);
  const later = await addSource(sql);
  t.equal((await post(delivery(later.secret), { sourceId: later.id })).status, 200, 'new source accepted');
  await setSourceEnabled(sql, later.id, false);
  const other = await insertSource(sql, testKeys, { name: 'other', secret: newSecret() });
  await new Promise((r) => setTimeout(r, 1100));
  t.equal((await post(delivery(newSecret()), { sourceId: other })).status, 401, 'another new source found after a reload');
});

t.test('a flood of bad signatures to a known source keeps counters and a few samples, not a row each', async (t) => {
  const { post, sql, web, source } = await listeningIntake(t, { UNVERIFIED_LIMIT_MAX: '100000' });
  const answers = await Promise.all(Array.from({ length: 400 }, () => post(delivery(newSecret()))));
  t.same(new Set(answers.map((a) => a.status)), new Set([401]));
  await web.app.intake.quarantine.flush();
  const counts = await sql`select source_id, reason, count::int from quarantine_counts`;
  t.same(counts, [{ source_id: source.id, reason: 'bad_signature', count: 400 }], 'one counter row holds all 400');
  const [{ n }] = await sql`select count(*)::int as n from quarantine`;
  t.equal(n, 3, 'three samples');
});

t.test('the per-source budget counts verified deliveries only', async (t) => {
  const { post, source } = await listeningIntake(t, { RATE_LIMIT_MAX: '50', RATE_LIMIT_WINDOW_MS: '60000', UNVERIFIED_LIMIT_MAX: '1000' });
  for (let i = 0; i < 50; i++) {
    const d = delivery(source.secret);
    delete d.headers['webhook-signature'];
    await post(d);
  }
  t.equal((await post(delivery(source.secret))).status, 200, '50 unsigned requests did not spend the budget of 50');
  for (let i = 0; i < 49; i++) await post(delivery(source.secret));
  const over = await post(delivery(source.secret));
  t.equal(over.status, 429, 'the 51st verified delivery is over it');
  t.ok(Number(over.headers.get('retry-after')) > 0, 'with Retry-After');
});

t.test('unverified traffic is limited per client address (trusted proxy header) and per source; its 429 writes nothing', async (t) => {
  const { post, sql, web, source } = await listeningIntake(t, {
    TRUST_PROXY: 'x-forwarded-for',
    UNVERIFIED_LIMIT_MAX: '5',
    UNVERIFIED_LIMIT_WINDOW_MS: '60000',
  });
  const other = await addSource(sql);
  const attacker = { 'x-forwarded-for': '10.9.9.9, 198.51.100.7' }; // the last hop is what the proxy saw
  for (let i = 0; i < 5; i++) t.equal((await post(delivery(newSecret()), { headers: attacker })).status, 401);
  const limited = await post(delivery(newSecret()), { headers: attacker });
  t.equal(limited.status, 429, 'the 6th rejected request from that address is refused before reading');
  t.equal(limited.json().reason, 'client_rate_limited');
  t.ok(Number(limited.headers.get('retry-after')) > 0, 'with Retry-After');
  t.equal((await post(delivery(source.secret), { headers: attacker })).status, 429, 'even signed, from that address, until the window ends');
  t.equal((await post(delivery(source.secret), { headers: { 'x-forwarded-for': '203.0.113.5' } })).status, 200, 'the provider, elsewhere, is not affected');
  t.equal((await post(delivery(other.secret), { sourceId: other.id, headers: attacker })).status, 200, 'nor another source from the same address');
  const spoofed = { 'x-forwarded-for': '198.51.100.7, 10.1.1.1' };
  t.equal((await post(delivery(newSecret()), { headers: spoofed })).status, 401, 'an invented first hop is another address only if the proxy saw it');

  await web.app.intake.quarantine.flush();
  const counts = await sql`select reason, count::int from quarantine_counts where source_id = ${source.id} order by reason`;
  t.same(counts, [{ reason: 'bad_signature', count: 6 }], '429s to unverified traffic are not in the quarantine');
  const [{ n }] = await sql`select count(*)::int as n from quarantine where reason like '%rate_limited'`;
  t.equal(n, 0);
});

t.test('without TRUST_PROXY, forwarded-for headers are ignored: the socket address is the client', async (t) => {
  const { post } = await listeningIntake(t, { UNVERIFIED_LIMIT_MAX: '3' });
  for (let i = 0; i < 3; i++) await post(delivery(newSecret()), { headers: { 'x-forwarded-for': `198.51.100.${i}`, 'fly-client-ip': `198.51.100.${i}` } });
  const res = await post(delivery(newSecret()), { headers: { 'x-forwarded-for': '198.51.100.99', 'fly-client-ip': '198.51.100.99' } });
  t.equal(res.status, 429, 'a new claimed address does not buy a new budget');
});

t.test('a body trickled one byte a second is cut off within the configured request timeout', async (t) => {
  const { port, source } = await listeningIntake(t, {
    HTTP_REQUEST_TIMEOUT_MS: '2000',
    HTTP_HEADERS_TIMEOUT_MS: '1000',
    HTTP_TIMEOUT_CHECK_INTERVAL_MS: '250',
  });
  const started = Date.now();
  const r = rawRequest(
    port,
    `POST /webhooks/shipbob/${source.id} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n`,
  );
  let sent = 0;
  const trickle = setInterval(() => {
    if (!r.socket.destroyed && sent < 60) {
      r.socket.write('x');
      sent++;
    }
  }, 1000);
  t.teardown(() => clearInterval(trickle));
  const { at } = await withDeadline(r.closed, 20_000, 'the trickling connection closed');
  clearInterval(trickle);
  const elapsed = at - started;
  // Bound: the request timeout plus one check interval (and scheduling slack); the trickle alone would take 60 s.
  t.ok(elapsed < 2000 + 250 + 1500, `cut off after ${elapsed} ms, ${sent} bytes sent`);
  t.ok(sent < 60, 'before the body was complete');
  t.match(r.received(), /^HTTP\/1\.1 408 /, 'answered 408');
});

t.test('timeouts default to the provider delivery timeout, and a headers timeout over the request timeout is refused', async (t) => {
  const c = loadConfig({});
  t.equal(c.httpRequestTimeoutMs, 15_000);
  t.ok(c.httpHeadersTimeoutMs <= c.httpRequestTimeoutMs);
  t.ok(c.httpTimeoutCheckIntervalMs <= 1000, 'checked every second, not every 30 s');
  t.equal(c.webhookBodyLimitBytes, 256 * 1024);
  t.throws(() => loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '1000', HTTP_HEADERS_TIMEOUT_MS: '5000' }), /HTTP_HEADERS_TIMEOUT_MS/);
});

t.test('request bytes in flight are bounded process-wide: beyond it 503 before the body is read', async (t) => {
  const { post, port, source } = await listeningIntake(t, {
    INTAKE_BODY_BYTES_IN_FLIGHT: '10000',
    WEBHOOK_BODY_LIMIT_BYTES: '8000',
  });
  // A holds 8,000 of the 10,000 bytes: it sends half its body and waits.
  const held = delivery(source.secret, { body: JSON.stringify({ pad: 'y'.repeat(7970) }) });
  const bodyA = Buffer.from(held.body);
  t.ok(bodyA.length > 7900 && bodyA.length <= 8000);
  const headA = Object.entries(held.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  const a = rawRequest(port, `POST /webhooks/shipbob/${source.id} HTTP/1.1\r\nHost: x\r\n${headA}Content-Length: ${bodyA.length}\r\n\r\n`, bodyA.subarray(0, 4000));
  await new Promise((r) => setTimeout(r, 300));
  // B declares 5,000 bytes: refused at once, without sending them.
  const b = rawRequest(port, `POST /webhooks/shipbob/${source.id} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n`);
  const headB = await withDeadline(b.answered, 5000, 'B answered without its body');
  t.match(headB, /^HTTP\/1\.1 503 /, 'B: 503');
  t.match(headB.toLowerCase(), /retry-after: 1/, 'with Retry-After');
  t.equal((await post(delivery(source.secret))).status, 200, 'a small delivery still fits');
  a.socket.write(bodyA.subarray(4000));
  const headA2 = await withDeadline(a.answered, 5000, 'A answered');
  t.match(headA2, /^HTTP\/1\.1 200 /, 'A completes');
  a.socket.end();
  await new Promise((r) => setTimeout(r, 100));
  t.equal((await post(delivery(source.secret, { body: JSON.stringify({ pad: 'z'.repeat(5000) }) }))).status, 200, 'its bytes are released');
});

t.test('a webhook id reused with a different body is acknowledged as a duplicate, not applied, counted and shown', async (t) => {
  const { post, sql, web, source } = await listeningIntake(t);
  const first = delivery(source.secret, { payload: { shipment_id: 1, status: 'Completed' } });
  t.same((await post(first)).json(), { status: 'stored' });
  const before = (await metrics.webhookChangedBodies.get()).values[0]?.value ?? 0;
  const changed = delivery(source.secret, { id: first.id, payload: { shipment_id: 1, status: 'Cancelled' } });
  const res = await post(changed);
  t.equal(res.status, 200);
  t.same(res.json(), { status: 'duplicate' });
  const same = delivery(source.secret, { id: first.id, body: first.body });
  t.same((await post(same)).json(), { status: 'duplicate' }, 'a plain retry is a duplicate too');
  const [row] = await sql`select body, duplicate_count from inbox_events where event_id = ${first.id}`;
  t.equal(row.body, first.body, 'the first body stays');
  t.equal(row.duplicate_count, 2);
  t.equal(((await metrics.webhookChangedBodies.get()).values[0]?.value ?? 0) - before, 1, 'counted once (the plain retry is not)');
  await web.app.intake.quarantine.flush();
  const status = await readStatus(sql, { staleAfterMs: 60_000 });
  t.equal(status.changedBodies24h, 1, 'ops status shows it');
  const [sample] = await sql`select event_id, status_code from quarantine where reason = 'changed_body'`;
  t.same(sample, { event_id: first.id, status_code: 200 }, 'with a sample naming the event');
});

t.test('a stored secret whose key breaks the length rule never verifies (an empty key signs for anyone)', async (t) => {
  const { post, sql } = await listeningIntake(t);
  const empty = 'whsec_';
  const short = `whsec_${Buffer.alloc(16, 7).toString('base64')}`;
  for (const secret of [empty, short]) {
    const id = await insertSource(sql, testKeys, { name: `legacy-${secret.length}`, secret });
    await new Promise((r) => setTimeout(r, 1100)); // a new id is found once the directory is a second old
    const res = await post(delivery(secret, { id: newMessageId() }), { sourceId: id });
    t.equal(res.status, 401, `a delivery signed with a ${secret === empty ? 'zero' : '16'}-byte key is refused`);
  }
});

t.test('/metrics is not on the public port; /healthz is and /readyz asks the database at most once a second', async (t) => {
  const { web } = await listeningIntake(t);
  t.equal((await fetch(`${web.url}/metrics`)).status, 404, 'no /metrics on the public port');
  t.equal((await fetch(`${web.url}/healthz`)).status, 200);
  const before = await webStatements();
  const probes = await Promise.all(Array.from({ length: 50 }, () => fetch(`${web.url}/readyz`).then((r) => r.status)));
  t.same(new Set(probes), new Set([200]));
  const spent = (await webStatements()) - before;
  t.ok(spent <= 4, `50 readiness probes cost ${spent} statements`);
});

t.test('TRUST_PROXY=fly: the address is Fly-Client-IP, and X-Forwarded-For is not trusted', async (t) => {
  const { post, source } = await listeningIntake(t, { TRUST_PROXY: 'fly', UNVERIFIED_LIMIT_MAX: '2' });
  const from = (ip: string) => ({ 'fly-client-ip': ip, 'x-forwarded-for': `10.0.0.${Math.floor(Math.random() * 200)}` });
  for (let i = 0; i < 2; i++) t.equal((await post(delivery(newSecret()), { headers: from('2001:db8::7') })).status, 401);
  t.equal((await post(delivery(newSecret()), { headers: from('2001:db8::7') })).status, 429, 'that Fly client is over its budget');
  t.equal((await post(delivery(source.secret), { headers: from('2001:db8::8') })).status, 200, 'another Fly client is not');
});
