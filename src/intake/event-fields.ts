/**
 * What the intake reads from a delivery besides the signature: the topic and the event time. Defensive: the provider
 * publishes no schema, so anything unexpected yields null rather than an error (the event is stored either way).
 */

const EVENT_TIME_FIELDS = ['event_time', 'last_update_at', 'last_tracking_update_at'] as const;

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * An ISO 8601 instant PostgreSQL will accept as timestamptz, or null. Checked fully here (day of month included)
 * because one bad value cast in the batch insert would fail every request of the batch. Keeps the fraction (the
 * provider sends 7 digits; PostgreSQL rounds to microseconds). A value without a zone is taken as UTC.
 */
export function parseEventTime(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 40) return null;
  const m = ISO.exec(value);
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return null;
  if (d > new Date(Date.UTC(y, mo, 0)).getUTCDate()) return null;
  const zone = m[8] ? m[8].toUpperCase() : 'Z';
  if (zone !== 'Z' && Number(zone.slice(1, 3)) > 15) return null;
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7] ?? ''}${zone}`;
}

/** The first usable event time among the fields the provider is known to use. */
export function eventTimeOf(body: unknown): string | null {
  if (!isObject(body)) return null;
  for (const f of EVENT_TIME_FIELDS) {
    const t = parseEventTime(body[f]);
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
