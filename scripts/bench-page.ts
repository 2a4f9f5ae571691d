/**
 * `npm run bench:page`: how long the ops page takes to load with 1M inbox rows (goal < 1 s).
 *
 * - A throwaway embedded PostgreSQL (never DATABASE_URL: the seed is a million rows), migrated.
 * - Seeded with generate_series: BENCH_PAGE_ROWS inbox rows (default 1,000,000) over 24 h from 20 sources, 96%
 *   processed, 3% pending, 1% dead under 25 reasons, 15% by poll; poll cursors, 5,000 rejected requests, 7 days of
 *   per-minute samples (the retention's worth) and per-source samples for 24 h; then ANALYZE and one real sample.
 * - The page plugin on a loopback Fastify server; BENCH_PAGE_LOADS (default 20) sequential GET / after 2 warm-ups,
 *   each timed to the last byte of the HTML (what the browser waits for before drawing; the assets are cached).
 * Last line: {"bench":"page","inbox_rows","load_ms_p50","load_ms_max","html_bytes","sample_ms"}.
 */
import Fastify from 'fastify';
import { loadConfig } from '../src/config.js';
import { createDb } from '../src/db/client.js';
import { throwawayDatabase } from '../src/db/embedded.js';
import { runMigrations } from '../src/db/migrate.js';
import { opsPageRoutes } from '../src/ops/page/routes.js';
import { sampleOpsMetrics } from '../src/worker/ops-samples.js';

const ROWS = Number(process.env.BENCH_PAGE_ROWS ?? 1_000_000);
const LOADS = Number(process.env.BENCH_PAGE_LOADS ?? 20);
const SOURCES = 20;

async function main() {
  const started = Date.now();
  const { url, stop } = await throwawayDatabase('bench-page', { durable: false });
  const db = createDb({ url, max: 4 });
  const app = Fastify({ logger: false });
  try {
    await runMigrations(url);
    const { sql } = db;
    await sql`
      insert into sources (id, name, api_token)
      select 'src_' || lpad(i::text, 4, '0'), 'merchant-' || i, 'tok-' || i from generate_series(1, ${SOURCES}::int) as i`;
    // One statement: ids grow with received_at (as they do in wharf), the newest row a few seconds old.
    await sql`
      insert into inbox_events (source_id, event_id, topic, body, headers, via, status, last_error, received_at, processed_at, attempts)
      select 'src_' || lpad((1 + i % ${SOURCES}::int)::text, 4, '0'), 'evt_' || i,
             (array['order.shipped', 'order.delivered', 'shipment.updated', 'billing.charge.created'])[1 + i % 4],
             '{"id":' || i || ',"status":"Processing","reference_id":"ref-' || i || '","items":[{"sku":"SKU-' || (i % 997) || '","qty":1}]}',
             '{"webhook-id":"evt_x","user-agent":"ShipBob-Webhooks/1.0"}'::jsonb,
             case when i % 7 = 0 then 'poll' else 'webhook' end,
             case when i > ${ROWS}::int * 0.97 then 'pending' when i % 100 = 0 then 'dead' else 'processed' end,
             case when i % 100 = 0 and i <= ${ROWS}::int * 0.97 then 'apply failed: reason number ' || (i / 100) % 25 end,
             r, case when i > ${ROWS}::int * 0.97 then null else r + (20 + i % 200) * interval '1 millisecond' end, 1
        from generate_series(1, ${ROWS}::int) as i,
             lateral (select now() - interval '5 seconds' - (${ROWS}::int - i) * (interval '24 hours' / ${ROWS}::int)) as t(r)`;
    await sql`
      insert into poll_cursors (source_id, stream, cursor_time, last_run_at, last_success_at, catches)
      select s.id, st, now() - interval '10 minutes', now() - interval '2 minutes', now() - interval '2 minutes', (random() * 100)::int
        from sources s, unnest(array['orders', 'transactions', 'returns', 'timelines']) as st`;
    await sql`
      insert into quarantine (source_id, reason, status_code, size_bytes, received_at)
      select 'src_' || lpad((1 + i % ${SOURCES}::int)::text, 4, '0'), 'bad_signature', 401, 100, now() - (i * interval '17 seconds')
        from generate_series(1, 5000) as i`;
    // 7 days of per-minute samples (the default retention), ending two minutes ago.
    await sql`
      insert into ops_samples (at, window_ms, inbox_pending, pending_capped, oldest_pending_age_s, dead, applied,
                               lag_p50_ms, lag_p99_ms, lag_count, max_inbox_id, scan_from_id)
      select date_trunc('minute', now()) - interval '2 minutes' - i * interval '1 minute', 60000, (i % 500), false,
             (i % 90)::float8, 10000, 600 + i % 400, 40 + i % 30, 200 + i % 300, 500,
             ${ROWS}::int - 5000, ${ROWS}::int * 0.97
        from generate_series(0, 7 * 1440 - 1) as i`;
    await sql`
      insert into ops_source_samples (at, source_id, webhook_events, poll_events, replay_events, catches)
      select date_trunc('minute', now()) - interval '2 minutes' - m * interval '1 minute', s.id, 30, 5, 0, (m % 40 = 0)::int
        from generate_series(0, 1439) as m, sources s`;
    await sql`analyze`;
    const seeded = Date.now();
    const t0 = performance.now();
    await sampleOpsMetrics(sql, { now: new Date(), retentionDays: 7 });
    const sampleMs = performance.now() - t0;

    await app.register(opsPageRoutes, { sql, config: loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent' }) });
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < LOADS + 2; i++) {
      const s = performance.now();
      const res = await fetch(`${address}/`);
      const html = await res.text();
      if (res.status !== 200) throw new Error(`GET / answered ${res.status}`);
      if (i >= 2) times.push(performance.now() - s);
      bytes = html.length;
    }
    times.sort((a, b) => a - b);
    const p50 = times[Math.floor(times.length / 2)];
    const max = times[times.length - 1];
    const rows: [string, string][] = [
      ['inbox rows', ROWS.toLocaleString('en-US')],
      ['seed + analyze', `${((seeded - started) / 1000).toFixed(1)} s`],
      ['one sample (sample_ops_metrics)', `${sampleMs.toFixed(0)} ms`],
      [`page loads`, String(times.length)],
      ['load p50', `${p50.toFixed(0)} ms`],
      ['load max', `${max.toFixed(0)} ms`],
      ['html', `${(bytes / 1024).toFixed(0)} KiB`],
      ['goal', 'p50 < 1000 ms'],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
    console.log(
      JSON.stringify({
        bench: 'page',
        inbox_rows: ROWS,
        load_ms_p50: Math.round(p50),
        load_ms_max: Math.round(max),
        html_bytes: bytes,
        sample_ms: Math.round(sampleMs),
      }),
    );
  } finally {
    await app.close();
    await db.close();
    await stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
