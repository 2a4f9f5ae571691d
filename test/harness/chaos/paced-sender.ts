import { Agent, request } from 'node:http';
import { signatureHeader } from '../../../src/intake/signature.js';

/**
 * Sends signed webhooks at a fixed rate on a fixed schedule: request i is due at `start + i / rate`. Latency is
 * measured from that intended time, not from when the request left, so a stalled server cannot hide its stall by
 * slowing the sender down (coordinated omission). No retries: a non-2xx or a network error counts as an error.
 */

export interface PacedWebhook {
  url: string;
  id: string;
  topic: string;
  body: string;
  secrets: string[];
}

export interface PacedResult {
  /** Per request, in schedule order: intended send time and 2xx time (epoch ms; ackedAt NaN on error). */
  intendedAt: Float64Array;
  ackedAt: Float64Array;
  sent: number;
  errors: number;
  /** A few error descriptions (status codes, messages) for the report. */
  errorSamples: string[];
}

export async function sendPaced(p: {
  webhooks: readonly PacedWebhook[];
  ratePerSecond: number;
  /** Sockets at most (keep-alive). Requests due while all are busy wait, and their latency shows it. */
  maxSockets?: number;
}): Promise<PacedResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: p.maxSockets ?? 64 });
  const n = p.webhooks.length;
  const intendedAt = new Float64Array(n);
  const ackedAt = new Float64Array(n).fill(Number.NaN);
  const errorSamples: string[] = [];
  let errors = 0;
  let done = 0;
  const start = Date.now() + 50;
  const intervalMs = 1000 / p.ratePerSecond;

  await new Promise<void>((resolve) => {
    let next = 0;
    const fail = (what: string) => {
      errors++;
      if (errorSamples.length < 5) errorSamples.push(what);
    };
    const finish = () => {
      if (++done === n) resolve();
    };
    const fire = (i: number) => {
      const w = p.webhooks[i];
      const timestamp = Math.floor(Date.now() / 1000);
      const req = request(w.url, {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(w.body),
          'webhook-id': w.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(w.secrets, w.id, timestamp, w.body),
          'x-webhook-topic': w.topic,
        },
        timeout: 15_000,
      }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) ackedAt[i] = Date.now();
          else fail(`HTTP ${res.statusCode}`);
          finish();
        });
      });
      req.on('timeout', () => req.destroy(new Error('no response within 15 s')));
      req.on('error', (err) => {
        fail(err.message);
        finish();
      });
      req.end(w.body);
    };
    // A coarse timer that fires everything due: setTimeout cannot keep a 2 ms period on a busy machine, the schedule can.
    const tick = () => {
      const now = Date.now();
      while (next < n && start + next * intervalMs <= now) {
        intendedAt[next] = start + next * intervalMs;
        fire(next++);
      }
      if (next < n) setTimeout(tick, Math.max(1, Math.min(5, start + next * intervalMs - Date.now())));
    };
    if (n === 0) resolve();
    else setTimeout(tick, 50);
  });
  agent.destroy();
  return { intendedAt, ackedAt, sent: n, errors, errorSamples };
}

/** The q-quantile (0..1) of the finite values, by nearest rank; NaN when there are none. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const finite = Array.from(values).filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  return finite[Math.min(finite.length - 1, Math.max(0, Math.ceil(q * finite.length) - 1))];
}
