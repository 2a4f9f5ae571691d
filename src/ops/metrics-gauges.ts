import type { Config } from '../config.js';
import type { Sql } from '../db/client.js';
import { dbGauges, registry } from '../metrics.js';
import { readStatus } from './status.js';

/**
 * Renders the Prometheus text: this process's counters plus gauges read from the database now (readStatus: bounded,
 * under a statement timeout). When the database does not answer, the counters are still served and
 * `wharf_status_read_ok` tells the scraper the gauges are stale.
 */
export async function renderMetrics(sql: Sql, config: Config, pools: Record<string, number>): Promise<string> {
  for (const [pool, max] of Object.entries(pools)) dbGauges.dbPoolMax.set({ pool }, max);
  try {
    const s = await readStatus(sql, { staleAfterMs: config.staleLockAfterMs, timeoutMs: 2000 });
    dbGauges.inboxDepth.set(s.inbox.pending);
    dbGauges.inboxDepthCapped.set(s.inbox.pendingCapped ? 1 : 0);
    dbGauges.oldestPendingAge.set(s.inbox.oldestPendingAgeSeconds ?? 0);
    dbGauges.inboxByStatus.set({ status: 'dead' }, s.inbox.dead);
    dbGauges.inboxByStatus.set({ status: 'ignored' }, s.inbox.ignored);
    dbGauges.pollCursorAge.reset();
    dbGauges.pollCursorCatches.reset();
    for (const c of s.cursors) {
      const labels = { source: c.sourceId, stream: c.stream };
      if (c.ageSeconds !== null) dbGauges.pollCursorAge.set(labels, c.ageSeconds);
      dbGauges.pollCursorCatches.set(labels, c.catches);
    }
    dbGauges.rateBudgetThrottled.reset();
    // Budget keys are token hashes already (never a token).
    for (const b of s.rateBudgets) dbGauges.rateBudgetThrottled.set({ budget: b.key }, b.throttled);
    dbGauges.dbConnections.reset();
    for (const c of s.connections) dbGauges.dbConnections.set({ application: c.application, state: c.state }, c.count);
    dbGauges.quarantined.reset();
    for (const q of s.quarantine24h) dbGauges.quarantined.set({ reason: q.reason }, q.count);
    dbGauges.payloadDrift.reset();
    for (const d of s.drift) dbGauges.payloadDrift.set({ topic: d.topic, field: d.field, problem: d.problem }, d.count);
    dbGauges.resolveWaiting.reset();
    for (const r of s.resolves) dbGauges.resolveWaiting.set({ source: r.sourceId }, r.waiting);
    dbGauges.webhookSubscription.reset();
    for (const w of s.subscriptions) dbGauges.webhookSubscription.set({ source: w.sourceId, state: w.state ?? 'unchecked' }, 1);
    dbGauges.workersAlive.set(s.workers.filter((w) => w.alive).length);
    dbGauges.statusReadOk.set(1);
  } catch {
    dbGauges.statusReadOk.set(0);
  }
  return registry.metrics();
}
