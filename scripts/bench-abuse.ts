/**
 * `npm run bench:abuse`: genuine deliveries at a fixed rate while a flood from loopback hits the same web process.
 *
 * - A durable PostgreSQL (DATABASE_URL, else an embedded one), the real web role (`src/main.ts web`, its own process,
 *   default settings except TRUST_PROXY=x-forwarded-for, so the flood and the provider are told apart by the address
 *   a proxy would have seen, as on Fly, and a drain kick at most once a minute: no worker runs).
 * - Baseline: GENUINE_RATE signed deliveries/s for BASELINE_S seconds, nothing else.
 * - Flood: the same genuine rate for FLOOD_S seconds while a child process pushes as fast as it can: random unknown
 *   source ids, bad signatures to the genuine source (its id is public), 1 MiB bodies to unknown ids, and slow bodies
 *   (a byte a second) to the genuine source, from four attacker addresses.
 * - Read from the web's private /metrics: statements its pool sent, quarantine rows written, refusals; its RSS from
 *   /proc. Last line: {"bench":"abuse","genuine_ok_ratio":…,"genuine_p99_ms":…,"baseline_p99_ms":…,
 *   "quarantine_rows_per_1k":…,"statements_per_rejection":…,"rss_growth_mb":…}.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import autocannon, { type Result } from 'autocannon';
import { keyRingOf, loadConfig } from '../src/config.js';
import { withKeyRing } from '../src/secrets/key-file.js';
import { createDb } from '../src/db/client.js';
import { throwawayDatabase } from '../src/db/embedded.js';
import { runMigrations } from '../src/db/migrate.js';
import { sign } from '../src/intake/signature.js';
import { insertSource } from '../src/intake/sources.js';
import { freePort } from '../src/net.js';
import { projectRoot } from '../src/paths.js';

const GENUINE_RATE = 200;
const BASELINE_S = 5;
const FLOOD_S = 10;
const SLOW_SOCKETS = 200;
const PROVIDER_ADDR = '203.0.113.10';

// ─── the flood (a child process, so its CPU never colours the genuine sender's timings) ───

async function flood() {
  const { url, sourceId, seconds } = JSON.parse(process.env.BENCH_FLOOD ?? '{}') as { url: string; sourceId: string; seconds: number };
  const target = new URL(url);
  const attacker = (n: number) => ({ 'x-forwarded-for': `198.51.100.${n}` });
  const ts = () => String(Math.floor(Date.now() / 1000));
  const smallBody = JSON.stringify({ shipment_id: 1, pad: 'x'.repeat(2000) });
  const bigBody = Buffer.alloc(1024 * 1024, 'x');
  const fakeSig = `v1,${randomBytes(32).toString('base64')}`;
  const run = (connections: number, make: () => { path: string; headers: Record<string, string>; body: string | Buffer }) =>
    autocannon({
      url,
      connections,
      duration: seconds,
      timeout: 5,
      requests: [{ setupRequest: (req) => ({ ...req, method: 'POST', ...make() }) }],
    });
  let n = 0;
  // Slow bodies: each socket declares 10,000 bytes and sends one a second; a closed one is replaced at once.
  let slowCut = 0;
  let stopSlow = false;
  const slow = (): void => {
    if (stopSlow) return;
    const s: Socket = connect(Number(target.port), target.hostname);
    s.on('error', () => {});
    s.write(`POST /webhooks/shipbob/${sourceId} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.4\r\nContent-Length: 10000\r\n\r\n`);
    const tick = setInterval(() => s.write('x'), 1000);
    s.on('close', () => {
      clearInterval(tick);
      slowCut++;
      slow();
    });
    setTimeout(() => s.destroy(), seconds * 1000).unref();
  };
  for (let i = 0; i < SLOW_SOCKETS; i++) slow();
  const [unknown, badSig, big] = await Promise.all([
    run(16, () => ({
      path: `/webhooks/shipbob/src_${(n++).toString(16)}${randomBytes(4).toString('hex')}`,
      headers: { ...attacker(1), 'content-type': 'application/json', 'webhook-id': `msg_${n}`, 'webhook-timestamp': ts(), 'webhook-signature': fakeSig },
      body: smallBody,
    })),
    run(8, () => ({
      path: `/webhooks/shipbob/${sourceId}`,
      headers: { ...attacker(2), 'content-type': 'application/json', 'webhook-id': `msg_${n++}`, 'webhook-timestamp': ts(), 'webhook-signature': fakeSig },
      body: smallBody,
    })),
    run(4, () => ({
      path: `/webhooks/shipbob/src_big_${(n++).toString(16)}`,
      headers: { ...attacker(3), 'content-type': 'application/json' },
      body: bigBody,
    })),
  ]);
  stopSlow = true;
  const total = (r: Result) => r.requests.total;
  console.log(
    JSON.stringify({
      unknown: total(unknown),
      bad_signature: total(badSig),
      big_unknown: total(big),
      slow_cut: slowCut,
      errors: unknown.errors + badSig.errors + big.errors,
    }),
  );
  process.exit(0);
}

// ─── the harness ───

interface Source {
  id: string;
  secret: string;
}

/** Sends `rate` signed deliveries a second for `seconds` on a keep-alive agent; returns each one's status and latency. */
async function genuine(url: string, source: Source, rate: number, seconds: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const target = new URL(url);
  const results: { status: number; ms: number }[] = [];
  const inFlight: Promise<void>[] = [];
  const run = randomBytes(4).toString('hex');
  const started = Date.now();
  for (let i = 0; i < rate * seconds; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const id = `msg_${run}_${i}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ event_time: new Date().toISOString(), shipment_id: 300_000_000 + i, status: 'Completed' });
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': `v1,${sign(source.secret, id, timestamp, body)}`,
      'x-webhook-topic': 'order.shipped',
      'x-forwarded-for': PROVIDER_ADDR,
    };
    const t0 = performance.now();
    inFlight.push(
      new Promise<void>((resolve) => {
        const req = http.request(
          { host: target.hostname, port: target.port, method: 'POST', path: `/webhooks/shipbob/${source.id}`, headers, agent, timeout: 15_000 },
          (res) => {
            res.resume();
            res.on('end', () => {
              results.push({ status: res.statusCode ?? 0, ms: performance.now() - t0 });
              resolve();
            });
          },
        );
        req.on('error', () => {
          results.push({ status: 0, ms: performance.now() - t0 });
          resolve();
        });
        req.end(body);
      }),
    );
  }
  await Promise.all(inFlight);
  agent.destroy();
  const ok = results.filter((r) => r.status === 200);
  const sorted = ok.map((r) => r.ms).sort((a, b) => a - b);
  const p99 = sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] : Number.NaN;
  return { sent: results.length, ok: ok.length, p99, statuses: countBy(results.map((r) => r.status)) };
}

function countBy(xs: number[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const x of xs) m[x] = (m[x] ?? 0) + 1;
  return m;
}

/** Sums a Prometheus counter's samples whose labels match. */
async function scrape(metricsUrl: string) {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  return (name: string, match: (labels: string) => boolean = () => true) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .filter((l) => match(l.slice(name.length)))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};

async function waitHealthy(url: string, child: ChildProcess) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before answering`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer from ${url} within 60 s`);
}

async function main() {
  if (process.argv.includes('--flood')) return flood();

  const { url: dbUrl, stop: stopDb } = await throwawayDatabase('bench-abuse', { url: process.env.DATABASE_URL, durable: true });
  const children: ChildProcess[] = [];
  try {
    await runMigrations(dbUrl);
    const db = createDb({ url: dbUrl, max: 2 });
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const source: Source = { id: await insertSource(db.sql, keyRingOf(withKeyRing(loadConfig())), { name: 'bench-abuse', secret }), secret };
    const [port, metricsPort] = [await freePort(), await freePort()];
    const web = spawn(process.execPath, ['--import', 'tsx', path.join('src', 'main.ts'), 'web'], {
      cwd: projectRoot,
      env: {
        ...process.env,
        DATABASE_URL: dbUrl,
        PORT: String(port),
        METRICS_PORT: String(metricsPort),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'error',
        TRUST_PROXY: 'x-forwarded-for',
        // No worker runs here: a drain kick per stored batch would only queue a job, and its statements would blur
        // the count of what refusals cost. One kick a minute at most.
        DRAIN_KICK_DEBOUNCE_MS: '60000',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(web);
    const appUrl = `http://127.0.0.1:${port}`;
    const metricsUrl = `http://127.0.0.1:${metricsPort}`;
    await waitHealthy(`${appUrl}/readyz`, web);
    await waitHealthy(`${metricsUrl}/healthz`, web);
    await genuine(appUrl, source, GENUINE_RATE, 1); // warm-up

    const statements = async () => (await scrape(metricsUrl))('wharf_db_statements_total', (l) => l.includes('pool="web"'));
    const s0 = await statements();
    const baseline = await genuine(appUrl, source, GENUINE_RATE, BASELINE_S);
    const s1 = await statements();
    const rssBefore = rssMb(web.pid!);

    const m1 = await scrape(metricsUrl);
    const rejected1 = m1('wharf_webhook_requests_total', (l) => /outcome="(rejected|error)"/.test(l));
    const rows1 = m1('wharf_quarantine_rows_written_total');
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMb(web.pid!))), 250);
    const flooder = spawn(process.execPath, ['--import', 'tsx', path.join('scripts', 'bench-abuse.ts'), '--flood'], {
      cwd: projectRoot,
      env: { ...process.env, BENCH_FLOOD: JSON.stringify({ url: appUrl, sourceId: source.id, seconds: FLOOD_S }) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(flooder);
    let floodOut = '';
    flooder.stdout.on('data', (c) => (floodOut += c));
    const floodDone = new Promise<void>((resolve) => flooder.once('exit', () => resolve()));
    await new Promise((r) => setTimeout(r, 1000)); // the flood is running
    const flooded = await genuine(appUrl, source, GENUINE_RATE, FLOOD_S - 2);
    await floodDone;
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, 1500)); // the quarantine's last flush
    const s2 = await statements();
    const m2 = await scrape(metricsUrl);
    const rejected = m2('wharf_webhook_requests_total', (l) => /outcome="(rejected|error)"/.test(l)) - rejected1;
    const rows = m2('wharf_quarantine_rows_written_total') - rows1;
    const f = JSON.parse(floodOut.trim().split('\n').pop() ?? '{}') as Record<string, number>;
    // Cut-off slow bodies answer 408 from Node itself, below the app's counters: count them as refusals too.
    const refusals = rejected + (f.slow_cut ?? 0);
    // Every statement of the web pool during the flood except the genuine deliveries' group commits: directory and
    // source look-ups (the genuine source's included, so this overstates), quarantine writes, readiness.
    const floodStatements = s2 - s1;
    const commits = m2('wharf_intake_commit_batches_total') - m1('wharf_intake_commit_batches_total');
    const statementsPerRejection = Math.max(0, floodStatements - commits) / Math.max(1, refusals);

    const figures = {
      genuine_ok_ratio: flooded.sent ? flooded.ok / flooded.sent : 0,
      genuine_p99_ms: Number(flooded.p99.toFixed(1)),
      baseline_p99_ms: Number(baseline.p99.toFixed(1)),
      quarantine_rows_per_1k: Number(((rows / Math.max(1, refusals)) * 1000).toFixed(2)),
      statements_per_rejection: Number(statementsPerRejection.toFixed(4)),
      rss_growth_mb: Number((rssPeak - rssBefore).toFixed(1)),
    };
    console.log(`genuine deliveries at ${GENUINE_RATE}/s: baseline ${baseline.ok}/${baseline.sent} ok, p99 ${figures.baseline_p99_ms} ms`);
    console.log(`  under the flood: ${flooded.ok}/${flooded.sent} ok (${JSON.stringify(flooded.statuses)}), p99 ${figures.genuine_p99_ms} ms`);
    console.log(
      `flood (${FLOOD_S} s, loopback): ${f.unknown} unknown ids, ${f.bad_signature} bad signatures, ${f.big_unknown} 1 MiB bodies to unknown ids, ${f.slow_cut} slow bodies cut; ${refusals} refusals counted`,
    );
    console.log(`  quarantine rows written: ${rows} (${figures.quarantine_rows_per_1k} per 1,000 refusals; goal ≤ 10)`);
    console.log(
      `  web pool statements during the flood: ${floodStatements}, of which ${commits} group commits of genuine deliveries → ${figures.statements_per_rejection} per refusal (baseline: ${s1 - s0} for ${baseline.ok} deliveries)`,
    );
    console.log(`  web RSS ${rssBefore.toFixed(0)} MB → peak ${rssPeak.toFixed(0)} MB (+${figures.rss_growth_mb} MB)`);
    await db.close(1);
    console.log(JSON.stringify({ bench: 'abuse', ...figures }));
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    await stopDb();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
