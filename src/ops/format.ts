import { DAY, HOUR, MINUTE, SECOND } from '../config.js';
import { parseMicros } from '../time.js';

/** Parsing and printing helpers of the ops commands. */

const UNITS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY };

export const DURATION_FORMS = 'a number with a unit: 1500ms, 90s, 5m, 24h, 7d';
export const DATE_FORMS = 'an ISO 8601 date or date-time (2026-11-01, 2026-11-01T08:00:00Z) or a duration ago (2h, 7d)';

/** "90s", "24h", "5m", "2d", "1500ms". A bare number is refused: `--overlap 24` meant 24 ms, never what was meant. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${JSON.stringify(text)} (use ${DURATION_FORMS})`);
  return Math.round(Number(m[1]) * UNITS[m[2]]);
}

/**
 * An ISO 8601 date (midnight UTC), date-time (UTC when it has no zone), or a duration meaning "that long before now"
 * (7d). Anything else, "1" or "Nov 1" included (Date would read them as 2001), is refused.
 */
export function parseSince(text: string, now: Date): Date {
  const t = text.trim();
  if (/^\d+(?:\.\d+)?(ms|s|m|h|d)$/.test(t)) return new Date(now.getTime() - parseDuration(t));
  const us = parseMicros(/^\d{4}-\d{2}-\d{2}$/.test(t) ? `${t}T00:00:00Z` : t);
  if (us === undefined) throw new Error(`not a date: ${JSON.stringify(text)} (use ${DATE_FORMS})`);
  return new Date(Math.floor(us / 1000));
}

/**
 * Provider- or user-supplied text made safe for a terminal: control characters (escape sequences, carriage returns,
 * bidirectional overrides) become a visible `?`, so a payload cannot rewrite the operator's screen.
 */
export function plain(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  return text.replace(/[\p{Cc}\p{Cf}]/gu, '?'); // controls (C0, DEL, C1) and format characters (bidi overrides)
}

/** Shows only what identifies a secret or token: its prefix (whsec_) and last 4 characters. */
export function mask(secret: string | null | undefined): string | null {
  if (!secret) return null;
  const prefix = secret.startsWith('whsec_') ? 'whsec_' : '';
  return secret.length - prefix.length >= 12 ? `${prefix}…${secret.slice(-4)}` : `${prefix}…`;
}

/** "3m 12s" style age; "-" for null. */
export function formatAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '-';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** A plain text table (left-aligned columns). */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : (plain(String(c)) as string))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** `[#####-----] 50/100` */
export function progressBar(done: number, total: number, width = 30): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`;
}
