import type { Sql } from '../db/client.js';
import { metrics } from '../metrics.js';
import { secretKey } from './signature.js';
import { findSourceWithSecrets } from './sources.js';

/** What the intake needs of a source: whether it takes webhooks, and the HMAC keys of its valid secrets. */
export interface IntakeSource {
  id: string;
  enabled: boolean;
  keys: Buffer[];
}

export interface SourceCache {
  /**
   * The source (null: unknown), from memory when its entry is younger than the TTL. Concurrent misses for one id share
   * one query. A failed query is not cached (it throws).
   */
  get(id: string): Promise<IntakeSource | null>;
  /** Reloads an entry older than `minAgeMs` (after a signature failure: a rotated secret is seen at once). */
  refresh(id: string, minAgeMs: number): Promise<IntakeSource | null> | undefined;
}

interface Entry {
  at: number;
  value: Promise<IntakeSource | null>;
}

/**
 * A small TTL cache keyed by source id. Unknown ids are cached too (a flood of 404s must not become a flood of
 * queries), and the entry count is bounded: past `maxEntries` the oldest entries go first (Map keeps insertion order).
 * Consequence of the TTL: enabling, disabling or expiring a secret takes effect within `ttlMs`.
 */
export function createSourceCache(opts: {
  sql: Sql;
  ttlMs: number;
  maxEntries: number;
  now: () => Date;
}): SourceCache {
  const entries = new Map<string, Entry>();

  const load = (id: string): Promise<IntakeSource | null> => {
    const at = opts.now().getTime();
    const value = findSourceWithSecrets(opts.sql, id, opts.now()).then((s) =>
      s ? { id: s.id, enabled: s.enabled, keys: s.secrets.map(secretKey) } : null,
    );
    entries.delete(id); // re-insert at the end: eviction order follows load order
    entries.set(id, { at, value });
    while (entries.size > opts.maxEntries) entries.delete(entries.keys().next().value as string);
    value.catch(() => {
      if (entries.get(id)?.value === value) entries.delete(id);
    });
    return value;
  };

  return {
    get(id) {
      const e = entries.get(id);
      if (e && opts.now().getTime() - e.at < opts.ttlMs) {
        metrics.sourceCacheLookups.inc({ result: 'hit' });
        return e.value;
      }
      metrics.sourceCacheLookups.inc({ result: 'miss' });
      return load(id);
    },
    refresh(id, minAgeMs) {
      const e = entries.get(id);
      if (e && opts.now().getTime() - e.at < minAgeMs) return undefined;
      return load(id);
    },
  };
}
