import { randomBytes } from 'node:crypto';
import type { Sql } from '../db/client.js';

/**
 * Source queries: a source is one provider account (or channel) with its webhook secrets. Several secrets are valid at
 * once after a rotation: the previous one until its `expires_at`, the new one without an end.
 */

export interface SourceWithSecrets {
  id: string;
  name: string;
  enabled: boolean;
  clientId: string | null;
  /** Every secret valid at `now`, newest first. */
  secrets: string[];
}

export interface SourceRow {
  id: string;
  name: string;
  clientId: string | null;
  apiToken: string | null;
  enabled: boolean;
  createdAt: Date;
  /** Every secret not yet expired, newest first, with its end (null: no end). */
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

export interface NewSource {
  id?: string;
  name: string;
  secret: string;
  clientId?: string | null;
  apiToken?: string | null;
}

/** Inserts a source with its first secret in one statement. Throws on a duplicate name (unique). Returns the id. */
export async function insertSource(sql: Sql, source: NewSource): Promise<string> {
  const id = source.id ?? newSourceId();
  await sql`
    with s as (
      insert into sources (id, name, client_id, api_token)
      values (${id}, ${source.name}, ${source.clientId ?? null}, ${source.apiToken ?? null})
      returning id)
    insert into source_secrets (source_id, secret) select id, ${source.secret} from s`;
  return id;
}

/**
 * Adds a secret to a source and ends every other current secret at `now + overlapMs` (one that already ends sooner
 * keeps its end). Both secrets verify during the overlap. Returns false when the source does not exist.
 */
export async function rotateSourceSecret(
  sql: Sql,
  p: { sourceId: string; secret: string; overlapMs: number; now: Date },
): Promise<boolean> {
  const until = new Date(p.now.getTime() + p.overlapMs);
  const [row] = await sql<{ inserted: number }[]>`
    with expired as (
      update source_secrets set expires_at = ${until}::timestamptz
       where source_id = ${p.sourceId} and (expires_at is null or expires_at > ${until}::timestamptz)),
    added as (
      insert into source_secrets (source_id, secret)
      select id, ${p.secret} from sources where id = ${p.sourceId}
      returning 1)
    select count(*)::int as inserted from added`;
  return row.inserted === 1;
}

/** Enables or disables a source (a disabled source's webhooks answer 404). Returns false when it does not exist. */
export async function setSourceEnabled(sql: Sql, sourceId: string, enabled: boolean): Promise<boolean> {
  const rows = await sql`update sources set enabled = ${enabled} where id = ${sourceId} returning 1`;
  return rows.length === 1;
}

/** Every source with its unexpired secrets, by name. Callers mask secrets and tokens before showing them. */
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
