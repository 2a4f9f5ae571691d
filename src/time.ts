/**
 * Provider instants as integer microseconds since the epoch (PostgreSQL's precision). Versions are compared in JS
 * (collapsing a chunk) and in SQL (the upsert guard); both see the same value because the drain sends PostgreSQL the
 * string `isoFromMicros` makes, never the provider's own (7 fractional digits would be rounded there, truncated here).
 */

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,12}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** The provider's usual shape (UTC, `Z`, fraction optional): parsed natively, the hot path. */
const UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d{1,12}))?Z$/;

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const daysInMonth = (y: number, mo: number) =>
  mo === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : DAYS[mo - 1];

/** Microseconds of an ISO 8601 string (a value without a zone is UTC), or undefined when it is not a real instant. */
export function parseMicros(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length > 48) return undefined;
  const fast = UTC.exec(value);
  if (fast) {
    // Fields read in place (the drain parses several per event: Date.parse and a print-back check cost 3x this).
    const y = Number(value.slice(0, 4));
    const mo = Number(value.slice(5, 7));
    const d = Number(value.slice(8, 10));
    const h = Number(value.slice(11, 13));
    const mi = Number(value.slice(14, 16));
    const s = Number(value.slice(17, 19));
    if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || s > 59) return undefined;
    // Date.UTC maps years 0-99 to 1900-1999; those are outside what exact() accepts anyway.
    if (y < 100) return undefined;
    return exact(Date.UTC(y, mo - 1, d, h, mi, s) * 1000 + Number((fast[1] ?? '').padEnd(6, '0').slice(0, 6)));
  }
  const m = ISO.exec(value.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi] = [m[1], m[2], m[3], m[4], m[5]].map(Number);
  const s = m[6] ? Number(m[6]) : 0;
  if (y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return undefined;
  if (d > new Date(Date.UTC(y, mo, 0)).getUTCDate()) return undefined;
  let offsetMin = 0;
  const zone = m[8]?.toUpperCase();
  if (zone && zone !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2)) : 0;
    if (oh > 15 || om > 59) return undefined;
    offsetMin = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // Date.UTC maps years 0-99 to 1900-1999
  date.setUTCHours(h, mi, s, 0);
  const fraction = Number((m[7] ?? '').padEnd(6, '0').slice(0, 6));
  return exact((date.getTime() - offsetMin * 60_000) * 1000 + fraction);
}

/**
 * Only instants whose microseconds a JS number holds exactly (years 1685 to 2255): past that the count is rounded and
 * isoFromMicros prints another instant, or one PostgreSQL refuses (`+010000-01-01…` for 9999-12-31T23:59:59.999999Z,
 * year 0 for 0001-01-01T00:00:00+01:00), which failed the whole event in the database instead of reading as "not an
 * instant" here.
 */
const exact = (us: number): number | undefined => (Number.isSafeInteger(us) ? us : undefined);

/** ISO 8601 UTC with 6 fractional digits. */
export function isoFromMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  const rest = us - ms * 1000;
  return `${new Date(ms).toISOString().slice(0, -1)}${String(rest).padStart(3, '0')}Z`;
}

/** The first field that holds a real instant, in microseconds. */
export function firstMicros(...values: unknown[]): number | undefined {
  for (const v of values) {
    const us = parseMicros(v);
    if (us !== undefined) return us;
  }
  return undefined;
}

/**
 * A secondary timestamp (created_date, delivery_date…), or null when absent or not an instant. The provider's usual
 * shape passes as it is (PostgreSQL parses it; a value it still refuses fails the batch and bisection finds it).
 */
export function optionalIso(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  if (value.length <= 48 && UTC.test(value)) return value;
  const us = parseMicros(value);
  return us === undefined ? null : isoFromMicros(us);
}

/**
 * A provider instant as PostgreSQL's canonical ISO string (UTC, microseconds), or null when it is not one: the one
 * parser every path uses (intake's event time, the pollers' ids and times, the drain), so they agree on what an
 * instant is. Checked fully here (day of month included): one bad value cast in a batch insert would fail the batch.
 */
export function parseInstant(value: unknown): string | null {
  const us = parseMicros(value);
  return us === undefined ? null : isoFromMicros(us);
}
