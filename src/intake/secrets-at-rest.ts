import type { Sql } from '../db/client.js';
import { CIPHER_PREFIX, openSecret, PLAINTEXT_PREFIX, type SecretPurpose, sealSecret } from '../secrets/cipher.js';
import type { KeyRing } from '../key-ring.js';

/**
 * The sweeps over every stored secret and token (docs/tenancy.md):
 * - at start-up, right after the migrations and under their lock, the values the 0003 migration marked `plain:` are
 *   encrypted (a SQL migration holds no key); idempotent, a no-op once done;
 * - `ops keys rotate` re-encrypts every value not under the current key.
 * Both go in batches by id (each batch: one read, one compare-and-set update: a value changed meanwhile is left to
 * the next run), and never print or throw a value.
 */

interface Column {
  table: 'source_secrets' | 'sources';
  purpose: SecretPurpose;
}
const COLUMNS: readonly Column[] = [
  { table: 'source_secrets', purpose: 'webhook-secret' },
  { table: 'sources', purpose: 'api-token' },
];

/** One stored value: its row id (text: bigint or text ids), its owner (the source) and what is stored. */
interface StoredValue {
  id: string;
  owner: string;
  value: string;
}

function readBatch(sql: Sql, col: Column, afterId: string | null, pattern: string, batchSize: number) {
  // Ids compare as bigints for source_secrets and as text for sources: each table's own order.
  return col.table === 'source_secrets'
    ? sql<StoredValue[]>`
        select id::text as id, source_id as owner, secret as value from source_secrets
         where secret not like ${pattern} and (${afterId}::bigint is null or id > ${afterId}::bigint)
         order by id limit ${batchSize}`
    : sql<StoredValue[]>`
        select id, id as owner, api_token as value from sources
         where api_token is not null and api_token not like ${pattern} and (${afterId}::text is null or id > ${afterId}::text)
         order by id limit ${batchSize}`;
}

function writeBatch(sql: Sql, col: Column, rows: { id: string; old: string; value: string }[]) {
  const ids = rows.map((r) => r.id);
  const olds = rows.map((r) => r.old);
  const values = rows.map((r) => r.value);
  return col.table === 'source_secrets'
    ? sql`
        update source_secrets k set secret = x.value
          from unnest(${ids}::bigint[], ${olds}::text[], ${values}::text[]) as x(id, old, value)
         where k.id = x.id and k.secret = x.old`
    : sql`
        update sources s set api_token = x.value
          from unnest(${ids}::text[], ${olds}::text[], ${values}::text[]) as x(id, old, value)
         where s.id = x.id and s.api_token = x.old`;
}

export interface SweepProgress {
  done: number;
  total: number;
}

export interface SweepResult {
  /** Values written under the current key. */
  written: number;
  /** Values that could not be read (unknown key, altered): left as they are, named by row (never by value). */
  unreadable: { table: string; id: string; reason: string }[];
}

/** What a value is under the ring: its plaintext (plain: values or readable ciphertext), or why it is unreadable. */
function plaintextOf(keys: KeyRing, col: Column, v: StoredValue): string | Error {
  if (v.value.startsWith(PLAINTEXT_PREFIX)) return v.value.slice(PLAINTEXT_PREFIX.length);
  if (!v.value.startsWith(CIPHER_PREFIX)) return new Error('in no known format');
  try {
    return openSecret(keys, v.value, col.purpose, v.owner);
  } catch (err) {
    return err as Error;
  }
}

/**
 * Re-encrypts the values matched by `which` under the current key: `plaintext` (start-up: the `plain:` ones only),
 * `not-current` (rotation: plain ones and every one under another key). Returns what it wrote and what it could not
 * read; `onProgress` after each batch.
 */
export async function reencryptSecrets(
  sql: Sql,
  keys: KeyRing,
  opts: { which: 'plaintext' | 'not-current'; batchSize?: number; onProgress?: (p: SweepProgress) => void },
): Promise<SweepResult> {
  const batchSize = opts.batchSize ?? 500;
  const counts = await countSecretsByKey(sql);
  const total = counts
    .filter((c) => (opts.which === 'plaintext' ? c.keyId === 'plain' : c.keyId !== keys.current.id))
    .reduce((n, c) => n + c.count, 0);
  const result: SweepResult = { written: 0, unreadable: [] };
  if (total === 0) return result;
  let done = 0;
  for (const col of COLUMNS) {
    // plaintext: every value not yet `v1:`; not-current: every value not `v1:<current id>:`.
    const skip = opts.which === 'plaintext' ? `${CIPHER_PREFIX}%` : `${CIPHER_PREFIX}${keys.current.id}:%`;
    let after: string | null = null;
    for (;;) {
      const batch = await readBatch(sql, col, after, skip, batchSize);
      if (batch.length === 0) break;
      after = batch[batch.length - 1].id;
      const writes: { id: string; old: string; value: string }[] = [];
      for (const v of batch) {
        const plain = plaintextOf(keys, col, v);
        if (plain instanceof Error) result.unreadable.push({ table: col.table, id: v.id, reason: plain.message });
        else writes.push({ id: v.id, old: v.value, value: sealSecret(keys, plain, col.purpose, v.owner) });
      }
      if (writes.length > 0) result.written += (await writeBatch(sql, col, writes)).count;
      done += batch.length;
      opts.onProgress?.({ done, total });
    }
  }
  return result;
}

/** Stored values per key id (`plain` for values not encrypted yet), per table; never a value. One statement. */
export async function countSecretsByKey(sql: Sql): Promise<{ table: string; keyId: string; count: number }[]> {
  return sql<{ table: string; keyId: string; count: number }[]>`
    with v as (
      select 'source_secrets' as tbl, secret as value from source_secrets
      union all
      select 'sources', api_token from sources where api_token is not null)
    select tbl as table,
           case when value like ${`${CIPHER_PREFIX}%`} then split_part(value, ':', 2)
                when value like ${`${PLAINTEXT_PREFIX}%`} then 'plain'
                else 'unknown-format' end as "keyId",
           count(*)::int as count
      from v group by 1, 2 order by 1, 2`;
}

/**
 * The start-up step (runMigrations' afterMigrate): encrypts the values left `plain:` by the 0003 migration. Logs
 * counts and the rows it cannot read (by id), never a value.
 */
export function encryptPlaintextAfterMigrate(
  keys: KeyRing,
  log: { info(line: string): void; warn(line: string): void },
): (sql: Sql) => Promise<void> {
  return async (sql) => {
    const r = await reencryptSecrets(sql, keys, { which: 'plaintext' });
    if (r.written > 0) log.info(`secrets at rest: encrypted ${r.written} stored secret(s) and token(s) under key ${keys.current.id}`);
    for (const u of r.unreadable) log.warn(`secrets at rest: ${u.table} row ${u.id} is unreadable: ${u.reason}`);
  };
}
