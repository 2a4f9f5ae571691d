/**
 * drizzle's postgres-js driver replaces postgres.js's timestamp parsers with pass-through, so raw `sql` on a createDb
 * handle returns timestamptz as text ('2026-11-22 22:35:29.18+00'), while a bare postgres.js client returns Dates.
 * Our query functions return Dates either way through this.
 */
export function toDate(v: Date | string | null | undefined): Date | null {
  if (v === null || v === undefined) return null;
  return v instanceof Date ? v : new Date(v);
}
