/**
 * `npm run bench:lag [-- --rate 2000 --seconds 60]`: the soak. Signed webhooks at a fixed rate against wharf's web and
 * worker as separate processes on a durable PostgreSQL (embedded, fsync on; or a fresh database on DATABASE_URL).
 *
 * - Payloads: the simulator's own change events (distinct webhook ids, 4 clients; webhook-only sources, no polling).
 * - Sender: test/harness/chaos/paced-sender.ts, a fixed schedule; ack latency is measured from the intended send time.
 * - Lag: inbox processed_at (the drain's commit) minus the intended send time, per event (same machine clock).
 * - Sampled every second: pending inbox rows, RSS of both processes, wharf's connections (pg_stat_activity).
 * - RSS "start" is taken after a 5 s warm-up (JIT and pools fill first), "end" when the last request is answered.
 * Last line: {"bench":"lag","rate_per_s","duration_s","sent","errors","ack_p99_ms","applied_p50_ms","applied_p99_ms",
 * "max_inbox_depth","rss_start_mb","rss_end_mb","max_connections"}.
 */
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startChaosDatabase } from '../test/harness/chaos/database.js';
import { type PacedWebhook, quantile, sendPaced } from '../test/harness/chaos/paced-sender.js';
import { startWharfService } from '../test/harness/chaos/service.js';
import { createDb } from '../src/db/client.js';
import { keyRingOf, loadConfig } from '../src/config.js';
import { withKeyRing } from '../src/secrets/key-file.js';
import { insertSource } from '../src/intake/sources.js';
import { createWorld } from '../test/harness/simulator/index.js';

const { values: o } = parseArgs({ options: { rate: { type: 'string' }, seconds: { type: 'string' } } });
const RATE = Number(o.rate ?? 2000);
const SECONDS = Number(o.seconds ?? 60);
const WARMUP_MS = 5000;
const SETTLE_MS = 30_000;
const CLIENTS = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, digits = 1) => Number(n.toFixed(digits));

async function main() {
  const database = await startChaosDatabase({ label: 'bench-lag', durable: true, databaseUrl: process.env.DATABASE_URL });
  const logDir = mkdtempSync(path.join(tmpdir(), 'wharf-bench-lag-'));
  try {
    // No API tokens: nothing polls, so the lag is the webhook path alone. PROVIDER_BASE_URL is never called.
    const service = await startWharfService({ databaseUrl: database.url, providerBaseUrl: 'http://127.0.0.1:9', logDir });
    const { sql, close } = createDb({ url: database.url, max: 2, applicationName: 'bench-lag' });
    try {
      const world = createWorld({ seed: 5, clients: CLIENTS, ordersPerClient: 20, start: Date.now() });
      const sourceIds = new Map<number, string>();
      // The key the spawned service finds too (WHARF_ENCRYPTION_KEY, else the same key file).
      const keys = keyRingOf(withKeyRing(loadConfig()));
      for (const c of world.clients) {
        sourceIds.set(c.id, await insertSource(sql, keys, { name: c.name, secret: c.secret, clientId: `client-${c.id}` }));
      }
      const webhooks: PacedWebhook[] = [];
      const total = Math.round(RATE * SECONDS);
      while (webhooks.length < total) {
        for (const e of world.step({ newOrders: 20, updates: 100, billing: 26, durationMs: 1000 })) {
          if (webhooks.length === total) break;
          webhooks.push({
            url: `${service.webUrl}/webhooks/shipbob/${sourceIds.get(e.clientId)}`,
            id: `msg_lag_${webhooks.length}`,
            topic: e.topic,
            body: JSON.stringify(e.payload),
            secrets: [world.clients[e.clientId - 1].secret],
          });
        }
      }
      console.log(`bench:lag: ${total} webhooks at ${RATE}/s for ${SECONDS} s; web pid ${service.web.pid}, worker pid ${service.worker.pid}`);
      console.log(`load average before: ${loadavg()[0].toFixed(2)} (2 cores shared with other work: figures are noisy)`);

      const samples: { t: number; depth: number; web?: number; worker?: number; connections: number }[] = [];
      let sampling = true;
      const t0 = Date.now();
      const sampler = (async () => {
        while (sampling) {
          const [row] = await sql<{ depth: number; connections: number }[]>`
            select (select count(*) from inbox_events where status = 'pending')::int as depth,
                   (select count(*) from pg_stat_activity
                     where datname = current_database() and application_name like 'wharf%')::int as connections`;
          samples.push({ t: (Date.now() - t0) / 1000, ...row, web: service.web.rssMb(), worker: service.worker.rssMb() });
          await sleep(1000);
        }
      })();
      let rssStart = Number.NaN;
      const warm = setTimeout(() => {
        rssStart = (service.web.rssMb() ?? 0) + (service.worker.rssMb() ?? 0);
      }, WARMUP_MS);
      const result = await sendPaced({ webhooks, ratePerSecond: RATE });
      clearTimeout(warm);
      const rssEnd = (service.web.rssMb() ?? 0) + (service.worker.rssMb() ?? 0);
      const sentSeconds = (Date.now() - t0) / 1000;

      // Lag needs every acknowledged event applied: wait (bounded) for the drain to finish.
      const settleDeadline = Date.now() + SETTLE_MS;
      while (Date.now() < settleDeadline) {
        const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from inbox_events where status = 'pending'`;
        if (n === 0) break;
        await sleep(200);
      }
      sampling = false;
      await sampler;
      const applied = await sql<{ id: string; at: number }[]>`
        select event_id as id, extract(epoch from processed_at)::float8 * 1000 as at
          from inbox_events where processed_at is not null and event_id like 'msg_lag_%'`;
      const lags = new Float64Array(applied.length);
      applied.forEach((r, k) => {
        lags[k] = r.at - result.intendedAt[Number(r.id.slice('msg_lag_'.length))];
      });
      const acks = result.ackedAt.map((a, i) => a - result.intendedAt[i]);
      const notApplied = total - result.errors - applied.length;

      const figures = {
        bench: 'lag',
        rate_per_s: RATE,
        duration_s: SECONDS,
        sent: result.sent,
        errors: result.errors + Math.max(0, notApplied),
        ack_p99_ms: round(quantile(acks, 0.99)),
        applied_p50_ms: round(quantile(lags, 0.5)),
        applied_p99_ms: round(quantile(lags, 0.99)),
        max_inbox_depth: Math.max(0, ...samples.map((s) => s.depth)),
        rss_start_mb: round(rssStart),
        rss_end_mb: round(rssEnd),
        max_connections: Math.max(0, ...samples.map((s) => s.connections)),
      };

      console.log('\n   t s | inbox pending | web RSS MB | worker RSS MB | wharf connections');
      for (const s of samples.filter((_, k) => k % 5 === 0 || k === samples.length - 1)) {
        console.log(
          [s.t.toFixed(0).padStart(6), String(s.depth).padStart(13), (s.web?.toFixed(0) ?? '-').padStart(10),
            (s.worker?.toFixed(0) ?? '-').padStart(13), String(s.connections).padStart(17)].join(' | '),
        );
      }
      console.log(`\nsent ${result.sent} in ${sentSeconds.toFixed(1)} s (${(result.sent / sentSeconds).toFixed(0)}/s achieved)`);
      console.log(`errors ${result.errors}${result.errorSamples.length ? ` (${result.errorSamples.join('; ')})` : ''}; acknowledged but not applied within ${SETTLE_MS / 1000} s: ${Math.max(0, notApplied)}`);
      console.log(`ack latency from intended send time: p50 ${round(quantile(acks, 0.5))} ms, p99 ${figures.ack_p99_ms} ms, max ${round(quantile(acks, 1))} ms`);
      console.log(`webhook-to-applied lag: p50 ${figures.applied_p50_ms} ms, p99 ${figures.applied_p99_ms} ms, max ${round(quantile(lags, 1))} ms`);
      console.log(`inbox pending at most ${figures.max_inbox_depth}; RSS web+worker ${figures.rss_start_mb} MB after warm-up, ${figures.rss_end_mb} MB at the end`);
      console.log(`connections at most ${figures.max_connections} (bound: ${service.connectionBound} = web pool + worker pools + metrics)`);
      console.log(JSON.stringify(figures));
    } finally {
      await close();
      await service.stop();
    }
  } finally {
    await database.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
