import type { Queryable } from '../db/client.js';

/**
 * Quarantine: one row per rejected webhook request, for diagnosis (a spike of `bad_signature` after a rotation shows
 * here). Never the body, a secret or a signature: only what identifies and sizes the request.
 */

export const QuarantineReason = {
  missingHeaders: 'missing_headers',
  badTimestamp: 'bad_timestamp',
  staleTimestamp: 'stale_timestamp',
  futureTimestamp: 'future_timestamp',
  badSignature: 'bad_signature',
  badWebhookId: 'bad_webhook_id',
  malformedJson: 'malformed_json',
  unknownSource: 'unknown_source',
  bodyTooLarge: 'body_too_large',
  unsupportedMediaType: 'unsupported_media_type',
  rateLimited: 'rate_limited',
  dbUnavailable: 'db_unavailable',
} as const;

export interface QuarantineRow {
  /** As given in the URL, whether or not such a source exists. */
  sourceId: string | null;
  reason: string;
  statusCode: number;
  eventId: string | null;
  sizeBytes: number;
  /** Hex sha256 of the body when it was read (not for 413, 415 and 429, refused before reading). */
  bodySha256: string | null;
  remoteAddr: string | null;
}

/** Inserts rejected requests in one statement. Not idempotent (each call is new evidence). */
export async function insertQuarantineRows(sql: Queryable, rows: readonly QuarantineRow[]): Promise<void> {
  if (rows.length === 0) return;
  const col = <T>(f: (r: QuarantineRow) => T) => rows.map(f);
  await sql`
    insert into quarantine (source_id, reason, status_code, event_id, size_bytes, body_sha256, remote_addr)
    select * from unnest(${col((r) => r.sourceId)}::text[], ${col((r) => r.reason)}::text[],
                         ${col((r) => r.statusCode)}::int[], ${col((r) => r.eventId)}::text[],
                         ${col((r) => r.sizeBytes)}::int[], ${col((r) => r.bodySha256)}::text[],
                         ${col((r) => r.remoteAddr)}::text[])`;
}

export interface QuarantineWriter {
  /** Buffers a row; never waits. When the buffer is full the row is dropped and counted. */
  record(row: QuarantineRow): void;
  /** Writes whatever is buffered now (tests await it). */
  flush(): Promise<void>;
  close(): Promise<void>;
  readonly dropped: number;
}

export interface QuarantineWriterOptions {
  sql: Queryable;
  /** Rows held at most; a flood of bad requests beyond it is counted in `dropped`, not stored. */
  maxBuffered: number;
  /** Rows per insert. */
  maxBatch: number;
  /** How long a row may wait for companions before it is written. */
  delayMs: number;
  onError(err: unknown, rows: number): void;
}

/**
 * Writes quarantine rows in batches with at most one insert in flight, so a flood of bad requests costs one pooled
 * connection at most and never delays the acknowledgement of good ones. A failed insert drops its rows (counted):
 * losing diagnostics is better than holding memory while the database is down.
 */
export function createQuarantineWriter(opts: QuarantineWriterOptions): QuarantineWriter {
  let buffer: QuarantineRow[] = [];
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;

  const write = async (): Promise<void> => {
    while (buffer.length > 0) {
      const rows = buffer.slice(0, opts.maxBatch);
      buffer = buffer.slice(rows.length);
      try {
        await insertQuarantineRows(opts.sql, rows);
      } catch (err) {
        dropped += rows.length;
        opts.onError(err, rows.length);
      }
    }
  };

  const flush = (): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (!writing) {
      writing = write().finally(() => {
        writing = undefined;
      });
      return writing;
    }
    // A write is running: it loops until the buffer is empty, so waiting for it covers what is buffered now.
    return writing;
  };

  return {
    record(row) {
      if (buffer.length >= opts.maxBuffered) {
        dropped++;
        return;
      }
      buffer.push(row);
      if (!timer && !writing) timer = setTimeout(() => void flush(), opts.delayMs);
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
