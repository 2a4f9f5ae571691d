import type { Config } from '../config.js';
import type { Sql } from '../db/client.js';
import { dbGauges, markStatusRead } from '../metrics.js';
import { readStatus } from './status.js';

/** Pool names of our application names (wharf_db_pool_max uses the same). */
const POOL_OF_APPLICATION: Record<string, string> = {
  'wharf-web': 'web',
  'wharf-worker': 'worker-tasks',
  'wharf-worker-queue': 'worker-queue',
  'wharf-worker-express': 'worker-express',
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
 * The database gauges, read on a timer (METRICS_GAUGE_INTERVAL_MS) on a pool of their own (one connection), and
 * served from memory: a scrape, or any number of them, costs the database nothing and never takes a connection the
 * intake or a task needs. Each read is bounded (readStatus: capped counts, a statement timeout). When a read fails the
 * previous figures stay, `wharf_status_read_ok` is 0 and `wharf_status_age_seconds` (computed at each scrape) grows.
 */
export interface GaugeRefresher {
  /** Reads once now (tests call it; the timer calls it too). Never throws. */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

export function startGaugeRefresher(opts: {
  sql: Sql;
  config: Config;
  /** Connection bounds of this process's pools, exported as wharf_db_pool_max{pool}. */
  pools: Record<string, number>;
}): GaugeRefresher {
  let running: Promise<void> | undefined;
  let stopped = false;
  for (const [pool, max] of Object.entries(opts.pools)) dbGauges.dbPoolMax.set({ pool }, max);

  const read = async () => {
    try {
      const s = await readStatus(opts.sql, { staleAfterMs: opts.config.staleLockAfterMs, timeoutMs: 2000 });
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
      dbGauges.reconcileShortWindows.reset();
      dbGauges.reconcileNewestAge.reset();
      for (const r of s.reconcile) {
        const labels = { source: r.sourceId, stream: r.stream };
        dbGauges.reconcileShortWindows.set(labels, r.short.length);
        if (r.newestReconciled) dbGauges.reconcileNewestAge.set(labels, (s.at.getTime() - r.newestReconciled.getTime()) / 1000);
      }
      dbGauges.webhookMissShare.reset();
      dbGauges.webhookTrustEvents.reset();
      dbGauges.pollIntervalSeconds.reset();
      const today = s.at.toISOString().slice(0, 10);
      for (const r of s.trust) {
        const day = r.days.find((d) => d.day === today);
        for (const [window, f] of [['day', day], ['recent', r.recent]] as const) {
          if (!f) continue;
          dbGauges.webhookTrustEvents.set({ source: r.sourceId, window }, f.events);
          // No events, no share: the series is absent rather than a 0 that reads as "trusted".
          if (f.share !== null) dbGauges.webhookMissShare.set({ source: r.sourceId, window }, f.share);
        }
        if (r.interval && r.polled) dbGauges.pollIntervalSeconds.set({ source: r.sourceId, reason: r.interval.reason }, r.interval.ms / 1000);
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
      dbGauges.payloadDrift.reset();
      for (const d of s.drift) dbGauges.payloadDrift.set({ topic: d.topic, field: d.field, problem: d.problem }, d.count);
      dbGauges.resolveWaiting.reset();
      for (const r of s.resolves) dbGauges.resolveWaiting.set({ source: r.sourceId }, r.waiting);
      dbGauges.webhookSubscription.reset();
      for (const w of s.subscriptions) dbGauges.webhookSubscription.set({ source: w.sourceId, state: w.state ?? 'unchecked' }, 1);
      dbGauges.workersAlive.set(s.workers.filter((w) => w.alive).length);
      dbGauges.statusReadOk.set(1);
      markStatusRead();
    } catch {
      dbGauges.statusReadOk.set(0);
    }
  };

  const refresh = () => {
    running ??= read().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => {
    if (!stopped) void refresh();
  }, opts.config.metricsGaugeIntervalMs);
  timer.unref();
  void refresh();

  return {
    refresh,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
