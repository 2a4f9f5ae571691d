import { randomBytes } from 'node:crypto';
import type { Sql } from '../db/client.js';
import { rateBudgetKey } from '../provider/rate-budget.js';
import { openWebhookSecret, sealApiToken, sealWebhookSecret } from '../secrets/cipher.js';
import type { KeyRing } from '../key-ring.js';

/**
 * Source queries: a source is one provider account (or channel) with its webhook secrets. Several secrets are valid at
 * once after a rotation: the previous one until its `expires_at`, the new one without an end.
 *
 * Secrets and API tokens are stored encrypted (src/secrets/cipher.ts, bound to their source): these functions take
 * plaintext in and seal it, and give ciphertext out except where a caller needs the value (openSecrets, the poller's
 * token). Nothing here logs or throws a value.
 */

export interface SourceWithSecrets {
  id: string;
  name: string;
  enabled: boolean;
  clientId: string | null;
  /** Every secret valid at `now`, newest first, as stored (encrypted: decrypt with openSourceSecrets). */
  secrets: string[];
}

export interface SourceRow {
  id: string;
  name: string;
  clientId: string | null;
  /** As stored (encrypted). */
  apiToken: string | null;
  enabled: boolean;
  createdAt: Date;
  /** Every secret not yet expired, newest first, with its end (null: no end); as stored (encrypted). */
  secrets: { secret: string; expiresAt: string | null }[];
}

/** A new source id: short, URL-safe, not guessable from the name. */
export function newSourceId(): string {
  return `src_${randomBytes(8).toString('hex')}`;
}

/** The source and its secrets valid at `now`, or undefined. One statement; disabled sources are returned (callers decide). */
export async function findSourceWithSecrets(sql: Sql, id: string, now: Date): Promise<SourceWithSecrets | undefined> {
  const [row] = await sql<SourceWithSecrets[]>`
    select s.id, s.name, s.enabled, s.client_id as "clientId",
           coalesce(array_agg(k.secret order by k.id desc) filter (where k.id is not null), '{}') as secrets
      from sources s
      left join source_secrets k on k.source_id = s.id and (k.expires_at is null or k.expires_at > ${now}::timestamptz)
     where s.id = ${id}
     group by s.id`;
  return row;
}

/** The plaintext secrets of a source found by findSourceWithSecrets (throws SecretUnreadableError: no value in it). */
export function openSourceSecrets(keys: KeyRing, source: SourceWithSecrets): string[] {
  return source.secrets.map((s) => openWebhookSecret(keys, source.id, s));
}

export interface NewSource {
  id?: string;
  name: string;
  secret: string;
  clientId?: string | null;
  apiToken?: string | null;
}

/** Inserts a source with its first secret in one statement. Throws on a duplicate name (unique). Returns the id. */
export async function insertSource(sql: Sql, keys: KeyRing, source: NewSource): Promise<string> {
  const id = source.id ?? newSourceId();
  const token = source.apiToken ?? null;
  await sql`
    with s as (
      insert into sources (id, name, client_id, api_token, api_token_hash)
      values (${id}, ${source.name}, ${source.clientId ?? null}, ${token === null ? null : sealApiToken(keys, id, token)},
              ${token === null ? null : rateBudgetKey(token)})
      returning id)
    insert into source_secrets (source_id, secret) select id, ${sealWebhookSecret(keys, id, source.secret)} from s`;
  return id;
}

/**
 * Adds a secret to a source and ends every other current secret at `now + overlapMs` (one that already ends sooner
 * keeps its end). Both secrets verify during the overlap. Returns false when the source does not exist.
 */
export async function rotateSourceSecret(
  sql: Sql,
  keys: KeyRing,
  p: { sourceId: string; secret: string; overlapMs: number; now: Date },
): Promise<boolean> {
  const until = new Date(p.now.getTime() + p.overlapMs);
  const [row] = await sql<{ inserted: number }[]>`
    with expired as (
      update source_secrets set expires_at = ${until}::timestamptz
       where source_id = ${p.sourceId} and (expires_at is null or expires_at > ${until}::timestamptz)),
    added as (
      insert into source_secrets (source_id, secret)
      select id, ${sealWebhookSecret(keys, p.sourceId, p.secret)} from sources where id = ${p.sourceId}
      returning 1)
    select count(*)::int as inserted from added`;
  return row.inserted === 1;
}

/** Enables or disables a source (a disabled source's webhooks answer 404). Returns false when it does not exist. */
export async function setSourceEnabled(sql: Sql, sourceId: string, enabled: boolean): Promise<boolean> {
  const rows = await sql`update sources set enabled = ${enabled} where id = ${sourceId} returning 1`;
  return rows.length === 1;
}

/** What `sources update` may change; an absent key is left as it is, a null clears it (client, token). */
export interface SourceChanges {
  name?: string;
  clientId?: string | null;
  apiToken?: string | null;
  enabled?: boolean;
}

/**
 * Changes a source in one statement (the token sealed and hashed here). Returns false when the source does not
 * exist; throws on a name another source has (unique).
 */
export async function updateSource(sql: Sql, keys: KeyRing, sourceId: string, c: SourceChanges): Promise<boolean> {
  const has = (k: keyof SourceChanges) => Object.hasOwn(c, k) && c[k] !== undefined;
  const token = has('apiToken') ? (c.apiToken ?? null) : undefined;
  const rows = await sql`
    update sources set
      name = case when ${has('name')} then ${c.name ?? null}::text else name end,
      client_id = case when ${has('clientId')} then ${c.clientId ?? null}::text else client_id end,
      api_token = case when ${token !== undefined} then ${token ? sealApiToken(keys, sourceId, token) : null}::text else api_token end,
      api_token_hash = case when ${token !== undefined} then ${token ? rateBudgetKey(token) : null}::text else api_token_hash end,
      enabled = case when ${has('enabled')} then ${c.enabled ?? null}::bool else enabled end
     where id = ${sourceId}
    returning 1`;
  return rows.length === 1;
}

/** Every source with its unexpired secrets, by name, as stored (encrypted). */
export async function listSources(sql: Sql, now: Date): Promise<SourceRow[]> {
  return sql<SourceRow[]>`
    select s.id, s.name, s.client_id as "clientId", s.api_token as "apiToken", s.enabled, s.created_at as "createdAt",
           coalesce(json_agg(json_build_object('secret', k.secret, 'expiresAt', k.expires_at) order by k.id desc)
                      filter (where k.id is not null), '[]') as secrets
      from sources s
      left join source_secrets k on k.source_id = s.id and (k.expires_at is null or k.expires_at > ${now}::timestamptz)
     group by s.id
     order by s.name`;
}

/** The ids of every enabled source (the intake's directory: an id not in it is unknown without a look-up). */
export async function listEnabledSourceIds(sql: Sql): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`select id from sources where enabled`;
  return rows.map((r) => r.id);
}
