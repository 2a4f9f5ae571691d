import { DAY, HOUR, MINUTE, SECOND } from '../config.js';

/** Parsing and printing helpers of the ops commands. */

const UNITS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY };

/** "90s", "24h", "5m", "2d", "1500ms" or a bare number of milliseconds. Throws on anything else. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${JSON.stringify(text)} (use e.g. 60s, 24h, 7d)`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']);
}

/** An ISO date/time, or a duration meaning "that long before now" (e.g. 7d). */
export function parseSince(text: string, now: Date): Date {
  if (/^\d+(?:\.\d+)?(ms|s|m|h|d)$/.test(text.trim())) return new Date(now.getTime() - parseDuration(text));
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new Error(`not a date: ${JSON.stringify(text)} (use ISO 8601 or e.g. 7d)`);
  return d;
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
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** `[#####-----] 50/100` */
export function progressBar(done: number, total: number, width = 30): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`;
}
