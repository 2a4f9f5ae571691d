import { parseInstant } from '../time.js';

/**
 * What the intake reads from a delivery besides the signature: the topic and the event time. Defensive: the provider
 * publishes no schema, so anything unexpected yields null rather than an error (the event is stored either way).
 */

const EVENT_TIME_FIELDS = ['event_time', 'last_update_at', 'last_tracking_update_at'] as const;

/** The first usable event time among the fields the provider is known to use. */
export function eventTimeOf(body: unknown): string | null {
  if (!isObject(body)) return null;
  for (const f of EVENT_TIME_FIELDS) {
    const t = parseInstant(body[f]);
    if (t) return t;
  }
  return null;
}

/** Longest webhook-id, topic or source id the intake stores (a longer id would also overflow the inbox's unique index). */
export const MAX_KEY_CHARS = 200;

/**
 * Whether PostgreSQL can store the string as text and inside jsonb: no NUL (refused by both), no lone surrogate
 * (a JSON escape of one is refused by jsonb, and postgres.js would silently replace it in text).
 */
export const isStorable = (s: string): boolean => !s.includes('\u0000') && !/\p{Cs}/u.test(s);

/** An identifier (webhook-id, topic, source id) worth storing or looking up: short, no control characters. */
export const isKey = (s: string): boolean => s.length <= MAX_KEY_CHARS && !/[\p{Cc}\p{Cs}]/u.test(s);

/**
 * `x-webhook-topic`, else the body's `topic` or `type`; the first that is a usable key (a NUL from a JSON escape in the
 * body would make PostgreSQL refuse the whole group-commit batch).
 */
export function topicOf(header: string | undefined, body: unknown): string | null {
  if (header && isKey(header)) return header;
  if (!isObject(body)) return null;
  for (const f of ['topic', 'type'] as const) {
    const v = body[f];
    if (typeof v === 'string' && v !== '' && isKey(v)) return v;
  }
  return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
