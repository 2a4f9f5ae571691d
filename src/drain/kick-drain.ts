import type { Sql } from '../db/client.js';

/**
 * Wakes the drain after the intake commits, without a hot row: each process coalesces its kicks into at most one
 * `add_job` per debounce window. The job key keeps one drain queued at a time; if the drain is running, graphile-worker
 * queues a new one, so events committed during a drain are never left waiting. A lost kick (crash, error) costs at most
 * the cron safety net's minute.
 */
export interface DrainKicker {
  kick(): void;
  close(): Promise<void>;
}

export const DRAIN_TASK = 'drain';
export const DRAIN_JOB_KEY = 'drain';

/** Queues a drain now (one statement). Idempotent while one waits: the job key keeps a single queued drain. */
export async function kickDrain(sql: Sql): Promise<void> {
  await sql`select graphile_worker.add_job(${DRAIN_TASK}, job_key := ${DRAIN_JOB_KEY}, job_key_mode := 'preserve_run_at', max_attempts := 25)`;
}

export function createDrainKicker(sql: Sql, debounceMs: number, onError: (err: unknown) => void): DrainKicker {
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> | undefined;
  let closed = false;

  const fire = () => {
    timer = undefined;
    inflight = kickDrain(sql)
      .catch(onError)
      .finally(() => {
        inflight = undefined;
      });
  };

  return {
    kick() {
      if (closed || timer) return;
      timer = setTimeout(fire, debounceMs);
    },
    async close() {
      closed = true;
      if (timer) {
        clearTimeout(timer);
        fire(); // flush the pending kick so the last events do not wait for cron
      }
      await inflight;
    },
  };
}
