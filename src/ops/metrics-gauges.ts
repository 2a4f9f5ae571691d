import type { Config } from '../config.js';
import type { Sql } from '../db/client.js';
import { dbGauges, registry } from '../metrics.js';
import { readStatus } from './status.js';

/** Pool names of our application names (wharf_db_pool_max uses the same). */
const POOL_OF_APPLICATION: Record<string, string> = {
  'wharf-web': 'web',
  'wharf-worker': 'worker-tasks',
  'wharf-worker-queue': 'worker-queue',
  'wharf-metrics': 'metrics',
  'wharf-ops': 'ops',
};

/** Connections per pool, in use (running a statement or inside a transaction) or idle, over every process. */
function poolUse(connections: { application: string; state: string; count: number }[]) {
  const byPool = new Map<string, { inUse: number; idle: number }>();
  for (const c of connections) {
    const pool = POOL_OF_APPLICATION[c.application] ?? 'other';
    const use = byPool.get(pool) ?? { inUse: 0, idle: 0 };
    if (c.state === 'idle') use.idle += c.count;
    else use.inUse += c.count;
    byPool.set(pool, use);
  }
  return byPool;
}

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
      // Every polled stream exports an age, a never-polled one since its source was created (so its alert can fire).
      if (c.polled) dbGauges.pollCursorAge.set(labels, c.ageSeconds ?? c.sourceAgeSeconds);
      dbGauges.pollCursorCatches.set(labels, c.catches);
    }
    dbGauges.rateBudgetThrottled.reset();
    // Budget keys are token hashes already (never a token).
    for (const b of s.rateBudgets) dbGauges.rateBudgetThrottled.set({ budget: b.key }, b.throttled);
    dbGauges.dbConnections.reset();
    for (const c of s.connections) dbGauges.dbConnections.set({ application: c.application, state: c.state }, c.count);
    dbGauges.dbPoolConnections.reset();
    for (const [pool, use] of poolUse(s.connections)) {
      dbGauges.dbPoolConnections.set({ pool, use: 'in_use' }, use.inUse);
      dbGauges.dbPoolConnections.set({ pool, use: 'idle' }, use.idle);
    }
    dbGauges.sources.set({ state: 'enabled' }, s.sources.enabled);
    dbGauges.sources.set({ state: 'disabled' }, s.sources.disabled);
    dbGauges.quarantined.reset();
    for (const q of s.quarantine24h) dbGauges.quarantined.set({ reason: q.reason }, q.count);
    dbGauges.workersAlive.set(s.workers.filter((w) => w.alive).length);
    dbGauges.statusReadOk.set(1);
  } catch {
    dbGauges.statusReadOk.set(0);
  }
  return registry.metrics();
}
