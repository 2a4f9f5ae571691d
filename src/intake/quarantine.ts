import { createHash } from 'node:crypto';
import type { Queryable } from '../db/client.js';
import { metrics } from '../metrics.js';
import { VerifyFailure } from './signature.js';

/**
 * Quarantine: what the intake refused, for diagnosis (a spike of `bad_signature` after a rotation shows here), kept
 * bounded whatever is thrown at it. Refusals are counted per (source, reason, hour) in `quarantine_counts`, and only
 * the first few refusals of each such key keep a sample row in `quarantine` (size, body hash, event id, address: never
 * the body, a secret or a signature). Only refusals of a *known* source are written: an unknown source id and a client
 * over its unverified budget are counted in the process's metrics only, so random ids cost no row and no key.
 */

/** Every reason a request is refused for: the signature's own failures plus the intake's. */
export const QuarantineReason = {
  ...VerifyFailure,
  badWebhookId: 'bad_webhook_id',
  malformedJson: 'malformed_json',
  unknownSource: 'unknown_source',
  bodyTooLarge: 'body_too_large',
  unsupportedMediaType: 'unsupported_media_type',
  /** Over the per-source budget of verified deliveries. */
  rateLimited: 'rate_limited',
  /** Over the per-address budget of unverified requests: refused before anything is read, never written. */
  clientRateLimited: 'client_rate_limited',
  /** Over the process-wide bound of request bytes in flight: refused before the body is read. */
  bodyBudget: 'body_budget',
  dbUnavailable: 'db_unavailable',
  /** A verified delivery whose webhook-id is stored with a different body: acknowledged as a duplicate, not applied. */
  changedBody: 'changed_body',
  /** A client error of the framework without a reason of its own. */
  badRequest: 'bad_request',
  internalError: 'internal_error',
} as const;
export type QuarantineReason = (typeof QuarantineReason)[keyof typeof QuarantineReason];

/** Refusals that never reach the database, whatever the source: nothing durable per request. */
export const UNRECORDED_REASONS: ReadonlySet<QuarantineReason> = new Set([
  QuarantineReason.unknownSource,
  QuarantineReason.clientRateLimited,
]);

/** Counter buckets: one row per (source, reason) per hour. */
export const QUARANTINE_BUCKET_MS = 60 * 60 * 1000;
/** Sample rows per (source, reason, hour), per process. */
export const QUARANTINE_SAMPLES_PER_KEY = 3;

export interface Refusal {
  /** A known source's id (unknown ones are never recorded). */
  sourceId: string;
  reason: QuarantineReason;
  statusCode: number;
  eventId: string | null;
  sizeBytes: number;
  /** The body when it was read (not for 413 and refusals before reading): hashed only if sampled. */
  body: Buffer | null;
  remoteAddr: string | null;
}

interface CountRow {
  sourceId: string;
  reason: string;
  bucket: Date;
  statusCode: number;
  count: number;
  bytes: number;
}

interface SampleRow {
  sourceId: string;
  reason: string;
  statusCode: number;
  eventId: string | null;
  sizeBytes: number;
  bodySha256: string | null;
  remoteAddr: string | null;
}

/**
 * Adds counts and inserts samples in one statement. Counts are added to what is stored (several processes write the
 * same keys); samples are new rows. Not idempotent: each call is new evidence.
 */
export async function writeQuarantine(sql: Queryable, counts: readonly CountRow[], samples: readonly SampleRow[]): Promise<void> {
  if (counts.length === 0 && samples.length === 0) return;
  const c = <T>(f: (r: CountRow) => T) => counts.map(f);
  const s = <T>(f: (r: SampleRow) => T) => samples.map(f);
  await sql`
    with counted as (
      insert into quarantine_counts as q (source_id, reason, bucket, status_code, count, bytes)
      select * from unnest(${c((r) => r.sourceId)}::text[], ${c((r) => r.reason)}::text[],
                           ${c((r) => r.bucket.toISOString())}::text[]::timestamptz[], ${c((r) => r.statusCode)}::int[],
                           ${c((r) => r.count)}::bigint[], ${c((r) => r.bytes)}::bigint[])
      on conflict (source_id, reason, bucket)
        do update set count = q.count + excluded.count, bytes = q.bytes + excluded.bytes, status_code = excluded.status_code
      returning 1),
    sampled as (
      insert into quarantine (source_id, reason, status_code, event_id, size_bytes, body_sha256, remote_addr)
      select * from unnest(${s((r) => r.sourceId)}::text[], ${s((r) => r.reason)}::text[],
                           ${s((r) => r.statusCode)}::int[], ${s((r) => r.eventId)}::text[],
                           ${s((r) => r.sizeBytes)}::int[], ${s((r) => r.bodySha256)}::text[],
                           ${s((r) => r.remoteAddr)}::text[])
      returning 1)
    select (select count(*) from counted) as counted, (select count(*) from sampled) as sampled`;
}

export interface Quarantine {
  /** Counts a refusal (and keeps a sample while its key has fewer than the bound); never waits. */
  record(r: Refusal): void;
  /** Writes whatever is pending now (tests await it). */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Refusals not counted: the key table was full, or a write failed. */
  readonly dropped: number;
}

export interface QuarantineOptions {
  sql: Queryable;
  now: () => Date;
  /** Keys (source, reason, bucket) held between flushes; a key beyond it is dropped and counted in `dropped`. */
  maxKeys: number;
  /** How long counts gather before they are written: one statement per period at most, whatever the flood. */
  flushMs: number;
  onError(err: unknown, refusals: number): void;
}

/**
 * The intake's quarantine: counts in memory, written every `flushMs` in one statement, with at most one write in
 * flight. Memory is bounded by `maxKeys` pending keys plus the sample budget of the current and previous hour. A failed
 * write drops what it carried (counted): losing diagnostics beats holding memory while the database is down.
 */
export function createQuarantine(opts: QuarantineOptions): Quarantine {
  let counts = new Map<string, CountRow>();
  let samples: SampleRow[] = [];
  /** Samples taken per key (hour included), so each (source, reason, hour) keeps at most a few. */
  const sampled = new Map<string, number>();
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;

  const write = async (): Promise<void> => {
    while (counts.size > 0 || samples.length > 0) {
      const rows = [...counts.values()];
      const taken = samples;
      counts = new Map();
      samples = [];
      try {
        await writeQuarantine(opts.sql, rows, taken);
        metrics.quarantineRowsWritten.inc({ table: 'quarantine_counts' }, rows.length);
        metrics.quarantineRowsWritten.inc({ table: 'quarantine' }, taken.length);
      } catch (err) {
        const n = rows.reduce((sum, r) => sum + r.count, 0);
        dropped += n;
        opts.onError(err, n);
      }
    }
  };

  const flush = (): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    // A running write loops until nothing is pending, so waiting for it covers what is pending now.
    writing ??= write().finally(() => {
      writing = undefined;
      // Recorded after the loop's last look: the next period writes it.
      if (!timer && (counts.size > 0 || samples.length > 0)) timer = setTimeout(() => void flush(), opts.flushMs);
    });
    return writing;
  };

  return {
    record(r) {
      const at = opts.now().getTime();
      const bucketMs = at - (at % QUARANTINE_BUCKET_MS);
      const key = `${r.sourceId}\u0000${r.reason}\u0000${bucketMs}`;
      let row = counts.get(key);
      if (!row) {
        if (counts.size >= opts.maxKeys) {
          dropped++;
          return;
        }
        row = { sourceId: r.sourceId, reason: r.reason, bucket: new Date(bucketMs), statusCode: r.statusCode, count: 0, bytes: 0 };
        counts.set(key, row);
      }
      row.count++;
      row.bytes += r.sizeBytes;
      const taken = sampled.get(key) ?? 0;
      if (taken < QUARANTINE_SAMPLES_PER_KEY) {
        if (taken === 0) forgetOldBuckets(sampled, bucketMs);
        sampled.set(key, taken + 1);
        samples.push({
          sourceId: r.sourceId,
          reason: r.reason,
          statusCode: r.statusCode,
          eventId: r.eventId,
          sizeBytes: r.sizeBytes,
          bodySha256: r.body ? createHash('sha256').update(r.body).digest('hex') : null,
          remoteAddr: r.remoteAddr,
        });
      }
      if (!timer && !writing) timer = setTimeout(() => void flush(), opts.flushMs);
    },
    flush,
    async close() {
      await flush();
    },
    get dropped() {
      return dropped;
    },
  };
}

/** Drops sample tallies of buckets before the previous one (keys end with their bucket). */
function forgetOldBuckets(sampled: Map<string, number>, bucketMs: number) {
  if (sampled.size < 1000) return;
  for (const key of sampled.keys()) {
    const b = Number(key.slice(key.lastIndexOf('\u0000') + 1));
    if (b < bucketMs - QUARANTINE_BUCKET_MS) sampled.delete(key);
  }
}
