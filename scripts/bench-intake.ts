/**
 * `npm run bench:intake`: the webhook intake under load, against its ceiling.
 *
 * - A durable PostgreSQL: DATABASE_URL, else an embedded one (fsync on) in a temp directory on a free port.
 * - The real service (`src/main.ts web`, its own process) and, in a second process, the ceiling: what a user would write
 *   instead, a minimal Fastify route that verifies the signature, parses the JSON and does one durable insert per
 *   request into a table with only a primary key (no inbox indexes, no body column), on the same pool size.
 * - autocannon (in this process) loads each with distinct, correctly signed events (a duplicate writes nothing) at 50
 *   and 200 connections, 10 s each after a 2 s warm-up. Requests are signed before each run.
 * Last line: {"bench":"intake","c50":{rps,p99_ms,errors,ceiling_rps,ratio},"c200":{…}}.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { createDb } from '../src/db/client.js';
import { throwawayDatabase } from '../src/db/embedded.js';
import { secretKey, sign, verify } from '../src/intake/signature.js';
import { keyRingOf, loadConfig } from '../src/config.js';
import { withKeyRing } from '../src/secrets/key-file.js';
import { insertSource } from '../src/intake/sources.js';
import { freePort } from '../src/net.js';
import { projectRoot } from '../src/paths.js';

const SOURCES = 8;
const RUN_SECONDS = 10;
const WARMUP_SECONDS = 2;
const POOL_MAX = 10;
/** Requests signed ahead of each run; beyond it (a very fast run) requests are signed on the fly. */
const PREPARED = 200_000;

interface Source {
  id: string;
  secret: string;
}

// ─── the ceiling: verify the signature, one durable insert into a primary-key-only table, reply ───

async function serveCeiling() {
  const sources: Source[] = JSON.parse(process.env.BENCH_SOURCES ?? '[]');
  const keys = new Map(sources.map((s) => [s.id, [secretKey(s.secret)]]));
  const { sql } = createDb({ url: process.env.DATABASE_URL!, max: POOL_MAX, prepare: false });
  await sql`create table if not exists bench_ceiling (id text primary key)`;
  const app = Fastify({ logger: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post<{ Params: { sourceId: string } }>('/webhooks/shipbob/:sourceId', async (req, reply) => {
    const body = req.body as Buffer;
    const h = req.headers as Record<string, string>;
    const failure = verify({
      id: h['webhook-id'],
      timestamp: h['webhook-timestamp'],
      signature: h['webhook-signature'],
      body,
      keys: keys.get(req.params.sourceId) ?? [],
      nowMs: Date.now(),
      toleranceMs: 5 * 60_000,
    });
    if (failure) return reply.code(401).send({ failure });
    const text = body.toString('utf8');
    JSON.parse(text);
    await sql`insert into bench_ceiling (id) values (${`${req.params.sourceId}:${h['webhook-id']}`}) on conflict do nothing`;
    return reply.code(200).type('application/json').send('{"status":"stored"}');
  });
  await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
}

// ─── the harness ───

function startChild(args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

async function waitHealthy(url: string, child: ChildProcess) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before answering`);
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer from ${url} within 60 s`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Distinct signed deliveries, round robin over the sources. */
function requestFactory(sources: Source[]) {
  const run = randomBytes(4).toString('hex');
  let n = 0;
  const make = () => {
    const i = n++;
    const source = sources[i % sources.length];
    const id = `msg_${run}_${i}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({
      event_time: new Date().toISOString().replace('Z', '1234Z'),
      order_id: 100_000_000 + i,
      shipment_id: 200_000_000 + i,
      reference_id: `REF-${i}`,
      status: 'Completed',
      tracking: { carrier: 'USPS', carrier_service: 'ParcelSelect', tracking_id: `9261${i}`, tracking_url: 'https://tools.usps.com/go/TrackConfirmAction' },
    });
    return {
      method: 'POST' as const,
      path: `/webhooks/shipbob/${source.id}`,
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': `v1,${sign(source.secret, id, timestamp, body)}`,
        'x-webhook-topic': 'order.shipped',
      },
      body,
    };
  };
  return make;
}

interface Figures {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  requests: number;
}

async function load(url: string, sources: Source[], connections: number, seconds: number): Promise<Figures> {
  const make = requestFactory(sources);
  const prepared = Array.from({ length: Math.min(PREPARED, connections * 2000) }, make);
  let next = 0;
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    timeout: 10,
    requests: [{ setupRequest: (req) => ({ ...req, ...(next < prepared.length ? prepared[next++] : make()) }) }],
  });
  return {
    rps: result.requests.average,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    requests: result.requests.total,
  };
}

async function main() {
  if (process.argv.includes('--ceiling')) return serveCeiling();

  const { url: dbUrl, stop: stopDb } = await throwawayDatabase('bench-intake', { url: process.env.DATABASE_URL, durable: true });
  const children: ChildProcess[] = [];
  try {
    const appPort = await freePort();
    const app = startChild([path.join('src', 'main.ts'), 'web'], {
      DATABASE_URL: dbUrl,
      PORT: String(appPort),
      METRICS_PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      DB_POOL_MAX: String(POOL_MAX),
    });
    children.push(app);
    const appUrl = `http://127.0.0.1:${appPort}`;
    await waitHealthy(`${appUrl}/readyz`, app); // after its migrations

    const db = createDb({ url: dbUrl, max: 1 });
    const sources: Source[] = [];
    for (let i = 0; i < SOURCES; i++) {
      const secret = `whsec_${randomBytes(24).toString('base64')}`;
      sources.push({ id: await insertSource(db.sql, keyRingOf(withKeyRing(loadConfig())), { name: `bench-${randomBytes(4).toString('hex')}`, secret }), secret });
    }

    const ceilingPort = await freePort();
    const ceiling = startChild([path.join('scripts', 'bench-intake.ts'), '--ceiling'], {
      DATABASE_URL: dbUrl,
      PORT: String(ceilingPort),
      BENCH_SOURCES: JSON.stringify(sources),
    });
    children.push(ceiling);
    const ceilingUrl = `http://127.0.0.1:${ceilingPort}`;
    await waitHealthy(`${ceilingUrl}/`, ceiling);

    const results: Record<string, { wharf: Figures; ceiling: Figures }> = {};
    const load1 = loadavg()[0];
    for (const connections of [50, 200]) {
      const figures: Partial<{ wharf: Figures; ceiling: Figures }> = {};
      for (const [name, url] of [['ceiling', ceilingUrl], ['wharf', appUrl]] as const) {
        await load(url, sources, 50, WARMUP_SECONDS);
        figures[name] = await load(url, sources, connections, RUN_SECONDS);
        console.log(`${name} c${connections}: ${figures[name].rps.toFixed(0)} req/s, p50 ${figures[name].p50_ms} ms, p99 ${figures[name].p99_ms} ms, ${figures[name].errors} errors`);
      }
      results[`c${connections}`] = figures as { wharf: Figures; ceiling: Figures };
    }
    const [{ n }] = await db.sql`select count(*)::int as n from inbox_events`;
    await db.close();

    const out: Record<string, { rps: number; p99_ms: number; errors: number; ceiling_rps: number; ratio: number }> = {};
    console.log(`\nintake vs ceiling (verify + one durable insert per request), ${SOURCES} sources, pool ${POOL_MAX}`);
    console.log(`load average before: ${load1.toFixed(2)} (2 cores shared with other work: figures are noisy)`);
    console.log('conns | wharf req/s | p50 ms | p99 ms | errors | ceiling req/s | p50 ms | p99 ms | errors | ratio');
    for (const [key, { wharf, ceiling: c }] of Object.entries(results)) {
      const ratio = wharf.rps / c.rps;
      out[key] = { rps: Math.round(wharf.rps), p99_ms: wharf.p99_ms, errors: wharf.errors, ceiling_rps: Math.round(c.rps), ratio: Number(ratio.toFixed(3)) };
      console.log(
        [key.slice(1).padStart(5), wharf.rps.toFixed(0).padStart(11), String(wharf.p50_ms).padStart(6), String(wharf.p99_ms).padStart(6),
          String(wharf.errors).padStart(6), c.rps.toFixed(0).padStart(13), String(c.p50_ms).padStart(6), String(c.p99_ms).padStart(6),
          String(c.errors).padStart(6), ratio.toFixed(2).padStart(5)].join(' | '),
      );
    }
    console.log(`goals: c50 ratio ≥ 0.9 and p99 < 25 ms; c200 ratio ≥ 1.5 and p99 < 50 ms; zero errors. Rows stored: ${n}`);
    console.log(JSON.stringify({ bench: 'intake', ...out }));
  } finally {
    for (const c of children) await stopChild(c);
    await stopDb();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
