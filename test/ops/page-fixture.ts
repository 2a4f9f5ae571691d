import type { Sql } from '../../src/db/client.js';
import { insertSource } from '../../src/intake/sources.js';
import { sampleOpsMetrics } from '../../src/worker/ops-samples.js';
import { testKeys } from '../helper.js';

/**
 * A populated state for the ops page's tests: three sources (one healthy, one whose webhooks fail while polling
 * catches up, one disabled and silent), processed, pending and dead inbox rows received in the minute before `now`,
 * poll cursors with catches, rejected requests, workers (one stale), a released lock, reconciled and short windows,
 * 24 h of earlier samples, and one real sample of the last minute by the worker's sampler.
 */
export interface PageFixture {
  now: Date;
  sources: { acme: string; globex: string; initech: string };
  deadReasons: (string | null)[];
}

export const REASON_NOT_OBJECT = 'body is not a JSON object';
export const REASON_APPLY = 'apply failed: simulated <b>bug</b> & friends';

export async function populateOpsState(sql: Sql, now = new Date()): Promise<PageFixture> {
  const acme = await insertSource(sql, testKeys, { name: 'acme', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', apiToken: 'tok-acme' });
  const globex = await insertSource(sql, testKeys, { name: 'globex', secret: 'whsec_Zk1t8nQ2wXc4vB6mN0pL3sD5fG7hJ9kA', apiToken: 'tok-globex' });
  const initech = await insertSource(sql, testKeys, { name: 'initech', secret: 'whsec_Qw2Er4Ty6Ui8Op0As1Df3Gh5Jk7Lz9Xc' });
  await sql`update sources set enabled = false where id = ${initech}`;
  const floor = Math.floor(now.getTime() / 60_000) * 60_000;
  const t = (msBeforeFloor: number) => new Date(floor - msBeforeFloor);

  // rows: source, n, via, status, last_error, processing lag (ms)
  const plan: [string, number, string, string, string | null, number][] = [
    [acme, 40, 'webhook', 'processed', null, 200],
    [acme, 3, 'webhook', 'pending', null, 0],
    [acme, 4, 'webhook', 'dead', REASON_NOT_OBJECT, 100],
    [globex, 5, 'webhook', 'processed', null, 4000],
    [globex, 12, 'poll', 'processed', null, 50],
    [globex, 2, 'webhook', 'dead', REASON_APPLY, 300],
    [globex, 1, 'poll', 'dead', null, 300],
  ];
  let k = 0;
  for (const [sourceId, n, via, status, error, lag] of plan) {
    for (let i = 0; i < n; i++, k++) {
      const received = t(50_000 - k * 100);
      const processed = status === 'pending' ? null : new Date(received.getTime() + lag);
      const body =
        error === REASON_NOT_OBJECT ? '"a string"' : JSON.stringify({ id: 1000 + k, status: 'Processing', note: `event ${k}` });
      await sql`
        insert into inbox_events (source_id, event_id, topic, body, headers, via, status, last_error, received_at, processed_at, attempts)
        values (${sourceId}, ${`evt_${k}`}, ${via === 'poll' ? 'order.polled' : 'order.shipped'}, ${body},
                ${JSON.stringify({ 'webhook-id': `evt_${k}`, 'user-agent': 'ShipBob-Webhooks/1.0' })}::text::jsonb,
                ${via}, ${status}, ${error}, ${received}, ${processed}, ${status === 'pending' ? 0 : 1})`;
    }
  }
  await sql`
    insert into poll_cursors (source_id, stream, cursor_time, last_run_at, last_success_at, catches)
    values (${acme}, 'orders', ${t(3_600_000)}, ${t(120_000)}, ${t(120_000)}, 1),
           (${globex}, 'orders', ${t(3_600_000)}, ${t(60_000)}, ${t(60_000)}, 9),
           (${globex}, 'transactions', ${t(7_200_000)}, ${t(600_000)}, ${t(900_000)}, 1)`;
  await sql`update poll_cursors set last_error = 'provider answered 500' where source_id = ${globex} and stream = 'transactions'`;
  await sql`
    insert into quarantine (source_id, reason, status_code, size_bytes, received_at)
    values (${acme}, 'bad_signature', 401, 10, ${t(5_000)}), (${acme}, 'bad_signature', 401, 10, ${t(3_600_000)}),
           (${acme}, 'stale_timestamp', 401, 10, ${t(7_200_000)}), (${acme}, 'bad_signature', 401, 10, ${t(3 * 86_400_000)}),
           (${globex}, 'bad_signature', 401, 10, ${t(60_000)})`;
  // Refusals of known sources are counted per (source, reason, hour); quarantine keeps a few samples (above).
  await sql`
    insert into quarantine_counts (source_id, reason, bucket, status_code, count, bytes)
    values (${acme}, 'bad_signature', date_trunc('hour', ${now}::timestamptz), 401, 2, 20),
           (${acme}, 'stale_timestamp', date_trunc('hour', ${now}::timestamptz) - interval '2 hours', 401, 1, 10),
           (${acme}, 'bad_signature', date_trunc('hour', ${now}::timestamptz) - interval '3 days', 401, 5, 50),
           (${globex}, 'bad_signature', date_trunc('hour', ${now}::timestamptz), 401, 1, 10)`;
  await sql`
    insert into webhook_subscriptions (source_id, state, subscription_ids, missing_topics, checked_at)
    values (${acme}, 'ok', '{"sub_1"}', '{}', ${t(300_000)}), (${globex}, 'topics_missing', '{"sub_2"}', '{"order.delivered"}', ${t(300_000)})`;
  await sql`
    insert into worker_heartbeats (worker_id, host, pid, started_at, last_seen_at)
    values ('worker-a1', 'host-a', 101, ${t(7_200_000)}, ${now}), ('worker-b2', 'host-b', 202, ${t(9_000_000)}, ${t(900_000)})`;
  await sql`
    insert into lock_releases (worker_id, job_ids, queue_names, last_seen_at, released_by, released_at)
    values ('worker-z9', '{"17","18"}', '{}', ${t(4_000_000)}, 'clear_stale_locks', ${t(3_000_000)})`;

  // Reconciliation: acme's last three closed days counted equal; globex's newest day short (the provider counts 40,
  // wharf holds 38 complete), the two before it equal; initech never reconciled.
  const day = Math.floor(now.getTime() / 86_400_000) * 86_400_000;
  const win = (d: number) => [new Date(day - d * 86_400_000), new Date(day - (d - 1) * 86_400_000)];
  for (const [sourceId, d, provider, wharf, state] of [
    [acme, 3, 12, 12, 'reconciled'], [acme, 2, 15, 15, 'reconciled'], [acme, 1, 9, 9, 'reconciled'],
    [globex, 3, 30, 30, 'reconciled'], [globex, 2, 31, 31, 'reconciled'], [globex, 1, 40, 38, 'short'],
  ] as const) {
    const [start, end] = win(d);
    await sql`
      insert into reconcile_windows (source_id, stream, window_start, window_end, provider_count, wharf_count, repolled, state, checked_at)
      values (${sourceId}, 'orders', ${start}, ${end}, ${provider}, ${wharf}, ${provider - wharf}, ${state}, ${t(600_000)})`;
  }

  // 24 h of earlier samples, one every 10 minutes (a morning backlog drained by noon), ending one minute before the
  // last real window so that the sampler's next window is exactly the minute the rows above were received in.
  await sql`
    insert into ops_samples (at, window_ms, inbox_pending, pending_capped, oldest_pending_age_s, dead, applied,
                             lag_p50_ms, lag_p99_ms, lag_count, max_inbox_id, scan_from_id)
    select ${new Date(floor - 60_000)}::timestamptz - (i * interval '10 minutes'), 600000,
           (200 + 180 * sin(i / 20.0))::int, false, 30 + 25 * cos(i / 15.0), 3, (600 + 400 * sin(i / 9.0))::int * 10,
           120 + 60 * sin(i / 7.0), 900 + 500 * cos(i / 11.0), 100, 0, 0
      from generate_series(0, 143) as i`;
  await sampleOpsMetrics(sql, { now, retentionDays: 7 });
  return { now, sources: { acme, globex, initech }, deadReasons: [REASON_NOT_OBJECT, REASON_APPLY, null] };
}
