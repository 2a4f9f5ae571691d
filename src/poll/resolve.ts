import { createHash } from 'node:crypto';
import { HOUR, MINUTE } from '../config.js';
import type { Queryable, Sql } from '../db/client.js';
import { InboxVia } from '../db/schema.js';
import { insertInboxEvents, type NewInboxEvent } from '../inbox/insert-events.js';
import type { ResolveKind } from './resolve-queue.js';
import type { ProviderClient } from '../provider/client.js';
import { ProviderError, ProviderNotFoundError } from '../provider/errors.js';
import { parseInstant } from '../time.js';
import { orderVersion } from './orders.js';
import { returnEvent } from './returns.js';
import { PollTopics } from './streams.js';

/**
 * Fetches by id the resources deliveries named without standing for them (resolve-queue.ts), and stores each as a
 * `poll.resolved.*` event: the drain applies the full resource like any other (one inbox path). Calls go through the
 * source's client, so they spend from its token's shared rate budget.
 *
 * A request is deleted once done; a request that grew while it was being fetched (another delivery joined) is kept
 * and fetched again, since the resource may have changed meanwhile. What can never succeed becomes a dead letter on
 * every inbox row that asked, with a reason saying why: the resource is unknown to the provider (404), or the
 * source has no API token to fetch it with. An auth refusal (401/403) is kept and retried in RESOLVE_AUTH_RETRY_MS.
 */

const BATCH = 50;
export const RESOLVE_AUTH_RETRY_MS = 10 * MINUTE;
/** Requests still failing after this long are given up as dead letters. */
export const RESOLVE_GIVE_UP_MS = 24 * HOUR;

export interface DueResolve {
  kind: ResolveKind;
  id: number;
  inboxIds: number[];
  reason: string;
  requests: number;
  requestedAt: Date;
}

/** A source's requests due at `now`, earliest first, at most `limit`. One statement. */
export async function listDueResolves(sql: Queryable, p: { sourceId: string; now: Date; limit: number }): Promise<DueResolve[]> {
  const rows = await sql<{ kind: ResolveKind; id: string; inboxIds: string[]; reason: string; requests: number; requestedAt: Date }[]>`
    select kind, resource_id::text as id, inbox_ids::text[] as "inboxIds", reason, requests, requested_at as "requestedAt"
      from resolve_requests
     where source_id = ${p.sourceId} and due_at <= ${p.now}::timestamptz
     order by due_at, kind, resource_id
     limit ${p.limit}::int`;
  return rows.map((r) => ({ ...r, id: Number(r.id), inboxIds: r.inboxIds.map(Number) }));
}

/** Every source with a request due at `now` (the safety-net schedule). */
export async function listSourcesWithDueResolves(sql: Queryable, now: Date): Promise<string[]> {
  const rows = await sql<{ sourceId: string }[]>`
    select distinct source_id as "sourceId" from resolve_requests where due_at <= ${now}::timestamptz order by 1`;
  return rows.map((r) => r.sourceId);
}

export interface ResolveResult {
  fetched: number;
  dead: number;
  /** Events new to the inbox. */
  inserted: number;
  deferred: number;
}

/**
 * Resolves a source's due requests in batches; `client` null means the source has no API token (every request is
 * dead). Throws a retryable provider error after committing what the batch already fetched.
 */
export async function resolveDue(p: {
  sql: Sql;
  sourceId: string;
  client: ProviderClient | null;
  now: () => Date;
  signal?: AbortSignal;
  maxCalls?: number;
}): Promise<ResolveResult> {
  const result: ResolveResult = { fetched: 0, dead: 0, inserted: 0, deferred: 0 };
  let calls = 0;
  const maxCalls = p.maxCalls ?? 200;
  for (;;) {
    const due = await listDueResolves(p.sql, { sourceId: p.sourceId, now: p.now(), limit: Math.min(BATCH, maxCalls - calls) });
    if (due.length === 0 || calls >= maxCalls) return result;
    const events: NewInboxEvent[] = [];
    const done: DueResolve[] = [];
    const dead: { q: DueResolve; reason: string }[] = [];
    const deferred: { q: DueResolve; error: string }[] = [];
    let failure: unknown;
    for (const q of due) {
      if (p.client === null) {
        dead.push({ q, reason: `cannot fetch ${q.kind} ${q.id} (${q.reason}): the source has no API token` });
        continue;
      }
      calls++;
      try {
        events.push(await fetchResolved(p.client, p.sourceId, q.kind, q.id, p.signal));
        done.push(q);
      } catch (err) {
        if (err instanceof ProviderNotFoundError) {
          dead.push({ q, reason: `${q.reason}; ${q.kind} ${q.id} not found at the provider` });
        } else if (err instanceof ProviderError && !err.retryable) {
          const late = p.now().getTime() - q.requestedAt.getTime() > RESOLVE_GIVE_UP_MS;
          if (late) dead.push({ q, reason: `${q.reason}; fetching ${q.kind} ${q.id} failed for a day: ${err.message}` });
          else deferred.push({ q, error: err.message });
        } else {
          failure = err; // keep what this batch fetched, then fail the run (retried)
          break;
        }
      }
    }
    result.inserted += await p.sql.begin(async (tx) => {
      const inserted = (await insertInboxEvents(tx, events)).filter((r) => r.inserted).length;
      await finishResolves(tx, p.sourceId, [...done, ...dead.map((d) => d.q)]);
      await markResolveDead(tx, dead.flatMap((d) => d.q.inboxIds.map((id) => ({ id, reason: d.reason }))));
      await deferResolves(tx, p.sourceId, deferred);
      return inserted;
    });
    result.fetched += done.length;
    result.dead += dead.length;
    result.deferred += deferred.length;
    if (failure !== undefined) throw failure;
  }
}

/** The resource by id, as an inbox event whose id changes only with the resource (re-fetches deduplicate). */
async function fetchResolved(client: ProviderClient, sourceId: string, kind: ResolveKind, id: number, signal?: AbortSignal): Promise<NewInboxEvent> {
  if (kind === 'return') {
    const e = returnEvent(sourceId, await client.getReturn(id, signal));
    return { ...e, eventId: e.eventId.replace(/^poll:/, 'resolve:'), topic: PollTopics.resolvedReturn };
  }
  const resource = kind === 'order' ? await client.getOrder(id, signal) : await client.getShipment(id, signal);
  const body = JSON.stringify(resource);
  const version =
    (kind === 'order' ? orderVersion(resource as Parameters<typeof orderVersion>[0]) : (resource as { last_update_at?: string }).last_update_at) ?? null;
  const digest = createHash('sha256').update(body).digest('hex').slice(0, 16);
  return {
    sourceId,
    eventId: `resolve:${kind}:${id}:${version ?? 'h'}:${digest}`,
    topic: kind === 'order' ? PollTopics.resolvedOrder : PollTopics.resolvedShipment,
    body,
    headers: null,
    eventTime: parseInstant(version),
    via: InboxVia.poll,
  };
}

/** Deletes requests that were handled, unless another delivery joined one meanwhile (then it is fetched again). */
async function finishResolves(tx: Queryable, sourceId: string, handled: readonly DueResolve[]): Promise<void> {
  if (handled.length === 0) return;
  await tx`
    delete from resolve_requests q
     using unnest(${handled.map((h) => h.kind)}::text[], ${handled.map((h) => h.id)}::bigint[],
                  ${handled.map((h) => h.requests)}::int[]) as x(kind, resource_id, requests)
     where q.source_id = ${sourceId} and q.kind = x.kind and q.resource_id = x.resource_id and q.requests = x.requests`;
}

/** The inbox rows that asked for a resource that can never be fetched: dead, with the reason. */
async function markResolveDead(tx: Queryable, rows: readonly { id: number; reason: string }[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    update inbox_events e set status = 'dead', last_error = x.reason
      from unnest(${rows.map((r) => r.id)}::bigint[], ${rows.map((r) => r.reason.slice(0, 500))}::text[]) as x(id, reason)
     where e.id = x.id and e.status = 'processed'`;
}

async function deferResolves(tx: Queryable, sourceId: string, rows: readonly { q: DueResolve; error: string }[]): Promise<void> {
  if (rows.length === 0) return;
  await tx`
    update resolve_requests q
       set attempts = q.attempts + 1, last_error = x.error,
           due_at = now() + ${RESOLVE_AUTH_RETRY_MS}::float8 * interval '1 millisecond'
      from unnest(${rows.map((r) => r.q.kind)}::text[], ${rows.map((r) => r.q.id)}::bigint[], ${rows.map((r) => r.error.slice(0, 500))}::text[])
           as x(kind, resource_id, error)
     where q.source_id = ${sourceId} and q.kind = x.kind and q.resource_id = x.resource_id`;
}
