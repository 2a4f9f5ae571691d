import type { Sql } from '../db/client.js';
import { metrics } from '../metrics.js';
import { isUsableKey, secretKey } from './signature.js';
import type { KeyRing } from '../key-ring.js';
import { findSourceWithSecrets, listEnabledSourceIds, openSourceSecrets } from './sources.js';

/** What the intake needs of a source: whether it takes webhooks, and the HMAC keys of its valid secrets. */
export interface IntakeSource {
  id: string;
  enabled: boolean;
  keys: Buffer[];
}

export interface SourceCache {
  /**
   * The source, or null when it is unknown or disabled. Answers from memory when it can (see createSourceCache); a
   * failed query is not cached (it throws).
   */
  get(id: string): Promise<IntakeSource | null>;
  /** Reloads an entry older than `minAgeMs` (after a signature failure: a rotated secret is seen at once). */
  refresh(id: string, minAgeMs: number): Promise<IntakeSource | null> | undefined;
  /** Queries sent so far: per-source look-ups and directory loads (tests and benchmarks read them). */
  readonly queries: { lookups: number; directoryLoads: number };
}

interface Entry {
  at: number;
  value: Promise<IntakeSource | null>;
}

/** A source id absent from a directory loaded at least this long ago reloads it; otherwise it is unknown at once. */
export const DIRECTORY_MISS_RELOAD_MS = 1000;

/**
 * Three layers, so a flood of made-up source ids costs no query per request:
 *
 * - a **directory** of every enabled source id (one cheap query, reloaded when older than `ttlMs`, and on a miss at
 *   most once per DIRECTORY_MISS_RELOAD_MS, so a source added a moment ago is found while a flood of random ids costs
 *   at most one query a second in all);
 * - a **negative cache** of ids found unknown (bounded by `maxEntries`, oldest first out, kept `ttlMs`), so a repeated
 *   unknown id does not even wake the directory;
 * - the **positive cache** of sources with their keys (bounded by `maxEntries`, kept `ttlMs`); concurrent misses for
 *   one id share one query.
 *
 * Consequence of the TTL: enabling, disabling or expiring a secret takes effect within `ttlMs`. Keys outside the
 * Standard Webhooks length rule (stored before it was enforced) are never used.
 */
export function createSourceCache(opts: {
  sql: Sql;
  /** Decrypts the stored secrets when an entry loads (a secret that does not decrypt fails the load: no value in the error). */
  keys: KeyRing;
  ttlMs: number;
  maxEntries: number;
  now: () => Date;
}): SourceCache {
  const entries = new Map<string, Entry>();
  const unknown = new Map<string, number>();
  const queries = { lookups: 0, directoryLoads: 0 };
  let directory: { at: number; ids: Set<string> } | undefined;
  let loadingDirectory: Promise<Set<string>> | undefined;
  const clock = () => opts.now().getTime();

  const loadDirectory = (): Promise<Set<string>> => {
    if (loadingDirectory) return loadingDirectory;
    const at = clock();
    queries.directoryLoads++;
    loadingDirectory = listEnabledSourceIds(opts.sql)
      .then((ids) => {
        directory = { at, ids: new Set(ids) };
        return directory.ids;
      })
      .finally(() => {
        loadingDirectory = undefined;
      });
    return loadingDirectory;
  };

  /** Whether the id may be a source; false only when a fresh enough directory says it is not. */
  const mayExist = async (id: string): Promise<boolean> => {
    const now = clock();
    if (directory && now - directory.at < opts.ttlMs) {
      if (directory.ids.has(id)) return true;
      if (now - directory.at < DIRECTORY_MISS_RELOAD_MS) return false;
    }
    return (await loadDirectory()).has(id);
  };

  const remember = (id: string) => {
    unknown.delete(id);
    unknown.set(id, clock());
    while (unknown.size > opts.maxEntries) unknown.delete(unknown.keys().next().value as string);
  };

  const load = (id: string): Promise<IntakeSource | null> => {
    const at = clock();
    queries.lookups++;
    const value = findSourceWithSecrets(opts.sql, id, opts.now()).then((s) =>
      s ? { id: s.id, enabled: s.enabled, keys: openSourceSecrets(opts.keys, s).map(secretKey).filter(isUsableKey) } : null,
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
    async get(id) {
      const e = entries.get(id);
      if (e && clock() - e.at < opts.ttlMs) {
        metrics.sourceCacheLookups.inc({ result: 'hit' });
        return e.value;
      }
      const missAt = unknown.get(id);
      if (missAt !== undefined && clock() - missAt < opts.ttlMs) {
        metrics.sourceCacheLookups.inc({ result: 'hit' });
        return null;
      }
      metrics.sourceCacheLookups.inc({ result: 'miss' });
      if (!(await mayExist(id))) {
        entries.delete(id);
        remember(id);
        return null;
      }
      unknown.delete(id);
      return load(id);
    },
    refresh(id, minAgeMs) {
      const e = entries.get(id);
      if (e && clock() - e.at < minAgeMs) return undefined;
      return load(id);
    },
    queries,
  };
}
