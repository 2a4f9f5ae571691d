import { Agent as HttpAgent, request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { signatureHeader } from '../../../src/intake/signature.js';
import { createRandom } from './random.js';
import type { ChangeEvent } from './world.js';

/**
 * Delivers change events as the provider does: signed Standard Webhooks POSTs, at least once, out of order,
 * retried with exponential backoff, and (optionally) sometimes never. Every habit is drawn from a seeded PRNG in
 * enqueue order, so which events are dropped or duplicated is the same on every run.
 */

export interface RetryOptions {
  /** Attempts per delivery, the first included. Default 5. */
  maxAttempts?: number;
  /** Delay before the second attempt; doubles per attempt. Default 200. */
  baseDelayMs?: number;
  /** Default 5000. */
  maxDelayMs?: number;
}

export interface WebhookSenderOptions {
  /** Where a client's webhooks go. */
  target: (clientId: number) => string;
  /** The secrets to sign with (several during rotation: one `v1,` signature each). */
  secretFor: (clientId: number) => string[];
  /** Seeds the habits and the message ids. Default 1. */
  seed?: number;
  /** Share of events never sent (recorded in `dropped`), so only polling can find them. Default 0. */
  dropRate?: number;
  /** Share of events sent twice under the same webhook-id. Default 0. */
  duplicateRate?: number;
  /** Deliveries are shuffled within consecutive windows of this many. Default 1 (in order). */
  reorderWindow?: number;
  retry?: RetryOptions;
  /** Deliveries in flight at once. Default 32. */
  concurrency?: number;
  /** Socket inactivity allowed per attempt before it fails. Default 15000: the provider's quoted patience. */
  fetchTimeoutMs?: number;
  /** Clock for webhook-timestamp (ms). Default Date.now. */
  now?: () => number;
  /** Called for each attempt answered 2xx (a duplicate copy too): what the receiver acknowledged. */
  onDelivered?: (message: WebhookMessage) => void;
}

/** The provider's habits at a plausible strength, for demos and end-to-end tests. */
export const PROVIDER_HABITS = { dropRate: 0.02, duplicateRate: 0.05, reorderWindow: 16 } as const;

export interface WebhookMessage {
  /** webhook-id: `msg_` + 27 base62 characters, the same for retries and duplicates. */
  id: string;
  topic: ChangeEvent['topic'];
  clientId: number;
  /** The exact bytes sent (and signed). */
  body: string;
}

export interface WebhookSenderStats {
  /** HTTP attempts made, retries and duplicates included. */
  sent: number;
  /** Attempts answered 2xx. */
  delivered: number;
  /** Events never sent (dropRate). */
  dropped: number;
  /** Extra copies scheduled (duplicateRate). */
  duplicates: number;
  /** Attempts after a delivery's first. */
  retries: number;
  /** Deliveries given up after maxAttempts. */
  failed: number;
}

export interface WebhookSender {
  /** Schedules the events (after drops, duplicates and reordering); returns every message, dropped ones included. */
  enqueue(events: readonly ChangeEvent[]): WebhookMessage[];
  /** Resolves once every scheduled delivery has succeeded or been given up. */
  drain(): Promise<void>;
  readonly stats: WebhookSenderStats;
  readonly dropped: WebhookMessage[];
  readonly failed: WebhookMessage[];
}

interface Delivery {
  message: WebhookMessage;
  attempt: number;
}

export function createWebhookSender(options: WebhookSenderOptions): WebhookSender {
  const rng = createRandom(options.seed ?? 1);
  const maxAttempts = options.retry?.maxAttempts ?? 5;
  const baseDelayMs = options.retry?.baseDelayMs ?? 200;
  const maxDelayMs = options.retry?.maxDelayMs ?? 5000;
  const concurrency = options.concurrency ?? 32;
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 15_000;
  const reorderWindow = Math.max(1, options.reorderWindow ?? 1);
  const now = options.now ?? Date.now;

  const stats: WebhookSenderStats = { sent: 0, delivered: 0, dropped: 0, duplicates: 0, retries: 0, failed: 0 };
  const dropped: WebhookMessage[] = [];
  const failed: WebhookMessage[] = [];
  // A FIFO with a moving head: shift() on a long array is O(n).
  let queue: Delivery[] = [];
  let head = 0;
  let inFlight = 0;
  let backingOff = 0;
  let idle: (() => void)[] = [];
  // node:http with keep-alive rather than fetch: several times the throughput on loopback, which benchmarks need.
  const agents = {
    http: new HttpAgent({ keepAlive: true, maxSockets: concurrency }),
    https: new HttpsAgent({ keepAlive: true, maxSockets: concurrency }),
  };

  /** POSTs body and resolves with the response status once the response is read; rejects on error or timeout. */
  function post(url: string, body: string, headers: OutgoingHttpHeaders): Promise<number> {
    const secure = url.startsWith('https:');
    const send = secure ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method: 'POST',
          agent: secure ? agents.https : agents.http,
          headers: { ...headers, 'content-length': Buffer.byteLength(body) },
          timeout: fetchTimeoutMs,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no response within ${fetchTimeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  function enqueue(events: readonly ChangeEvent[]): WebhookMessage[] {
    const messages: WebhookMessage[] = [];
    const batch: Delivery[] = [];
    for (const event of events) {
      const message: WebhookMessage = {
        id: `msg_${rng.base62(27)}`,
        topic: event.topic,
        clientId: event.clientId,
        body: JSON.stringify(event.payload),
      };
      messages.push(message);
      if (rng.chance(options.dropRate ?? 0)) {
        stats.dropped++;
        dropped.push(message);
        continue;
      }
      batch.push({ message, attempt: 1 });
      if (rng.chance(options.duplicateRate ?? 0)) {
        stats.duplicates++;
        batch.push({ message, attempt: 1 });
      }
    }
    for (let i = 0; i < batch.length; i += reorderWindow) {
      const window = rng.shuffle(batch.slice(i, i + reorderWindow));
      batch.splice(i, window.length, ...window);
    }
    queue.push(...batch);
    pump();
    return messages;
  }

  function pump(): void {
    while (inFlight < concurrency && head < queue.length) {
      const delivery = queue[head++];
      inFlight++;
      void attempt(delivery).finally(() => {
        inFlight--;
        pump();
      });
    }
    if (head === queue.length) {
      queue = [];
      head = 0;
    }
    if (inFlight === 0 && backingOff === 0 && head === queue.length) {
      for (const resolve of idle) resolve();
      idle = [];
    }
  }

  async function attempt(delivery: Delivery): Promise<void> {
    const { message } = delivery;
    const timestamp = Math.floor(now() / 1000);
    const signature = signatureHeader(options.secretFor(message.clientId), message.id, timestamp, message.body);
    stats.sent++;
    if (delivery.attempt > 1) stats.retries++;
    let ok = false;
    try {
      const status = await post(options.target(message.clientId), message.body, {
        'content-type': 'application/json',
        'webhook-id': message.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signature,
        'x-webhook-topic': message.topic,
      });
      ok = status >= 200 && status < 300;
    } catch {
      // Network error or timeout: retried like a non-2xx.
    }
    if (ok) {
      stats.delivered++;
      options.onDelivered?.(message);
    } else if (delivery.attempt < maxAttempts) {
      backingOff++;
      const delay = Math.min(maxDelayMs, baseDelayMs * 2 ** (delivery.attempt - 1));
      setTimeout(() => {
        backingOff--;
        queue.push({ message, attempt: delivery.attempt + 1 });
        pump();
      }, delay);
    } else {
      stats.failed++;
      failed.push(message);
    }
  }

  return {
    enqueue,
    drain: () =>
      new Promise<void>((resolve) => {
        idle.push(resolve);
        pump();
      }),
    stats,
    dropped,
    failed,
  };
}
